"""Durable file steps shared by the receipt store and the node's evidence store.

Both stores keep JSON Lines files that only grow by appends. An append writes
one line, flushes and fsyncs it, and fsyncs the directory when it creates a
file or directory. A crash during an append can leave a last line without its
newline, or a complete last line that is not valid JSON (zeros in a block that
was allocated but never written). `parse_json_lines` reports such a torn last
line instead of failing, so the store can skip it and truncate it later.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, Self, TypeVar

__all__ = [
    "AppendRollbackError",
    "InvalidLineError",
    "LockedDirectoryStore",
    "ParsedLines",
    "append_line",
    "fsync_directory",
    "lock_directory",
    "parse_json_lines",
    "truncate_file",
    "write_json_atomically",
]

T = TypeVar("T")

LOCK_FILE = ".lock"


def fsync_directory(path: Path) -> None:
    """Fsync a directory, so that a file created or removed in it survives a crash."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def lock_directory(root: Path, busy_message: str) -> IO[bytes]:
    """Take an exclusive flock on `root/.lock` and return the open file, which holds the lock until closed.

    Raises BlockingIOError with `busy_message` when another open file holds the lock.
    """
    lock_file = open(root / LOCK_FILE, "ab")
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        lock_file.close()
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise BlockingIOError(error.errno, busy_message) from error
        raise
    return lock_file


class LockedDirectoryStore:
    """Base of a store that owns one directory under the lock of `lock_directory` until `close`."""

    _guard: threading.Lock
    _lock_file: IO[bytes] | None

    def close(self) -> None:
        """Release the directory lock. Later calls on the store raise ReceiptStoreError."""
        with self._guard:
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_json_atomically(path: Path, value: object) -> None:
    """Replace `path` with the JSON of `value`: a reader sees the old file or the new one, never a mix."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as file:
        json.dump(value, file, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


@dataclass(frozen=True, slots=True)
class ParsedLines(Generic[T]):
    """Parsed complete lines of a JSON Lines file."""

    items: list[T]
    # Byte length of the valid lines. It is shorter than the file when the last line is torn.
    valid_length: int
    file_length: int

    @property
    def torn(self) -> bool:
        return self.valid_length != self.file_length


class InvalidLineError(ValueError):
    """A line other than the last cannot be parsed: the file is corrupt, not torn."""

    def __init__(self, line_number: int, cause: Exception) -> None:
        super().__init__(f"line {line_number}: {cause}")
        self.line_number = line_number
        self.cause = cause


def parse_json_lines(
    path: Path, parse: Callable[[bytes], T], errors: tuple[type[Exception], ...]
) -> ParsedLines[T]:
    """Parse every complete line of `path` with `parse`; a missing file has no lines.

    A last line without its newline, or a complete last line that `parse`
    rejects with one of `errors`, counts as torn. Such an error on any other
    line raises InvalidLineError.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ParsedLines(items=[], valid_length=0, file_length=0)

    lines = data.split(b"\n")
    # The segment after the last newline is empty unless the last write was cut short.
    complete_lines = lines[:-1]
    items: list[T] = []
    valid_length = 0
    for line_number, line in enumerate(complete_lines, start=1):
        try:
            item = parse(line)
        except errors as error:
            if line_number == len(complete_lines) and not lines[-1]:
                break
            raise InvalidLineError(line_number, error) from error
        items.append(item)
        valid_length += len(line) + 1
    return ParsedLines(items=items, valid_length=valid_length, file_length=len(data))


def truncate_file(path: Path, length: int) -> None:
    """Cut `path` to `length` bytes and fsync it; length 0 removes the file."""
    if length == 0:
        path.unlink(missing_ok=True)
    else:
        with open(path, "r+b") as file:
            file.truncate(length)
            file.flush()
            os.fsync(file.fileno())
    fsync_directory(path.parent)


class AppendRollbackError(OSError):
    """An append failed and cutting its partial line off failed too.

    `length` is the size the file must be truncated to before the next append.
    """

    def __init__(self, path: Path, length: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"{cause.strerror or cause}; {path} also could not be truncated to {length} bytes")
        self.path = path
        self.length = length
        self.cause = cause


def append_line(path: Path, line: bytes) -> None:
    """Append `line` (ending in a newline) to `path` durably: it is on disk when this returns.

    Creates the parent directory if needed. On a failed write the partial
    line is cut off again and the OSError is raised. If that cut fails too,
    AppendRollbackError is raised with the length to cut to later.
    """
    directory = path.parent
    created_directory = not directory.exists()
    created_file = not path.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created_directory:
        fsync_directory(directory.parent)
    with open(path, "ab") as file:
        length_before = file.seek(0, os.SEEK_END)
        try:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
            if created_file:
                fsync_directory(directory)
        except OSError as error:
            try:
                file.truncate(length_before)
                os.fsync(file.fileno())
            except OSError as rollback_error:
                raise AppendRollbackError(path, length_before, rollback_error) from error
            raise
