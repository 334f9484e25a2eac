"""Compiled-module cache, in memory and on disk.

Compiling a module with Cranelift takes far longer than loading the machine
code that `wasmtime.Module.serialize()` wrote earlier: for the 200 KB
penguins example, about 1.2 s against under 15 ms on a 2-CPU Linux VM. So
compiled modules are kept in memory and, when a cache directory is
configured, on disk.

Disk entries are keyed by package CID, module name and wasmtime version:
`<cid>.<module>.wasmtime-<version>.cwasm`, next to a `.sha256` file holding
the digest of the `.cwasm` bytes. A file that fails the digest check or that
wasmtime refuses to deserialize is logged, recompiled and replaced.

NOTE: a `.cwasm` file is native code that wasmtime maps and runs without
validating it again. The digest catches corruption, not tampering, so the
cache directory must be writable only by the node's own user.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import wasmtime

from cloudless.exceptions import PackageFormatError
from cloudless.runtime.traps import describe_wasmtime_error

__all__ = ["ModuleCache", "WASMTIME_VERSION"]

logger = logging.getLogger("cloudless.runtime")

WASMTIME_VERSION = importlib.metadata.version("wasmtime")


class ModuleCache:
    """Compile Wasm modules once per (CID, module name) and reuse the result.

    `compile_count` counts Cranelift compilations and `disk_hits` counts
    modules loaded from the disk cache, so callers and tests can see which
    path a load took. Safe to use from several threads.
    """

    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None, max_in_memory: int = 256) -> None:
        self._engine = engine
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._max_in_memory = max_in_memory
        self._memory: OrderedDict[tuple[str, str], wasmtime.Module] = OrderedDict()
        self._lock = threading.Lock()
        self.compile_count = 0
        self.disk_hits = 0
        if self._cache_dir is not None:
            self._cache_dir.mkdir(parents=True, exist_ok=True)

    def cache_file(self, cid: str, module_name: str) -> Path | None:
        """Return the disk cache path of a module, or None without a cache directory."""
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"{cid}.{module_name}.wasmtime-{WASMTIME_VERSION}.cwasm"

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

            module = self._load_from_disk(cid, module_name)
            if module is None:
                module = self._compile(cid, module_name, wasm)
                self._store_on_disk(cid, module_name, module)

            self._memory[key] = module
            if len(self._memory) > self._max_in_memory:
                self._memory.popitem(last=False)
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

    def _load_from_disk(self, cid: str, module_name: str) -> wasmtime.Module | None:
        path = self.cache_file(cid, module_name)
        if path is None or not path.exists():
            return None

        digest_path = _digest_path(path)
        try:
            expected_digest = digest_path.read_text(encoding="ascii").strip()
            actual_digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except (OSError, UnicodeDecodeError) as error:
            logger.warning("cannot read compiled module cache %s (%s); recompiling", path, error)
            return None
        if actual_digest != expected_digest:
            logger.warning(
                "compiled module cache %s is corrupt (sha256 %s, expected %s); recompiling",
                path,
                actual_digest,
                expected_digest or "missing",
            )
            return None

        try:
            module = wasmtime.Module.deserialize_file(self._engine, str(path))
        except wasmtime.WasmtimeError as error:
            logger.warning("wasmtime rejected compiled module cache %s (%s); recompiling", path, describe_wasmtime_error(error))
            return None
        self.disk_hits += 1
        logger.debug("loaded module %s of package %s from %s", module_name, cid, path)
        return module

    def _store_on_disk(self, cid: str, module_name: str, module: wasmtime.Module) -> None:
        path = self.cache_file(cid, module_name)
        if path is None:
            return
        serialized = bytes(module.serialize())
        try:
            # The .cwasm file goes first: a crash between the two writes
            # leaves a stale or missing digest, which reads as corrupt.
            _write_atomically(path, serialized)
            _write_atomically(_digest_path(path), hashlib.sha256(serialized).hexdigest().encode("ascii"))
        except OSError as error:
            logger.warning("cannot write compiled module cache %s (%s); continuing without it", path, error)


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
