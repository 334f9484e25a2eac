"""WASI configuration for one call: nothing granted, output captured.

The guest gets no preopened directories, no arguments, an empty stdin and only
the environment variables that the manifest grants. Stdout and stderr go to
files in a private temporary directory and are read back truncated to the
manifest's `wasi.stdout_limit_bytes`.

NOTE: wasmtime-py 38 can send WASI output only to a file or to the host's
own streams, so a guest may write more than the limit to disk during one
call. Fuel bounds the number of write calls but not the bytes per write.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType

import wasmtime

from cloudless.runtime.manifest import WasiSettings

__all__ = ["WasiSandbox"]


class WasiSandbox:
    """Context manager that owns the temporary capture files of one call."""

    def __init__(self, settings: WasiSettings) -> None:
        self._settings = settings
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> WasiSandbox:
        self._directory = tempfile.TemporaryDirectory(prefix="cloudless-call-")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def build_config(self) -> wasmtime.WasiConfig:
        """Return a fresh WasiConfig, because a store consumes the config it is given."""
        config = wasmtime.WasiConfig()
        config.argv = []
        if self._settings.env:
            config.env = sorted(self._settings.env.items())
        config.stdout_file = str(self._stream_path("stdout"))
        config.stderr_file = str(self._stream_path("stderr"))
        return config

    def read_streams(self) -> tuple[bytes, bytes]:
        """Return (stdout, stderr), each cut to the manifest's stdout_limit_bytes."""
        return self._read_stream("stdout"), self._read_stream("stderr")

    def _read_stream(self, name: str) -> bytes:
        path = self._stream_path(name)
        if not path.exists():
            return b""
        with path.open("rb") as file:
            return file.read(self._settings.stdout_limit_bytes)

    def _stream_path(self, name: str) -> Path:
        if self._directory is None:
            raise RuntimeError("WasiSandbox is used outside its `with` block")
        return Path(self._directory.name) / name
