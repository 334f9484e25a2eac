"""Per-module WASI grants: which imports a module may have, and the linkers that enforce them.

A module may import:

* the always-allowed WASI preview 1 functions: `args_*`, `environ_*`,
  every `fd_*` and `path_*` function, `proc_exit` and `sched_yield`;
* `clock_time_get`, `clock_res_get` and `poll_oneoff` with the "clock" grant,
  and `random_get` with the "random" grant;
* the host functions `cloudless.call_params` and `cloudless.log`;
* exports of modules that come earlier in link order.

Everything else is rejected at load time, including the WASI socket
functions (`sock_*`) and `proc_raise`, which no grant allows.

wasmtime-py configures WASI per store, not per instance, so the store of a
call gets the union of what its modules need. It has the manifest's
environment variables when any module has "env", and the per-deal
directory at /data when any module has "files". A module without one of
these grants is linked against stub functions that hide it. Its `environ_*`
imports report no variables, and its `path_*`, `fd_prestat_get`,
`fd_prestat_dir_name` and `fd_readdir` imports fail with a WASI error, so it
can neither find, list nor open anything under /data.

NOTE: WASI file descriptors belong to the store, so the other `fd_*`
functions of a module without "files" still work on the descriptors of the
call. Such a module can read or write a file that a module with "files"
opened, and read the metadata of, close or renumber the /data descriptor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import wasmtime

from cloudless.exceptions import ImportNotAllowedError, PackageFormatError
from cloudless.runtime.host_functions import HOST_FUNCTION_ARITIES, define_host_functions, host_function_type
from cloudless.runtime.manifest import HOST_NAMESPACE

__all__ = [
    "WASI_MODULE",
    "LinkerSet",
    "ModuleLinkPlan",
    "check_imports",
    "required_grant",
]

# The import namespace of WASI preview 1, which the linker defines.
WASI_MODULE = "wasi_snapshot_preview1"

# WASI preview 1 functions by the grant that allows them. None means always allowed.
_FUNCTIONS_BY_GRANT: dict[str | None, tuple[str, ...]] = {
    None: (
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_dir_name",
        "fd_prestat_get",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "proc_exit",
        "sched_yield",
    ),
    "clock": ("clock_res_get", "clock_time_get", "poll_oneoff"),
    "random": ("random_get",),
}
_GRANT_OF_FUNCTION = {name: grant for grant, names in _FUNCTIONS_BY_GRANT.items() for name in names}

# Functions that find, list or open paths under a preopened directory, stubbed for modules without "files".
_PATH_FUNCTIONS = tuple(
    name
    for name in _FUNCTIONS_BY_GRANT[None]
    if name.startswith("path_") or name.startswith("fd_prestat_") or name == "fd_readdir"
)

# WASI errno values (wasi_snapshot_preview1 `errno` enum).
_ERRNO_SUCCESS = 0
_ERRNO_BADF = 8
_ERRNO_NOTCAPABLE = 76


def required_grant(name: str) -> str | None:
    """Return the grant that allows the WASI function `name`, or None if it is always allowed.

    Raises KeyError if no grant allows it (sockets, `proc_raise`, or a name
    that WASI preview 1 does not define).
    """
    return _GRANT_OF_FUNCTION[name]


@dataclass(frozen=True)
class ModuleLinkPlan:
    """How to instantiate one module of a package in each call.

    `linker` defines WASI and the host functions as this module's grants
    allow. `imports` is None when every import comes from `linker`, so
    `linker.instantiate` suffices. Otherwise it lists each import in order
    as (namespace, name), and imports from earlier modules are resolved
    against their instances in the call's store.
    """

    name: str
    module: wasmtime.Module
    linker: wasmtime.Linker
    imports: tuple[tuple[str, str], ...] | None
    has_initialize: bool


class LinkerSet:
    """The linkers of one engine, one per combination of hidden environment and hidden paths.

    A linker keeps no store state, so calls in any thread share them. Each
    is built on first use.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._linkers: dict[tuple[bool, bool], wasmtime.Linker] = {}
        self._wasi_types: dict[str, wasmtime.FuncType] | None = None
        self._lock = threading.Lock()

    def linker(self, *, hide_env: bool, hide_paths: bool) -> wasmtime.Linker:
        """Return the linker that stubs the environment and path functions as requested."""
        key = (hide_env, hide_paths)
        with self._lock:
            linker = self._linkers.get(key)
            if linker is None:
                linker = self._build(hide_env=hide_env, hide_paths=hide_paths)
                self._linkers[key] = linker
            return linker

    def wasi_function_types(self) -> dict[str, wasmtime.FuncType]:
        """Return the type of every WASI preview 1 function that a module may import."""
        plain = self.linker(hide_env=False, hide_paths=False)
        with self._lock:
            if self._wasi_types is None:
                store = wasmtime.Store(self._engine)
                types = {}
                for name in _GRANT_OF_FUNCTION:
                    function = plain.get(store, WASI_MODULE, name)
                    assert isinstance(function, wasmtime.Func)
                    types[name] = function.type(store)
                self._wasi_types = types
            return self._wasi_types

    def _build(self, *, hide_env: bool, hide_paths: bool) -> wasmtime.Linker:
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        define_host_functions(linker)
        if not (hide_env or hide_paths):
            return linker

        linker.allow_shadowing = True
        store = wasmtime.Store(self._engine)
        stubs: list[tuple[str, Callable[..., int]]] = []
        if hide_env:
            stubs += [("environ_sizes_get", _report_no_environment), ("environ_get", _write_nothing)]
        if hide_paths:
            for name in _PATH_FUNCTIONS:
                errno = _ERRNO_BADF if name.startswith("fd_") else _ERRNO_NOTCAPABLE
                stubs.append((name, _fail_with(errno)))
        for name, stub in stubs:
            original = linker.get(store, WASI_MODULE, name)
            assert isinstance(original, wasmtime.Func)
            linker.define_func(WASI_MODULE, name, original.type(store), stub, access_caller=True)
        return linker


