"""Guest ABI v1: export signatures, the packed return value and the output envelope.

A callable function has the signature `(ptr: i32, len: i32) -> i64`. The host
writes the input into a buffer from `cloudless_alloc(len)`, and the guest
returns `(out_ptr << 32) | out_len` as the bit pattern of an i64. The output
is UTF-8 JSON, either `{"ok": <value>}` or `{"error": "<message>"}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import wasmtime

from cloudless.exceptions import InvalidOutputError, PackageFormatError

__all__ = [
    "ABI_VERSION",
    "Envelope",
    "check_facade_signatures",
    "decode_envelope",
    "unpack_output_location",
]

ABI_VERSION = 1

# Parameter and result types, as wasmtime's ValType prints them.
_ABI_FUNCTION_TYPES: dict[str, tuple[list[str], list[str]]] = {
    "cloudless_abi_version": ([], ["i32"]),
    "cloudless_alloc": (["i32"], ["i32"]),
    "cloudless_free": (["i32", "i32"], []),
}
_CALLABLE_TYPE = (["i32", "i32"], ["i64"])


@dataclass(frozen=True)
class Envelope:
    """A decoded output envelope: exactly one of `output` and `error` is set.

    `output` is the "ok" value as compact JSON with sorted keys.
    """

    output: bytes | None
    error: str | None


def check_facade_signatures(module: wasmtime.Module, module_name: str, functions: tuple[str, ...]) -> None:
    """Check the facade's ABI exports and callable functions have the ABI v1 types.

    Raises PackageFormatError naming the export and both signatures.
    """
    exports = {export.name: export.type for export in module.exports}

    memory = exports.get("memory")
    if not isinstance(memory, wasmtime.MemoryType) or memory.is_64 or memory.is_shared:
        raise PackageFormatError(
            f"facade module {module_name!r} must export 'memory' as a 32-bit, non-shared linear memory"
        )

    expected_types = dict(_ABI_FUNCTION_TYPES)
    expected_types.update({name: _CALLABLE_TYPE for name in functions})
    for name, (params, results) in expected_types.items():
        export_type = exports.get(name)
        if not isinstance(export_type, wasmtime.FuncType):
            raise PackageFormatError(f"facade module {module_name!r} does not export function {name!r}")
        actual = ([str(value) for value in export_type.params], [str(value) for value in export_type.results])
        if actual != (params, results):
            raise PackageFormatError(
                f"facade export {name!r} of module {module_name!r} has type {_signature(*actual)}, "
                f"but guest ABI v1 requires {_signature(params, results)}; fix the export's signature"
            )


def unpack_output_location(packed: int) -> tuple[int, int]:
    """Split the i64 that a function returns into (out_ptr, out_len)."""
    bits = packed & 0xFFFFFFFFFFFFFFFF
    return bits >> 32, bits & 0xFFFFFFFF


def decode_envelope(raw: bytes, *, function: str, fuel_used: int) -> Envelope:
    """Parse the output envelope that a function wrote.

    Raises InvalidOutputError if `raw` is not valid UTF-8, or is not JSON of
    the form `{"ok": value}` or `{"error": message}`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidOutputError(
            f"function {function!r} returned output that is not valid UTF-8: byte "
            f"0x{raw[error.start]:02x} at offset {error.start} of {len(raw)} ({error.reason}); "
            "the guest must return UTF-8 JSON",
            fuel_used=fuel_used,
        ) from error
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise InvalidOutputError(
            f"function {function!r} returned output that is not valid JSON ({error}); "
            'the guest must return {"ok": value} or {"error": message}',
            fuel_used=fuel_used,
        ) from error

    if not isinstance(document, dict) or len(document) != 1 or not ({"ok", "error"} & document.keys()):
        excerpt = text if len(text) <= 200 else text[:200] + "..."
        raise InvalidOutputError(
            f"function {function!r} returned {excerpt!r}, which is not an output envelope; "
            'the guest must return {"ok": value} or {"error": message}',
            fuel_used=fuel_used,
        )

    if "error" in document:
        message = document["error"]
        if not isinstance(message, str):
            message = json.dumps(message, separators=(",", ":"), sort_keys=True)
        return Envelope(output=None, error=message)

    output = json.dumps(document["ok"], separators=(",", ":"), sort_keys=True, allow_nan=False)
    return Envelope(output=output.encode("utf-8"), error=None)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _signature(params: list[str], results: list[str]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"
