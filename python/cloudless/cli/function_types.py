"""Read the input and output type names of a package's functions from its facade module.

For each exported function `NAME`, the Rust guest SDK also exports
`cloudless_describe_NAME: () -> i64`. It returns a buffer, packed like a
function's output as `(ptr << 32) | len`, that contains
`{"input": "<type>", "output": "<type>"}`. The packager instantiates the
modules once, calls these exports and records the names in the manifest's
`functions[].input` and `functions[].output`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import wasmtime

from cloudless.exceptions import PackageFormatError

__all__ = ["DESCRIBE_PREFIX", "FunctionTypes", "fill_function_types", "read_function_types"]

logger = logging.getLogger("cloudless.cli")

DESCRIBE_PREFIX = "cloudless_describe_"
UNTYPED = "json"
MAX_TYPE_NAME_CHARS = 128
# A describe call formats two short strings. The budget only stops a module
# that loops forever at build time.
_DESCRIBE_FUEL = 50_000_000
_WASI_MODULE = "wasi_snapshot_preview1"


@dataclass(frozen=True)
class FunctionTypes:
    """Type names of one function's input and output, as the manifest records them."""

    input: str
    output: str


def read_function_types(modules: Sequence[tuple[str, bytes]], functions: Sequence[str]) -> dict[str, FunctionTypes]:
    """Return the type names of `functions` that the facade (the last module) describes.

    Functions without a `cloudless_describe_NAME` export are left out, and a
    facade without any such export is not instantiated at all. Raises
    PackageFormatError when a module cannot be compiled or instantiated, or a
    describe export returns something other than the JSON above.
    """
    if not modules:
        return {}
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)

    compiled: list[tuple[str, wasmtime.Module]] = []
    for name, wasm in modules:
        try:
            compiled.append((name, wasmtime.Module(engine, wasm)))
        except wasmtime.WasmtimeError as error:
            raise PackageFormatError(f"module {name!r} is not a valid Wasm module: {error}") from error

    facade_name, facade = compiled[-1]
    facade_exports = {export.name for export in facade.exports}
    described = [function for function in functions if DESCRIBE_PREFIX + function in facade_exports]
    if not described:
        return {}

    store = wasmtime.Store(engine)
    store.set_fuel(_DESCRIBE_FUEL)
    store.set_wasi(wasmtime.WasiConfig())
    linker = _describe_linker(engine)
    instance = None
    for name, module in compiled:
        try:
            instance = linker.instantiate(store, module)
            initialize = instance.exports(store).get("_initialize")
            if isinstance(initialize, wasmtime.Func):
                initialize(store)
            linker.define_instance(store, name, instance)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as error:
            raise PackageFormatError(
                f"could not instantiate module {name!r} to read the function types: {error}"
            ) from error

    assert instance is not None
    exports = instance.exports(store)
    memory = exports.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise PackageFormatError(f"facade module {facade_name!r} does not export its memory")

    types: dict[str, FunctionTypes] = {}
    for function in described:
        types[function] = _call_describe(store, exports, memory, facade_name, function)
    return types


def fill_function_types(template: dict[str, Any], modules: dict[str, bytes]) -> dict[str, Any]:
    """Return a copy of a manifest template with `input` and `output` filled in from the facade.

    Values that the template sets are kept. `modules` maps module names to
    Wasm bytes, and the template's module order decides which is the facade.
    """
    filled = json.loads(json.dumps(template))
    entries = filled.get("functions")
    module_entries = filled.get("modules")
    if not isinstance(entries, list) or not isinstance(module_entries, list):
        return filled  # build_package reports the invalid fields

    ordered: list[tuple[str, bytes]] = []
    for entry in module_entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in modules:
            return filled
        ordered.append((name, modules[name]))

    names = [entry["name"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("name"), str)]
    types = read_function_types(ordered, names)
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("name") not in types:
            continue
        described = types[entry["name"]]
        entry.setdefault("input", described.input)
        entry.setdefault("output", described.output)
    return filled


def _describe_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """Return a linker with WASI and stand-ins for the host namespace `cloudless`.

    The stand-ins only let modules that log or read call parameters
    instantiate: the describe exports call neither.
    """
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    i32 = wasmtime.ValType.i32()
    linker.define_func("cloudless", "log", wasmtime.FuncType([i32, i32, i32], []), lambda level, ptr, length: None)
    linker.define_func("cloudless", "call_params", wasmtime.FuncType([i32, i32], [i32]), lambda ptr, length: 0)
    return linker


def _call_describe(
    store: wasmtime.Store,
    exports: wasmtime.InstanceExports,
    memory: wasmtime.Memory,
    module_name: str,
    function: str,
) -> FunctionTypes:
    export_name = DESCRIBE_PREFIX + function
    describe = exports[export_name]
    if not isinstance(describe, wasmtime.Func):
        raise PackageFormatError(f"export {export_name!r} of module {module_name!r} is not a function")
    try:
        packed = int(describe(store)) & 0xFFFFFFFFFFFFFFFF
    except (wasmtime.WasmtimeError, wasmtime.Trap, TypeError) as error:
        raise PackageFormatError(f"{module_name}.{export_name}() failed: {error}") from error

    pointer, length = packed >> 32, packed & 0xFFFFFFFF
    if pointer + length > memory.data_len(store):
        raise PackageFormatError(
            f"{module_name}.{export_name}() returned a buffer at {pointer} of {length} bytes, "
            "outside the module's memory"
        )
    raw = bytes(memory.read(store, pointer, pointer + length))
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise PackageFormatError(f"{module_name}.{export_name}() returned invalid JSON {raw[:200]!r}: {error}") from error
    if not isinstance(document, dict):
        raise PackageFormatError(f"{module_name}.{export_name}() returned {raw[:200]!r}, not a JSON object")
    return FunctionTypes(input=_type_name(document.get("input")), output=_type_name(document.get("output")))


def _type_name(value: object) -> str:
    """Return a type name that the manifest accepts: 1 to 128 characters, else "json"."""
    if isinstance(value, str) and 0 < len(value) <= MAX_TYPE_NAME_CHARS:
        return value
    logger.warning("function type name %r is empty, too long or not a string; recording %r", value, UNTYPED)
    return UNTYPED