def check_imports(
    name: str,
    module: wasmtime.Module,
    grants: Iterable[str],
    earlier_exports: dict[str, dict[str, wasmtime.ExternType]],
    wasi_types: dict[str, wasmtime.FuncType],
) -> bool:
    """Check every import of `module` against its grants and the earlier modules' exports.

    Returns True if the module imports from an earlier module. Raises
    ImportNotAllowedError for a WASI import that its grants do not allow,
    and PackageFormatError for any other import that nothing provides or
    whose type does not match.
    """
    granted = set(grants)
    imports_earlier_module = False
    for imported in module.imports:
        namespace, import_name = imported.module, imported.name
        qualified = f"{namespace}.{import_name}"
        if namespace == WASI_MODULE:
            _check_wasi_import(name, qualified, import_name, granted)
            _check_function_type(name, qualified, imported.type, wasi_types[import_name], "WASI preview 1")
        elif namespace == HOST_NAMESPACE:
            if import_name not in HOST_FUNCTION_ARITIES:
                raise PackageFormatError(
                    f"module {name!r} imports {qualified}, but the host namespace {HOST_NAMESPACE!r} only "
                    f"defines {', '.join(sorted(HOST_FUNCTION_ARITIES))}; "
                    "build the module with a matching Cloudless SDK"
                )
            expected = host_function_type(import_name)
            _check_function_type(name, qualified, imported.type, expected, "the Cloudless host")
        elif namespace in earlier_exports:
            if import_name not in earlier_exports[namespace]:
                raise PackageFormatError(
                    f"module {name!r} imports {qualified}, but module {namespace!r} does not export {import_name!r}"
                )
            imports_earlier_module = True
        else:
            raise PackageFormatError(
                f"module {name!r} imports {qualified}, but {namespace!r} is neither WASI, the host namespace "
                f"{HOST_NAMESPACE!r} nor an earlier module (earlier modules: {sorted(earlier_exports) or 'none'}); "
                "list the providing module before it in the manifest"
            )
    return imports_earlier_module


def _check_wasi_import(module_name: str, qualified: str, function: str, granted: set[str]) -> None:
    try:
        grant = required_grant(function)
    except KeyError:
        if function.startswith("sock_"):
            reason = "WASI sockets are not available to functions, and no grant allows them"
        else:
            reason = "no grant allows it"
        raise ImportNotAllowedError(
            f"module {module_name!r} imports {qualified}, but {reason}; remove the import from the module",
            module=module_name,
            import_name=qualified,
            grant=None,
        ) from None
    if grant is not None and grant not in granted:
        raise ImportNotAllowedError(
            f"module {module_name!r} imports {qualified}, which needs the {grant!r} grant; add {grant!r} to "
            f"the module's grants in manifest.json or remove the import",
            module=module_name,
            import_name=qualified,
            grant=grant,
        )


def _check_function_type(
    module_name: str, qualified: str, actual: wasmtime.ExternType, expected: wasmtime.FuncType, provider: str
) -> None:
    if not isinstance(actual, wasmtime.FuncType):
        raise PackageFormatError(
            f"module {module_name!r} imports {qualified} as a {type(actual).__name__}, but {provider} "
            "defines it as a function; fix the import"
        )
    if _signature(actual) != _signature(expected):
        raise PackageFormatError(
            f"module {module_name!r} imports {qualified} with type {_signature(actual)}, but {provider} "
            f"defines {_signature(expected)}; fix the import's signature"
        )


def _signature(function_type: wasmtime.FuncType) -> str:
    params = ", ".join(str(value) for value in function_type.params)
    results = ", ".join(str(value) for value in function_type.results)
    return f"({params}) -> ({results})"


def _report_no_environment(caller: wasmtime.Caller, count_ptr: int, size_ptr: int) -> int:
    """Stand in for environ_sizes_get: zero variables of zero bytes."""
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return _ERRNO_BADF
    zero = bytes(4)
    try:
        memory.write(caller, zero, count_ptr & 0xFFFFFFFF)
        memory.write(caller, zero, size_ptr & 0xFFFFFFFF)
    except IndexError:
        # The real environ_sizes_get reports a bad pointer as EFAULT (21).
        return 21
    return _ERRNO_SUCCESS


def _write_nothing(caller: wasmtime.Caller, *args: int) -> int:
    """Stand in for environ_get: with zero variables there is nothing to write."""
    return _ERRNO_SUCCESS


def _fail_with(errno: int) -> Callable[..., int]:
    def stub(caller: wasmtime.Caller, *args: int) -> int:
        return errno

    return stub
