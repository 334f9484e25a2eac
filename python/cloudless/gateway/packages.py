"""The gateway's package store: validated package tars under `<data_dir>/packages/<cid>`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cloudless.cid import cid_to_bytes
from cloudless.exceptions import InvalidCidError
from cloudless.runtime.package import FunctionPackage, read_package

__all__ = ["PackageStore"]

logger = logging.getLogger("cloudless.gateway")


class PackageStore:
    """Content-addressed package files; a file is only ever written whole (temporary file, fsync, rename)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._directory.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> FunctionPackage:
        """Validate `data` as a function package, store it under its CID and return it.

        Raises a PackageError subclass naming what is wrong with the package.
        """
        package = read_package(data)
        path = self._directory / package.cid
        if not path.is_file():
            temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
        logger.info(
            "stored package %s (%s %s, %d bytes, functions %s)",
            package.cid,
            package.manifest.name,
            package.manifest.version,
            len(data),
            ", ".join(package.function_names),
        )
        return package

    def path(self, cid: str) -> Path | None:
        """Return the file of `cid`, or None when the CID is malformed or not stored."""
        try:
            cid_to_bytes(cid)
        except InvalidCidError:
            return None
        path = self._directory / cid
        return path if path.is_file() else None
