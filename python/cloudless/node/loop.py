"""The node's background loop: sync workers, load packages, prove epochs, claim and withdraw."""

from __future__ import annotations

import logging
import threading

from cloudless.formatting import format_count
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock, EpochProver
from cloudless.node.workers import TrackedWorker, WorkerTracker

__all__ = ["NodeLoop"]

logger = logging.getLogger("cloudless.node")

# After a failed cycle (usually an RPC error) the loop waits this long,
# doubling per consecutive failure up to the maximum.
_BACKOFF_FIRST_SECONDS = 1.0
_BACKOFF_MAX_SECONDS = 30.0


class NodeLoop:
    """Runs `run_once` every `interval_seconds` in a daemon thread until `stop`."""

    def __init__(
        self,
        *,
        tracker: WorkerTracker,
        packages: PackageCache,
        prover: EpochProver,
        clock: EpochClock,
        interval_seconds: float,
        claim_enabled: bool,
    ) -> None:
        self._tracker = tracker
        self._packages = packages
        self._prover = prover
        self._clock = clock
        self._interval = interval_seconds
        self._claim_enabled = claim_enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker_failures: dict[int, int] = {}  # worker id -> failed cycles in a row
        self.last_epoch: int | None = None
        self.cycles = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cloudless-node-loop", daemon=True)
        self._thread.start()
        logger.info("node loop started, polling every %.1f s", self._interval)

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Ask the loop to stop and wait for the current cycle to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            if self._thread.is_alive():
                logger.warning("node loop did not stop within %.0f s", timeout_seconds)
            else:
                logger.info("node loop stopped")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as error:  # noqa: BLE001 - the loop must survive RPC and node failures
                failures += 1
                delay = min(_BACKOFF_FIRST_SECONDS * 2 ** (failures - 1), _BACKOFF_MAX_SECONDS)
                logger.warning("node loop cycle failed (%d in a row), retrying in %.0f s: %s", failures, delay, error)
                logger.debug("node loop failure", exc_info=True)
                self._stop.wait(delay)
                continue
            if failures:
                logger.info("node loop recovered after %d failed cycles", failures)
            failures = 0
            self._stop.wait(self._interval)

    def run_once(self) -> None:
        """Run one cycle. Errors of one worker are logged and do not stop the others."""
        workers = self._tracker.sync()
        current = self._clock.current()
        if current != self.last_epoch:
            logger.info("chain epoch is %d; tracking %s", current, format_count(len(workers), "worker"))
        self.last_epoch = current

        for tracked in workers:
            if self._stop.is_set():
                return
            try:
                self._service_worker(tracked, current)
            except Exception as error:  # noqa: BLE001 - one bad worker must not stop the others
                self._log_worker_failure(tracked, current, error)
                continue
            failures = self._worker_failures.pop(tracked.worker_id, 0)
            if failures:
                logger.info("worker %d of deal %d recovered after %d failed cycles", tracked.worker_id, tracked.deal_id, failures)

        if self._claim_enabled:
            self._prover.withdraw_earnings()
        self.cycles += 1

    def _log_worker_failure(self, tracked: TrackedWorker, current: int, error: Exception) -> None:
        # A failure that repeats every cycle is logged on its 1st, 2nd, 4th, 8th ... occurrence.
        count = self._worker_failures.get(tracked.worker_id, 0) + 1
        self._worker_failures[tracked.worker_id] = count
        if count & (count - 1) == 0:
            logger.warning(
                "worker %d of deal %d failed in epoch %d (%d cycles in a row): %s",
                tracked.worker_id,
                tracked.deal_id,
                current,
                count,
                error,
            )
            logger.debug("worker failure", exc_info=True)

    def _service_worker(self, tracked: TrackedWorker, current: int) -> None:
        # A worker proves epochs only while its package loads, also after it
        # stopped taking calls. A proof claims that the worker could serve, so
        # a node that cannot fetch the package is not paid for the epoch.
        # `ensure` raises when the package cannot be fetched or verified.
        if not tracked.settled():
            self._packages.ensure(tracked.app_cid)
        self._prover.prove(tracked, current)
        if self._claim_enabled:
            self._prover.claim(tracked)
