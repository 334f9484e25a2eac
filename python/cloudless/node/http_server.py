"""A uvicorn server in a background thread, shared by the provider node and the gateway."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from cloudless.exceptions import ServiceError

__all__ = ["ServerThread"]


class ServerThread:
    """Serve `app` on `host:port` from a daemon thread. `start` returns once the socket is listening.

    Port 0 binds a free port, and `port` reports the bound one after `start`.
    uvicorn installs no signal handlers outside the main thread, so the
    caller handles SIGTERM and SIGINT and calls `stop`.
    """

    def __init__(self, app: FastAPI, host: str, port: int, *, logger_name: str) -> None:
        self._logger = logging.getLogger(logger_name)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self, timeout_seconds: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServiceError(f"HTTP server on {self._host}:{self._port} failed to start; is the port in use?")
            if time.monotonic() > deadline:
                raise ServiceError(f"HTTP server on {self._host}:{self._port} did not start within {timeout_seconds:.0f} s")
            time.sleep(0.02)
        servers = getattr(self._server, "servers", [])
        if self._port == 0 and servers and servers[0].sockets:
            self._port = int(servers[0].sockets[0].getsockname()[1])
        self._logger.info("HTTP API listening on %s", self.url)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_seconds)
        if self._thread.is_alive():
            self._logger.warning("HTTP server on %s did not stop within %.0f s", self.url, timeout_seconds)
        else:
            self._logger.info("HTTP API on %s stopped", self.url)
