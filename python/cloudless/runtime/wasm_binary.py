"""Read the export names of a Wasm binary without compiling it.

Package checks use this so that `read_package` works without a wasmtime
engine. Only the module header and section framing are checked here. Full
validation happens when wasmtime compiles the module.
"""

from __future__ import annotations

from cloudless.exceptions import PackageFormatError

__all__ = ["EXPORT_KINDS", "read_exports"]

_MAGIC = b"\x00asm"
_VERSION_1 = b"\x01\x00\x00\x00"
_EXPORT_SECTION_ID = 7

# Export kind byte to name, from the export section of the Wasm core spec's
# binary format. Kind 0x04 (tag) comes from the exception-handling proposal.
EXPORT_KINDS = {0x00: "func", 0x01: "table", 0x02: "memory", 0x03: "global", 0x04: "tag"}


def read_exports(wasm: bytes, module_name: str) -> dict[str, str]:
    """Return a map from export name to export kind ("func", "memory", ...).

    Raises PackageFormatError if `wasm` is not a core Wasm module binary or
    its sections are cut short.
    """
    reader = _Reader(wasm, module_name)
    if reader.take(4) != _MAGIC:
        raise PackageFormatError(f"module {module_name!r} is not a Wasm binary: missing the \\0asm magic bytes")
    if reader.take(4) != _VERSION_1:
        raise PackageFormatError(
            f"module {module_name!r} is not a core Wasm module of binary version 1 "
            "(a Wasm component is not supported); build it for wasm32-wasip1"
        )

    # Walk every section, not only up to the exports, so that a module cut
    # short anywhere is rejected here rather than at compile time.
    exports: dict[str, str] = {}
    while not reader.at_end():
        section_id = reader.take(1)[0]
        size = reader.read_u32()
        payload = _Reader(reader.take(size), module_name)
        if section_id == _EXPORT_SECTION_ID:
            exports = _read_export_section(payload)
    return exports


def _read_export_section(reader: _Reader) -> dict[str, str]:
    exports: dict[str, str] = {}
    for _ in range(reader.read_u32()):
        name_length = reader.read_u32()
        try:
            name = reader.take(name_length).decode("utf-8")
        except UnicodeDecodeError as error:
            raise reader.error(f"export name is not UTF-8 ({error})") from error
        kind_byte = reader.take(1)[0]
        reader.read_u32()  # index into the function, table, memory or global space
        exports[name] = EXPORT_KINDS.get(kind_byte, f"unknown(0x{kind_byte:02x})")
    return exports


class _Reader:
    def __init__(self, data: bytes, module_name: str) -> None:
        self._data = data
        self._offset = 0
        self._module_name = module_name

    def at_end(self) -> bool:
        return self._offset >= len(self._data)

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise self.error(f"needs {count} bytes at offset {self._offset}, but only {len(self._data) - self._offset} remain")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def read_u32(self) -> int:
        """Read an unsigned LEB128 integer of at most 32 bits (5 bytes)."""
        result = 0
        for index in range(5):
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << (7 * index)
            if byte & 0x80 == 0:
                if result > 0xFFFFFFFF:
                    raise self.error("LEB128 value does not fit in 32 bits")
                return result
        raise self.error("LEB128 value is longer than 5 bytes")

    def error(self, detail: str) -> PackageFormatError:
        return PackageFormatError(
            f"module {self._module_name!r} is not a valid Wasm binary: {detail}; rebuild the module"
        )
