"""Run a service in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["run_until_signal"]


def run_until_signal(start: Callable[[], None], stop: Callable[[], None], logger: logging.Logger) -> None:
    """Call `start`, block until SIGTERM or SIGINT, then call `stop` (also when `start` fails)."""
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop_requested.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        start()
        # A timed wait lets the signal handler run promptly in the main thread.
        while not stop_requested.wait(0.5):
            pass
    finally:
        stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
