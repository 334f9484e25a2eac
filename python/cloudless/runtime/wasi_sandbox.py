"""WASI configuration of one call, and capture of its stdout and stderr.

The guest gets no arguments, an empty stdin, the manifest's environment
variables only when a module has the "env" grant, and the caller's per-deal
directory at /data only when a module has the "files" grant. Stdout and
stderr go to two scratch files per thread, which each call's WasiConfig
truncates when it opens them, and are read back cut to the manifest's
`wasi.stdout_limit_bytes`. Reusing the files saves creating and removing
a temporary directory per call, which took about 0.3 ms.

NOTE: wasmtime-py 38 can send WASI output only to a file or to the host's
own streams, so a guest may write more than the limit to disk during one
call. Fuel bounds the number of write calls but not the bytes per write.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import BinaryIO

import wasmtime

__all__ = ["DATA_GUEST_PATH", "OutputCapture"]

# Guest path of the per-deal directory for modules with the "files" grant.
DATA_GUEST_PATH = "/data"


class _ThreadFiles:
    """The stdout and stderr scratch files of one thread, with read handles kept open."""

    def __init__(self, directory: Path, number: int) -> None:
        self.stdout_path = str(directory / f"{number}.stdout")
        self.stderr_path = str(directory / f"{number}.stderr")
        # Create the files so that the read handles can be opened now.
        # wasmtime opens them with O_TRUNC, which keeps the same inode, so
        # the handles see what each call writes.
        self.stdout: BinaryIO = open(self.stdout_path, "w+b")  # noqa: SIM115 - closed in close()
        self.stderr: BinaryIO = open(self.stderr_path, "w+b")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        Path(self.stdout_path).unlink(missing_ok=True)
        Path(self.stderr_path).unlink(missing_ok=True)


class OutputCapture:
    """Build each call's WasiConfig and read back its output, from any number of threads.

    The scratch files live in one private temporary directory that `close()`
    removes. A thread's files are closed and removed when the thread object
    is garbage collected.
    """

    def __init__(self) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="cloudless-wasi-"))
        self._local = threading.local()
        self._all_files: set[_ThreadFiles] = set()
        # Files are numbered, not named after thread ids, because a new
        # thread may reuse the id of one whose files are not removed yet.
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._closed = False

    def build_config(self, env: tuple[tuple[str, str], ...] | None, data_dir: Path | None) -> wasmtime.WasiConfig:
        """Return a fresh WasiConfig for one call on this thread.

        A store consumes the config that it is given, so each call needs a
        new one. `env` is the list of variables to set, and `data_dir` is
        preopened read-write at /data when given.
        """
        files = self._thread_files()
        config = wasmtime.WasiConfig()
        if env:
            config.env = list(env)
        if data_dir is not None:
            config.preopen_dir(str(data_dir), DATA_GUEST_PATH)
        config.stdout_file = files.stdout_path
        config.stderr_file = files.stderr_path
        return config

    def read(self, limit: int) -> tuple[bytes, bytes]:
        """Return (stdout, stderr) of this thread's last call, each cut to `limit` bytes."""
        files = self._thread_files()
        return _read_from_start(files.stdout, limit), _read_from_start(files.stderr, limit)

    def close(self) -> None:
        """Close the read handles and remove the scratch directory. Calling it twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for files in self._all_files:
                files.close()
            self._all_files.clear()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _thread_files(self) -> _ThreadFiles:
        files: _ThreadFiles | None = getattr(self._local, "files", None)
        if files is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("OutputCapture is closed")
                files = _ThreadFiles(self._directory, next(self._numbers))
                self._all_files.add(files)
            weakref.finalize(threading.current_thread(), self._release, files)
            self._local.files = files
        return files

    def _release(self, files: _ThreadFiles) -> None:
        with self._lock:
            if files not in self._all_files:
                return
            self._all_files.discard(files)
        files.close()


def _read_from_start(handle: BinaryIO, limit: int) -> bytes:
    try:
        handle.seek(0)
        return handle.read(limit)
    except ValueError:
        # `close()` closed the handle while this call was running.
        return b""
