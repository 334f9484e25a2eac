"""Start, watch and stop the demo's child processes (anvil and the services).

Each child runs in its own process group with its output in a log file, so
`stop_all` can end it and everything it started, and a failure can show the
last lines of the log.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from cloudless.exceptions import ServiceError

__all__ = ["ManagedProcess", "ProcessGroup", "check_port_free", "log_tail"]

logger = logging.getLogger("cloudless.demo")


def check_port_free(port: int, what: str, option: str) -> None:
    """Raise ServiceError if something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise ServiceError(
                f"port {port} for the {what} is in use ({error.strerror}): stop the process that holds it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or pass {option} with a free port"
            ) from error


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, indented for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no log)"
    return "\n".join(f"    {line}" for line in text)


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def check_alive(self) -> None:
        """Raise ServiceError with the log tail if the process has exited."""
        code = self.process.poll()
        if code is not None:
            raise ServiceError(f"{self.name} exited with code {code}; last lines of {self.log_path}:\n{log_tail(self.log_path)}")


class ProcessGroup:
    """The children of one demo run; `stop_all` ends every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def start(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None) -> ManagedProcess:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                list(argv),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        managed = ManagedProcess(name=name, process=process, log_path=log_path)
        self.processes.append(managed)
        logger.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return managed

    def wait_until(self, managed: ManagedProcess, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `ready` until it returns True; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            managed.check_alive()
            if ready():
                return
            time.sleep(0.25)
        raise ServiceError(
            f"{managed.name} did not become ready ({what}) within {timeout:.0f} s; last lines of "
            f"{managed.log_path}:\n{log_tail(managed.log_path)}"
        )

    def wait_http(self, managed: ManagedProcess, url: str, timeout: float = 60.0) -> None:
        """Wait until `url` returns HTTP 200."""

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_until(managed, answers, f"GET {url}", timeout)

    def check_all_alive(self) -> None:
        for managed in self.processes:
            managed.check_alive()

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after `timeout`."""
        for managed in reversed(self.processes):
            if managed.process.poll() is None:
                logger.info("stopping %s (pid %d)", managed.name, managed.process.pid)
                _signal_group(managed.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for managed in reversed(self.processes):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", managed.name, timeout)
                _signal_group(managed.process, signal.SIGKILL)
                managed.process.wait(timeout=5)
        self.processes.clear()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
