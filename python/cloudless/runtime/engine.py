"""The Wasm runtime that provider nodes use to run package functions.

`WasmRuntime` owns one wasmtime engine with fuel metering and epoch
interruption, a compiled-module cache, the epoch ticker thread, the linkers
and the stdout and stderr capture files. Each call gets a fresh store and
fresh instances, so no state leaks between calls, and calls may run
concurrently from several threads.

Work that depends only on the package (import and grant checks, choosing
each module's linker, finding `_initialize`) happens once in `load`, so a
call only instantiates and runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import wasmtime

from cloudless.exceptions import (
    ConfigError,
    FunctionNotFoundError,
    GuestError,
    InvalidInputError,
    InvalidOutputError,
    MemoryLimitError,
    OutputTooLargeError,
    WasmCallError,
)
from cloudless.runtime.abi import ABI_VERSION, check_facade_signatures, decode_envelope, unpack_output_location
from cloudless.runtime.cache import ModuleCache
from cloudless.runtime.grants import WASI_MODULE, LinkerSet, ModuleLinkPlan, check_imports
from cloudless.runtime.host_functions import CallContext, CallState, active_call
from cloudless.runtime.limits import HostLimits
from cloudless.runtime.manifest import Manifest
from cloudless.runtime.package import FunctionPackage, read_package
from cloudless.runtime.ticker import EPOCH_TICK_MS, EpochTicker
from cloudless.runtime.traps import FailureContext, classify_failure
from cloudless.runtime.wasi_sandbox import OutputCapture

__all__ = ["CallContext", "CallResult", "LoadedPackage", "WasmRuntime", "WASI_MODULE"]

logger = logging.getLogger("cloudless.runtime")

_WASM_PAGE_BYTES = 65536


@dataclass(frozen=True)
class LoadedPackage:
    """A verified package with its modules compiled, in link order.

    `link_plans` describes how each call instantiates each module. `wasi_env` is
    the environment of every call's WASI configuration, or None when no
    module has the "env" grant. `files_granted` is True when some module has
    the "files" grant, so calls preopen their `data_dir`.
    """

    package: FunctionPackage
    modules: tuple[tuple[str, wasmtime.Module], ...]
    link_plans: tuple[ModuleLinkPlan, ...] = field(repr=False)
    wasi_env: tuple[tuple[str, str], ...] | None = field(repr=False)
    files_granted: bool

    @property
    def cid(self) -> str:
        """The package CID."""
        return self.package.cid

    @property
    def manifest(self) -> Manifest:
        """The package manifest."""
        return self.package.manifest

    @property
    def function_names(self) -> tuple[str, ...]:
        """The functions that callers may invoke."""
        return self.package.function_names


@dataclass(frozen=True)
class CallResult:
    """The outcome of a successful call.

    `output` is the envelope's "ok" value as compact JSON with sorted keys,
    `fuel_used` is in wasmtime fuel units, `stdout` and `stderr` are cut to
    the manifest's stdout limit, and `wall_ms` is milliseconds from store
    creation to the decoded output. `logs` are the (level name, message)
    records that the guest wrote with `cloudless.log`, and `dropped_logs`
    counts the records beyond the per-call limits (64 records, 16 KiB).
    """

    output: bytes
    fuel_used: int
    stdout: bytes
    stderr: bytes
    wall_ms: float
    logs: tuple[tuple[str, str], ...] = ()
    dropped_logs: int = 0


@dataclass
class _Execution:
    """The raw outcome of one call: its store and instances, the packed result or the failure."""

    store: wasmtime.Store
    instances: list[wasmtime.Instance]
    packed: int
    failure: Exception | None
    fuel_used: int
    stdout: bytes
    stderr: bytes
    call_state: CallState


class WasmRuntime:
    """Load packages and call their functions under fuel, memory and wall-time limits.

    Use it as a context manager, or call `close()` to stop the epoch ticker.
    `cache_dir` keeps compiled modules across runtimes. Without it, compiled
    modules are cached in memory only.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        host_limits: HostLimits | None = None,
        epoch_tick_ms: int = EPOCH_TICK_MS,
    ) -> None:
        self.host_limits = host_limits if host_limits is not None else HostLimits()
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._cache = ModuleCache(self._engine, cache_dir)
        self._linkers = LinkerSet(self._engine)
        self._capture = OutputCapture()
        self._ticker = EpochTicker(self._engine, epoch_tick_ms)
        self._ticker.start()
        self._closed = False

    @property
    def compile_count(self) -> int:
        """Modules compiled by this runtime (not taken from a cache)."""
        return self._cache.compile_count

    @property
    def disk_cache_hits(self) -> int:
        """Modules that this runtime loaded from the disk cache."""
        return self._cache.disk_hits

    def cache_file(self, cid: str, module_name: str) -> Path | None:
        """Return the disk cache path of a compiled module, or None without a cache directory."""
        return self._cache.cache_file(cid, module_name)

    def __enter__(self) -> WasmRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the epoch ticker and remove the output capture files. Calling close twice is harmless.

        Later calls raise WasmCallError. Calls still running lose their
        wall-time limit and their stdout and stderr, but fuel and memory
        limits still apply.
        """
        self._closed = True
        self._ticker.stop()
        self._capture.close()

    def load(self, package_bytes: bytes, *, cid: str | None = None) -> LoadedPackage:
        """Verify a package and compile its modules, or take them from the cache.

        Raises PackageError subclasses for a CID mismatch, a bad layout or
        manifest, and modules that fail to compile, link or match ABI v1.
        A module whose imports its grants do not allow raises
        ImportNotAllowedError.
        """
        package = read_package(package_bytes, cid, host_limits=self.host_limits)
        compiled = []
        for package_module in package.modules:
            module = self._cache.get(package.cid, package_module.name, package_module.wasm)
            compiled.append((package_module.name, module))

        facade_name, facade = compiled[-1]
        check_facade_signatures(facade, facade_name, package.function_names)
        link_plans, wasi_env, files_granted = self._plan_links(package.manifest, compiled)
        logger.info(
            "loaded package %s (%s %s, functions %s)",
            package.cid,
            package.manifest.name,
            package.manifest.version,
            ", ".join(package.function_names),
        )
        return LoadedPackage(
            package=package,
            modules=tuple(compiled),
            link_plans=link_plans,
            wasi_env=wasi_env,
            files_granted=files_granted,
        )

    def call(
        self,
        package: LoadedPackage,
        function: str,
        input_bytes: bytes,
        *,
        context: CallContext | None = None,
        data_dir: Path | None = None,
    ) -> CallResult:
        """Run `function` of a loaded package on `input_bytes` in a fresh store.

        `context` is what `cloudless.call_params` returns to the guest, and
        its `function` must equal `function`. Without it the guest gets deal
        id 0 and empty caller and request id. `data_dir` is the per-deal
        directory that modules with the "files" grant see at /data. It is
        not opened when no module has that grant.

        Raises a WasmCallError subclass, which carries `fuel_used`, when the
        call fails: FunctionNotFoundError, InvalidInputError,
        FuelExhaustedError, MemoryLimitError, WallTimeExceededError,
        WasmTrapError (StackOverflowError for deep recursion), GuestError
        or InvalidOutputError (OutputTooLargeError for output above
        `max_output_bytes`). Raises ConfigError if `data_dir` is needed but
        is not a directory.
        """
        if self._closed:
            raise WasmCallError("WasmRuntime is closed, so wall-time limits cannot be enforced; create a new runtime")
        if function not in package.function_names:
            raise FunctionNotFoundError(
                f"function {function!r} not found in package {package.cid}; "
                f"available functions: {', '.join(package.function_names)}",
                available=package.function_names,
            )
        self._check_input(input_bytes)
        if context is not None and context.function != function:
            raise InvalidInputError(
                f"call context names function {context.function!r}, but the call is to {function!r}; "
                "pass a context for the called function"
            )
        granted_dir = None
        if package.files_granted and data_dir is not None:
            granted_dir = Path(data_dir)
            if not granted_dir.is_dir():
                raise ConfigError(
                    f"data_dir {granted_dir} is not a directory; create the deal's data directory before calling"
                )

        limits = package.manifest.limits
        started = time.perf_counter()
        execution = self._execute(package, function, bytes(input_bytes), CallState(function, context), granted_dir)
        fuel_used = execution.fuel_used

        if execution.failure is not None:
            context = FailureContext(
                function=function,
                limits=limits,
                fuel_used=fuel_used,
                stderr=execution.stderr,
                memory_at_limit=_memory_at_limit(execution.store, execution.instances, limits.memory_bytes),
            )
            call_error = classify_failure(execution.failure, context)
            logger.info("call %s.%s failed (%s): %s", package.cid, function, call_error.kind, call_error)
            raise call_error from execution.failure

        raw_output = self._read_output(execution.store, execution.instances[-1], execution.packed, function, fuel_used)
        envelope = decode_envelope(raw_output, function=function, fuel_used=fuel_used)
        wall_ms = (time.perf_counter() - started) * 1000
        if envelope.output is None:
            raise GuestError(
                f"function {function!r} returned an error: {envelope.error}; "
                "check the input against the function's description",
                fuel_used=fuel_used,
                guest_message=envelope.error or "",
            )

        logger.debug("call %s.%s used %d fuel in %.1f ms", package.cid, function, fuel_used, wall_ms)
        call_state = execution.call_state
        return CallResult(
            output=envelope.output,
            fuel_used=fuel_used,
            stdout=execution.stdout,
            stderr=execution.stderr,
            wall_ms=wall_ms,
            logs=tuple(call_state.logs),
            dropped_logs=call_state.dropped_logs,
        )

    def _plan_links(
        self, manifest: Manifest, compiled: list[tuple[str, wasmtime.Module]]
    ) -> tuple[tuple[ModuleLinkPlan, ...], tuple[tuple[str, str], ...] | None, bool]:
        """Check each module's imports against its grants and choose its linker.

        Returns the link plans, the WASI environment of every call and
        whether calls preopen the data directory. See `grants` for what is
        enforced per module and what per store.
        """
        granted_anywhere = {grant for entry in manifest.modules for grant in entry.grants}
        env = manifest.wasi.env
        wasi_env = tuple(sorted(env.items())) if env and "env" in granted_anywhere else None
        if env and wasi_env is None:
            logger.warning(
                "package %s sets wasi.env, but no module has the \"env\" grant, so no module sees it; "
                "add \"env\" to the grants of the modules that read it",
                manifest.name,
            )
        files_granted = "files" in granted_anywhere

        wasi_types = self._linkers.wasi_function_types()
        earlier_exports: dict[str, dict[str, wasmtime.ExternType]] = {}
        plans = []
        for entry, (name, module) in zip(manifest.modules, compiled):
            imports_earlier_module = check_imports(name, module, entry.grants, earlier_exports, wasi_types)
            linker = self._linkers.linker(
                hide_env=wasi_env is not None and "env" not in entry.grants,
                hide_paths=files_granted and "files" not in entry.grants,
            )
            exports = {export.name: export.type for export in module.exports}
            imports = tuple((item.module, item.name) for item in module.imports)
            plans.append(
                ModuleLinkPlan(
                    name=name,
                    module=module,
                    linker=linker,
                    imports=imports if imports_earlier_module else None,
                    # A wasm32-wasip1 cdylib is a WASI reactor that must run
                    # `_initialize` once before any other export.
                    has_initialize=isinstance(exports.get("_initialize"), wasmtime.FuncType),
                )
            )
            earlier_exports[name] = exports
        return tuple(plans), wasi_env, files_granted

    def _execute(
        self,
        package: LoadedPackage,
        function: str,
        input_bytes: bytes,
        call_state: CallState,
        data_dir: Path | None,
    ) -> _Execution:
        """Run one call in a fresh store under the package limits and capture its WASI output.

        A trap or wasmtime error is returned in `failure` rather than raised,
        so that the caller can classify it with the stderr output and memory
        sizes at hand.
        """
        limits = package.manifest.limits
        store = wasmtime.Store(self._engine)
        store.set_fuel(limits.fuel)
        store.set_limits(memory_size=limits.memory_bytes)
        store.set_epoch_deadline(self._ticker.deadline_ticks(limits.timeout_ms))
        store.set_wasi(self._capture.build_config(package.wasi_env, data_dir))

        instances: list[wasmtime.Instance] = []
        failure: Exception | None = None
        packed = 0
        outer_state = active_call.state
        active_call.state = call_state
        try:
            packed = self._invoke(store, package, function, input_bytes, instances)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
            failure = error
        finally:
            active_call.state = outer_state
        stdout, stderr = self._capture.read(package.manifest.wasi.stdout_limit_bytes)

        return _Execution(
            store=store,
            instances=instances,
            packed=packed,
            failure=failure,
            fuel_used=limits.fuel - store.get_fuel(),
            stdout=stdout,
            stderr=stderr,
            call_state=call_state,
        )

    def _check_input(self, input_bytes: bytes) -> None:
        if not isinstance(input_bytes, (bytes, bytearray)):
            raise InvalidInputError(f"call input must be bytes, got {type(input_bytes).__name__}")
        if len(input_bytes) > self.host_limits.max_input_bytes:
            raise InvalidInputError(
                f"call input is {len(input_bytes)} bytes, more than the maximum of "
                f"{self.host_limits.max_input_bytes} bytes; send a smaller input"
            )

    def _invoke(
        self,
        store: wasmtime.Store,
        package: LoadedPackage,
        function: str,
        input_bytes: bytes,
        instances: list[wasmtime.Instance],
    ) -> int:
        """Instantiate the modules in link order, run the function and return its packed i64 result.

        Appends each instance to `instances` as soon as it exists, so that the
        caller can inspect their memories after a trap.
        """
        limits = package.manifest.limits
        instances_by_name: dict[str, wasmtime.Instance] = {}
        for plan in package.link_plans:
            if plan.imports is None:
                instance = plan.linker.instantiate(store, plan.module)
            else:
                externs = [
                    _resolve_import(store, plan.linker, instances_by_name, namespace, name)
                    for namespace, name in plan.imports
                ]
                instance = wasmtime.Instance(store, plan.module, externs)
            instances.append(instance)
            instances_by_name[plan.name] = instance
            if plan.has_initialize:
                _call_func(instance.exports(store), "_initialize", store)

        exports = instances[-1].exports(store)
        abi_version = _call_func(exports, "cloudless_abi_version", store)
        if abi_version != ABI_VERSION:
            raise InvalidOutputError(
                f"facade module reports guest ABI version {abi_version}, but this host supports {ABI_VERSION}; "
                "rebuild the package with a matching Cloudless SDK",
                fuel_used=limits.fuel - store.get_fuel(),
            )

        # The i32 result is an unsigned address, but wasmtime returns it signed.
        input_ptr = _call_func(exports, "cloudless_alloc", store, len(input_bytes)) & 0xFFFFFFFF
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        if input_bytes:
            if input_ptr == 0:
                raise MemoryLimitError(
                    f"cloudless_alloc({len(input_bytes)}) returned null, so the input does not fit in guest "
                    f"memory under limits.memory_bytes={limits.memory_bytes}; send a smaller input or raise "
                    "limits.memory_bytes in the manifest",
                    fuel_used=limits.fuel - store.get_fuel(),
                    memory_limit_bytes=limits.memory_bytes,
                )
            if input_ptr + len(input_bytes) > memory.data_len(store):
                raise InvalidOutputError(
                    f"cloudless_alloc({len(input_bytes)}) returned {input_ptr}, outside linear memory of "
                    f"{memory.data_len(store)} bytes; fix the guest allocator",
                    fuel_used=limits.fuel - store.get_fuel(),
                )
            memory.write(store, input_bytes, input_ptr)
        packed = _call_func(exports, function, store, input_ptr, len(input_bytes))
        return packed

    def _read_output(
        self,
        store: wasmtime.Store,
        facade: wasmtime.Instance,
        packed: int,
        function: str,
        fuel_used: int,
    ) -> bytes:
        output_ptr, output_len = unpack_output_location(packed)
        if output_len > self.host_limits.max_output_bytes:
            raise OutputTooLargeError(
                f"function {function!r} returned {output_len} bytes of output, more than the maximum of "
                f"{self.host_limits.max_output_bytes} bytes; return a smaller result",
                fuel_used=fuel_used,
                output_bytes=output_len,
                max_output_bytes=self.host_limits.max_output_bytes,
            )
        memory = facade.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        memory_len = memory.data_len(store)
        if output_ptr + output_len > memory_len:
            raise InvalidOutputError(
                f"function {function!r} returned output at {output_ptr} of {output_len} bytes, past the end "
                f"of linear memory ({memory_len} bytes); fix how the guest packs (ptr << 32) | len",
                fuel_used=fuel_used,
            )
        return bytes(memory.read(store, output_ptr, output_ptr + output_len))


def _call_func(exports: Mapping[str, object], name: str, store: wasmtime.Store, *args: int) -> int:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)
    result = func(store, *args)
    return int(result) if result is not None else 0


def _resolve_import(
    store: wasmtime.Store,
    linker: wasmtime.Linker,
    instances_by_name: dict[str, wasmtime.Instance],
    namespace: str,
    name: str,
) -> wasmtime.Func | wasmtime.Memory | wasmtime.Table | wasmtime.Global:
    """Return the export of an earlier instance, or else the linker's WASI or host function."""
    instance = instances_by_name.get(namespace)
    if instance is not None:
        item = instance.exports(store)[name]
    else:
        item = linker.get(store, namespace, name)
    assert isinstance(item, (wasmtime.Func, wasmtime.Memory, wasmtime.Table, wasmtime.Global))
    return item


def _memory_at_limit(store: wasmtime.Store, instances: list[wasmtime.Instance], memory_bytes: int) -> bool:
    """Return True if a linear memory of the call grew and cannot grow by one more page.

    A memory that is still at its initial size never grew during the call,
    so a trap with such a memory at the limit is not taken as a failed
    memory.grow.
    """
    for instance in instances:
        for export in instance.exports(store).values():
            if not isinstance(export, wasmtime.Memory):
                continue
            size = export.data_len(store)
            grew = size > export.type(store).limits.min * _WASM_PAGE_BYTES
            if grew and size + _WASM_PAGE_BYTES > memory_bytes:
                return True
    return False
