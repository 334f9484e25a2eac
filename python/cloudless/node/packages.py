"""Function packages on the node: fetched by CID from gateways, verified, cached on disk and loaded."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from cloudless.cid import cid_to_bytes, verify_cid
from cloudless.exceptions import CloudlessError, PackageError, PackageFormatError, PackageUnavailableError
from cloudless.runtime.limits import MAX_PACKAGE_BYTES
from cloudless.runtime.package import read_package

__all__ = ["PackageCache"]

logger = logging.getLogger("cloudless.node")

# After a failed fetch, the next attempt for that CID waits this long,
# doubling per failure up to the maximum.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 60.0


class PackageCache:
    """Loaded packages by CID, backed by `<cache_dir>/<cid>` files and a Wasm runtime.

    `runtime` is a `WasmRuntime`; `get` is safe to call from the HTTP threads
    while the node loop calls `ensure`.
    """

    def __init__(
        self,
        runtime: Any,
        cache_dir: Path,
        sources: Sequence[str],
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._runtime = runtime
        self._cache_dir = cache_dir
        self._sources = list(sources)
        self._timeout = timeout_seconds
        self._loaded: dict[str, Any] = {}
        self._retry_at: dict[str, tuple[float, float]] = {}  # cid -> (monotonic time, delay)
        self._lock = threading.Lock()
        self._cache_dir.mkdir(parents=True, exist_ok=True)

    def get(self, cid: str) -> Any:
        """Return the loaded package for `cid`, raising PackageUnavailableError if it is not loaded."""
        with self._lock:
            loaded = self._loaded.get(cid)
        if loaded is None:
            raise PackageUnavailableError(
                f"package {cid} is not loaded on this node yet; retry shortly or call another worker"
            )
        return loaded

    def is_loaded(self, cid: str) -> bool:
        with self._lock:
            return cid in self._loaded

    def ensure(self, cid: str) -> bool:
        """Load `cid` from disk or the package sources unless it is loaded, and return whether it is loaded now.

        A failure is logged and retried on a later call after a growing delay.
        """
        if self.is_loaded(cid):
            return True
        retry_at, delay = self._retry_at.get(cid, (0.0, _RETRY_FIRST_SECONDS / 2))
        if time.monotonic() < retry_at:
            return False
        try:
            data = self._read_cached(cid)
            if data is None:
                data = self._fetch(cid)
                self._write_cached(cid, data)
            loaded = self._runtime.load(data, cid=cid)
        except (CloudlessError, OSError) as error:
            delay = min(delay * 2, _RETRY_MAX_SECONDS)
            self._retry_at[cid] = (time.monotonic() + delay, delay)
            logger.warning("could not load package %s, retrying in %.0f s: %s", cid, delay, error)
            return False
        with self._lock:
            self._loaded[cid] = loaded
        self._retry_at.pop(cid, None)
        logger.info("loaded package %s (%d bytes)", cid, len(data))
        return True

    def _path(self, cid: str) -> Path:
        # cid_to_bytes accepts only the canonical base32 form, so the name is a safe file name.
        cid_to_bytes(cid)
        return self._cache_dir / cid

    def _read_cached(self, cid: str) -> bytes | None:
        path = self._path(cid)
        if not path.is_file():
            return None
        data = path.read_bytes()
        try:
            verify_cid(data, cid)
        except PackageError as error:
            logger.warning("cached package %s is invalid, fetching it again: %s", path, error)
            path.unlink(missing_ok=True)
            return None
        return data

    def _write_cached(self, cid: str, data: bytes) -> None:
        path = self._path(cid)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    def _fetch(self, cid: str) -> bytes:
        """Download `cid` from the first source that serves valid bytes."""
        failures: list[str] = []
        for source in self._sources:
            url = f"{source}/packages/{cid}"
            try:
                data = self._download(url)
                verify_cid(data, cid)
                read_package(data, cid)
            except (httpx.HTTPError, PackageError) as error:
                logger.warning("package source %s failed for %s: %s", source, cid, error)
                failures.append(f"{source}: {error}")
                continue
            logger.info("fetched package %s from %s", cid, source)
            return data
        raise PackageUnavailableError(f"no package source served {cid}: " + "; ".join(failures))

    def _download(self, url: str) -> bytes:
        with httpx.stream("GET", url, timeout=self._timeout) as response:
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_PACKAGE_BYTES:
                    raise PackageFormatError(
                        f"{url} sent more than the package maximum of {MAX_PACKAGE_BYTES} bytes"
                    )
                chunks.append(chunk)
        return b"".join(chunks)
