"""A background thread that advances a wasmtime engine's epoch at a fixed rate.

Wall-time limits use wasmtime's epoch interruption: each store gets a
deadline in epoch ticks, and Wasm code traps once the engine's epoch passes
it. One tick is `EPOCH_TICK_MS` milliseconds.
"""

from __future__ import annotations

import logging
import math
import threading

import wasmtime

from cloudless.exceptions import ConfigError

__all__ = ["EPOCH_TICK_MS", "EpochTicker"]

logger = logging.getLogger("cloudless.runtime")

EPOCH_TICK_MS = 10


class EpochTicker:
    """Increment `engine`'s epoch every `tick_ms` milliseconds on a daemon thread."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: int = EPOCH_TICK_MS) -> None:
        if tick_ms <= 0:
            raise ConfigError(f"invalid tick_ms={tick_ms}: expected a positive number of milliseconds")
        self._engine = engine
        self._tick_seconds = tick_ms / 1000
        self.tick_ms = tick_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudless-epoch-ticker", daemon=True)

    def start(self) -> None:
        """Start the ticker thread."""
        self._thread.start()
        logger.debug("epoch ticker started, one tick every %d ms", self.tick_ms)

    def stop(self) -> None:
        """Stop the ticker thread and wait for it to exit. Calling it twice is harmless."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            logger.debug("epoch ticker stopped")

    @property
    def running(self) -> bool:
        """Whether the ticker thread is alive."""
        return self._thread.is_alive() and not self._stop.is_set()

    def deadline_ticks(self, timeout_ms: int) -> int:
        """Convert a timeout in milliseconds to an epoch deadline in ticks.

        The current tick may be almost over when the deadline is set, so one
        tick is added: the guest is interrupted after at least `timeout_ms`
        and at most `timeout_ms + tick_ms` milliseconds, plus thread
        scheduling delay.
        """
        return math.ceil(timeout_ms / self.tick_ms) + 1

    def _run(self) -> None:
        while not self._stop.wait(self._tick_seconds):
            self._engine.increment_epoch()
