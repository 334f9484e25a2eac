"""The Wasm runtime that provider nodes use to run package functions.

`WasmRuntime` owns one wasmtime engine with fuel metering and epoch
interruption, a compiled-module cache and the epoch ticker thread. Each call
gets a fresh store and fresh instances, so no state leaks between calls, and
calls may run concurrently from several threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import wasmtime

from cloudless.exceptions import (
    FunctionNotFoundError,
    GuestError,
    InvalidInputError,
    InvalidOutputError,
    MemoryLimitError,
    PackageFormatError,
    WasmCallError,
)
from cloudless.runtime.abi import ABI_VERSION, check_facade_signatures, decode_envelope, unpack_output_location
from cloudless.runtime.cache import ModuleCache
from cloudless.runtime.limits import HostLimits
from cloudless.runtime.manifest import Manifest
from cloudless.runtime.package import FunctionPackage, read_package
from cloudless.runtime.ticker import EPOCH_TICK_MS, EpochTicker
from cloudless.runtime.traps import FailureContext, classify_failure
from cloudless.runtime.wasi_sandbox import WasiSandbox

__all__ = ["CallResult", "LoadedPackage", "WasmRuntime", "WASI_MODULE"]

logger = logging.getLogger("cloudless.runtime")

# The import namespace of WASI preview 1, which the linker defines.
WASI_MODULE = "wasi_snapshot_preview1"
_WASM_PAGE_BYTES = 65536


@dataclass(frozen=True)
class LoadedPackage:
    """A verified package with its modules compiled, in link order."""

    package: FunctionPackage
    modules: tuple[tuple[str, wasmtime.Module], ...]

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
    creation to the decoded output.
    """

    output: bytes
    fuel_used: int
    stdout: bytes
    stderr: bytes
    wall_ms: float


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
        """Stop the epoch ticker. Calling close twice is harmless.

        Later calls raise WasmCallError. Calls still running lose their
        wall-time limit, but fuel and memory limits still apply.
        """
        self._closed = True
        self._ticker.stop()

    def load(self, package_bytes: bytes, *, cid: str | None = None) -> LoadedPackage:
        """Verify a package and compile its modules, or take them from the cache.

        Raises PackageError subclasses for a CID mismatch, a bad layout or
        manifest, and modules that fail to compile, link or match ABI v1.
        """
        package = read_package(package_bytes, cid, host_limits=self.host_limits)
        compiled = []
        for package_module in package.modules:
            module = self._cache.get(package.cid, package_module.name, package_module.wasm)
            compiled.append((package_module.name, module))

        _check_imports(compiled)
        facade_name, facade = compiled[-1]
        check_facade_signatures(facade, facade_name, package.function_names)
        logger.info(
            "loaded package %s (%s %s, functions %s)",
            package.cid,
            package.manifest.name,
            package.manifest.version,
            ", ".join(package.function_names),
        )
        return LoadedPackage(package=package, modules=tuple(compiled))

    def call(self, package: LoadedPackage, function: str, input_bytes: bytes) -> CallResult:
        """Run `function` of a loaded package on `input_bytes` in a fresh store.

        Raises a WasmCallError subclass, which carries `fuel_used`, when the
        call fails: FunctionNotFoundError, InvalidInputError,
        FuelExhaustedError, MemoryLimitError, WallTimeExceededError,
        WasmTrapError, GuestError or InvalidOutputError.
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

        limits = package.manifest.limits
        started = time.perf_counter()
        execution = self._execute(package, function, bytes(input_bytes))
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
        return CallResult(
            output=envelope.output,
            fuel_used=fuel_used,
            stdout=execution.stdout,
            stderr=execution.stderr,
            wall_ms=wall_ms,
        )

    def _execute(self, package: LoadedPackage, function: str, input_bytes: bytes) -> _Execution:
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

        instances: list[wasmtime.Instance] = []
        failure: Exception | None = None
        packed = 0
        with WasiSandbox(package.manifest.wasi) as sandbox:
            store.set_wasi(sandbox.build_config())
            try:
                packed = self._invoke(store, package, function, input_bytes, instances)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
                failure = error
            stdout, stderr = sandbox.read_streams()

        return _Execution(
            store=store,
            instances=instances,
            packed=packed,
            failure=failure,
            fuel_used=limits.fuel - store.get_fuel(),
            stdout=stdout,
            stderr=stderr,
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
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        for name, module in package.modules:
            instance = linker.instantiate(store, module)
            instances.append(instance)
            initialize = instance.exports(store).get("_initialize")
            # A wasm32-wasip1 cdylib is a WASI reactor that must run
            # `_initialize` once before any other export.
            if isinstance(initialize, wasmtime.Func):
                initialize(store)
            linker.define_instance(store, name, instance)

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
            raise InvalidOutputError(
                f"function {function!r} returned {output_len} bytes of output, more than the maximum of "
                f"{self.host_limits.max_output_bytes} bytes; return a smaller result",
                fuel_used=fuel_used,
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


def _check_imports(modules: list[tuple[str, wasmtime.Module]]) -> None:
    """Check that every import is WASI or an export of an earlier module in link order."""
    earlier_exports: dict[str, set[str]] = {}
    for name, module in modules:
        for imported in module.imports:
            namespace = imported.module
            if namespace == WASI_MODULE:
                continue
            if namespace not in earlier_exports:
                raise PackageFormatError(
                    f"module {name!r} imports {namespace}.{imported.name}, but {namespace!r} is neither WASI "
                    f"nor an earlier module (earlier modules: {sorted(earlier_exports) or 'none'}); "
                    "list the providing module before it in the manifest"
                )
            if imported.name not in earlier_exports[namespace]:
                raise PackageFormatError(
                    f"module {name!r} imports {namespace}.{imported.name}, but module {namespace!r} "
                    f"does not export {imported.name!r}"
                )
        earlier_exports[name] = {export.name for export in module.exports}


def _memory_at_limit(store: wasmtime.Store, instances: list[wasmtime.Instance], memory_bytes: int) -> bool:
    """Return True if any linear memory of the call cannot grow by one more page."""
    for instance in instances:
        for export in instance.exports(store).values():
            if isinstance(export, wasmtime.Memory) and export.data_len(store) + _WASM_PAGE_BYTES > memory_bytes:
                return True
    return False
