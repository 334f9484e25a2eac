"""The canonical ustar layout of a function package.

A package's CID is the hash of its tar bytes, so the same files must always
produce the same bytes. The writer below emits POSIX ustar headers by hand
(instead of `tarfile`) so that the byte layout does not depend on the Python
version: regular files only, in the given order, mode 0644, uid and gid 0,
empty user and group names, mtime 0, followed by two zero blocks and no
further padding.
"""

from __future__ import annotations

import io
import tarfile

from cloudless.exceptions import PackageFormatError

__all__ = ["read_tar_entries", "write_canonical_tar"]

_BLOCK = 512
_NAME_FIELD_BYTES = 100
_MODE = 0o644


def write_canonical_tar(entries: list[tuple[str, bytes]]) -> bytes:
    """Write (path, content) pairs as a canonical ustar archive, in the order given."""
    output = bytearray()
    for path, content in entries:
        output += _header(path, len(content))
        output += content
        output += bytes(-len(content) % _BLOCK)
    output += bytes(2 * _BLOCK)
    return bytes(output)


def read_tar_entries(data: bytes) -> list[tuple[str, bytes]]:
    """Return the (path, content) pairs of a tar archive, in archive order.

    Raises PackageFormatError for an unreadable tar, a non-regular entry or a
    duplicate path. The caller checks that the bytes are canonical by writing
    the entries again with `write_canonical_tar` and comparing.
    """
    entries: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if not member.isreg():
                    raise PackageFormatError(
                        f"package entry {member.name!r} is not a regular file; a package contains only "
                        "manifest.json and modules/<name>.wasm files"
                    )
                if member.name in seen:
                    raise PackageFormatError(f"package contains {member.name!r} twice; rebuild it with build_package")
                seen.add(member.name)
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise PackageFormatError(f"package entry {member.name!r} has no readable content")
                entries.append((member.name, extracted.read()))
    except tarfile.TarError as error:
        raise PackageFormatError(f"package is not a readable tar archive: {error}") from error
    return entries


def _header(path: str, size: int) -> bytes:
    encoded_path = path.encode("utf-8")
    if len(encoded_path) >= _NAME_FIELD_BYTES:
        raise PackageFormatError(
            f"package path {path!r} is {len(encoded_path)} bytes; ustar names must be shorter than {_NAME_FIELD_BYTES}"
        )

    header = bytearray(_BLOCK)
    header[0 : len(encoded_path)] = encoded_path
    header[100:108] = _octal(_MODE, 8)
    header[108:116] = _octal(0, 8)  # uid
    header[116:124] = _octal(0, 8)  # gid
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(0, 12)  # mtime
    header[148:156] = b" " * 8  # checksum field counts as spaces while summing
    header[156:157] = tarfile.REGTYPE
    header[257:263] = b"ustar\x00"
    header[263:265] = b"00"
    # uname, gname and the device numbers stay NUL-filled, as Python's
    # tarfile writes them for regular files.
    checksum = sum(header)
    header[148:156] = b"%06o\x00 " % checksum
    return bytes(header)


def _octal(value: int, width: int) -> bytes:
    """Format `value` as zero-padded octal digits followed by one NUL, `width` bytes in all."""
    digits = b"%0*o" % (width - 1, value)
    if len(digits) != width - 1:
        raise PackageFormatError(f"value {value} does not fit in a {width}-byte ustar field")
    return digits + b"\x00"
