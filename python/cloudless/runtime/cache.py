"""Compiled-module cache, in memory and on disk.

Compiling a module with Cranelift takes far longer than loading the machine
code that `wasmtime.Module.serialize()` wrote earlier: for the 200 KB
penguins example, about 1.2 s against under 15 ms on a 2-CPU Linux VM. So
compiled modules are kept in memory and, when a cache directory is
configured, on disk.

Disk entries are named `<cid>.<module>.wasmtime-<version>-<engine>.cwasm`.
`<engine>` is the engine fingerprint: the first 16 hex digits of the sha256
of an empty module that this engine compiled and serialized. wasmtime writes
its version, target and every code-generation setting (fuel metering, epoch
interruption, optimization level, enabled Wasm features) into each
serialized module, so engines whose compiled code differs get different
fingerprints and never share or overwrite each other's entries.

Each entry is one file: the 16-byte `ENTRY_MAGIC`, the 32-byte sha256 of the
serialized module, then the serialized module. It is written to a temporary
file and renamed into place, so a reader in any process sees either no
entry or a complete one. A process that misses the disk cache takes an
exclusive `flock` on `<entry>.lock` before it compiles, so several processes
that load the same package at once compile it once and the others read the
entry. An entry that is truncated, fails the digest check or that wasmtime
refuses to deserialize is logged, recompiled and replaced.

NOTE: a `.cwasm` entry is native code that wasmtime maps and runs without
validating it again. The digest catches corruption, not tampering, so the
cache directory must be writable only by the node's own user.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import wasmtime

from cloudless.exceptions import PackageFormatError
from cloudless.runtime.traps import describe_wasmtime_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; writes are still atomic there.
    fcntl = None  # type: ignore[assignment]

__all__ = ["ENTRY_MAGIC", "ModuleCache", "WASMTIME_VERSION", "engine_fingerprint"]

logger = logging.getLogger("cloudless.runtime")

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

# First bytes of every disk entry. Bump the trailing digit when the layout changes.
ENTRY_MAGIC = b"cloudless-cwasm1"
_DIGEST_BYTES = hashlib.sha256().digest_size
_HEADER_BYTES = len(ENTRY_MAGIC) + _DIGEST_BYTES
_FINGERPRINT_HEX_DIGITS = 16


def engine_fingerprint(engine: wasmtime.Engine) -> str:
    """Return 16 hex digits that differ between engines whose compiled code differs.

    Compiles and serializes an empty module, which takes about 1 ms. The
    serialized bytes contain the wasmtime version, the target and the engine
    settings that wasmtime checks when it deserializes, and nothing else that
    changes between runs, so equal engines always get equal fingerprints.
    """
    serialized = bytes(wasmtime.Module(engine, "(module)").serialize())
    return hashlib.sha256(serialized).hexdigest()[:_FINGERPRINT_HEX_DIGITS]


class ModuleCache:
    """Compile Wasm modules once per (CID, module name) and reuse the result.

    `compile_count` counts Cranelift compilations and `disk_hits` counts
    modules loaded from the disk cache, so callers and tests can see which
    path a load took. Safe to use from several threads, and several
    processes may share one cache directory.
    """

    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None, max_in_memory: int = 256) -> None:
        self._engine = engine
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._max_in_memory = max_in_memory
        self._memory: OrderedDict[tuple[str, str], wasmtime.Module] = OrderedDict()
        self._lock = threading.Lock()
        self._fingerprint: str | None = None
        self.compile_count = 0
        self.disk_hits = 0
        if self._cache_dir is not None:
            self._cache_dir.mkdir(parents=True, exist_ok=True)

    @property
    def fingerprint(self) -> str:
        """The engine fingerprint in disk entry names, computed on first use."""
        if self._fingerprint is None:
            self._fingerprint = engine_fingerprint(self._engine)
        return self._fingerprint

    def cache_file(self, cid: str, module_name: str) -> Path | None:
        """Return the disk cache path of a module, or None without a cache directory."""
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"{cid}.{module_name}.wasmtime-{WASMTIME_VERSION}-{self.fingerprint}.cwasm"

    def get(self, cid: str, module_name: str, wasm: bytes) -> wasmtime.Module:
        """Return the compiled module from memory, then disk, else compile it.

        Raises PackageFormatError if wasmtime rejects the Wasm bytes.
        """
        key = (cid, module_name)
        # One lock for lookups and compiles: two threads that load the same
        # package compile it once, at the cost of serializing compiles.
        with self._lock:
            module = self._memory.get(key)
            if module is not None:
                self._memory.move_to_end(key)
                return module

            module = self._load_or_compile(cid, module_name, wasm)
            self._memory[key] = module
            if len(self._memory) > self._max_in_memory:
                self._memory.popitem(last=False)
            return module

    def _load_or_compile(self, cid: str, module_name: str, wasm: bytes) -> wasmtime.Module:
        path = self.cache_file(cid, module_name)
        if path is None:
            return self._compile(cid, module_name, wasm)

        module = self._load_from_disk(path, cid, module_name)
        if module is not None:
            return module

        with _exclusive_lock(path.with_name(path.name + ".lock")):
            # Another process may have written the entry while this one waited for the lock.
            module = self._load_from_disk(path, cid, module_name)
            if module is None:
                module = self._compile(cid, module_name, wasm)
                self._store_on_disk(path, module)
        return module

    def _compile(self, cid: str, module_name: str, wasm: bytes) -> wasmtime.Module:
        try:
            module = wasmtime.Module(self._engine, wasm)
        except wasmtime.WasmtimeError as error:
            raise PackageFormatError(
                f"module {module_name!r} of package {cid} is not valid Wasm that this host accepts: "
                f"{describe_wasmtime_error(error)}; rebuild it for wasm32-wasip1"
            ) from error
        self.compile_count += 1
        logger.info("compiled module %s of package %s (%d bytes of Wasm)", module_name, cid, len(wasm))
        return module

    def _load_from_disk(self, path: Path, cid: str, module_name: str) -> wasmtime.Module | None:
        try:
            entry = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            logger.warning("cannot read compiled module cache %s (%s); recompiling", path, error)
            return None

        serialized = _check_entry(entry, path)
        if serialized is None:
            return None
        try:
            module = wasmtime.Module.deserialize(self._engine, serialized)
        except wasmtime.WasmtimeError as error:
            logger.warning("wasmtime rejected compiled module cache %s (%s); recompiling", path, describe_wasmtime_error(error))
            return None
        self.disk_hits += 1
        logger.debug("loaded module %s of package %s from %s", module_name, cid, path)
        return module

    def _store_on_disk(self, path: Path, module: wasmtime.Module) -> None:
        serialized = bytes(module.serialize())
        entry = ENTRY_MAGIC + hashlib.sha256(serialized).digest() + serialized
        try:
            _write_atomically(path, entry)
        except OSError as error:
            logger.warning("cannot write compiled module cache %s (%s); continuing without it", path, error)


def _check_entry(entry: bytes, path: Path) -> bytes | None:
    """Return the serialized module of a disk entry, or None after logging why the entry is corrupt."""
    if len(entry) < _HEADER_BYTES or not entry.startswith(ENTRY_MAGIC):
        logger.warning(
            "compiled module cache %s is corrupt (%d bytes, no %r header); recompiling", path, len(entry), ENTRY_MAGIC
        )
        return None
    expected = entry[len(ENTRY_MAGIC) : _HEADER_BYTES]
    serialized = entry[_HEADER_BYTES:]
    actual = hashlib.sha256(serialized).digest()
    if actual != expected:
        logger.warning(
            "compiled module cache %s is corrupt (sha256 %s, expected %s); recompiling",
            path,
            actual.hex(),
            expected.hex(),
        )
        return None
    return serialized


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path`, or no lock when it cannot be opened or flock is missing."""
    if fcntl is None:
        yield
        return
    try:
        handle = open(lock_path, "ab")
    except OSError as error:
        logger.warning("cannot open cache lock file %s (%s); compiling without it", lock_path, error)
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
