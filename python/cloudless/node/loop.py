"""The node's background loop: sync workers, answer challenges, load packages, prove epochs, claim, withdraw and prune."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from cloudless.formatting import format_count
from cloudless.node.cheats import Cheats
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock, EpochProver
from cloudless.node.workers import TrackedWorker, WorkerTracker

if TYPE_CHECKING:
    from cloudless.node.answers import ChallengeAnswerer
    from cloudless.node.epoch_records import EpochRecords

__all__ = ["NodeLoop"]

logger = logging.getLogger("cloudless.node")

# After a failed cycle (usually an RPC error) the loop waits this long,
# doubling per consecutive failure up to the maximum.
_BACKOFF_FIRST_SECONDS = 1.0
_BACKOFF_MAX_SECONDS = 30.0


class NodeLoop:
    """Runs `run_once` every `interval_seconds` in a daemon thread until `stop`.

    With `answerer`, each round answers open challenges first. With
    `records`, each round then deletes the records of epochs that are
    `kept_epochs` (proof window plus challenge window) or more epochs past
    their end, except epochs with an open challenge.
    """

    def __init__(
        self,
        *,
        tracker: WorkerTracker,
        packages: PackageCache,
        prover: EpochProver,
        clock: EpochClock,
        interval_seconds: float,
        claim_enabled: bool,
        answerer: ChallengeAnswerer | None = None,
        records: EpochRecords | None = None,
        kept_epochs: int = 0,
        cheats: Cheats | None = None,
    ) -> None:
        self._tracker = tracker
        self._packages = packages
        self._prover = prover
        self._clock = clock
        self._interval = interval_seconds
        self._claim_enabled = claim_enabled
        self._answerer = answerer
        self._records = records
        self._kept_epochs = kept_epochs
        self._cheats = cheats or Cheats()
        self._answer_failures = 0
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
        # The epoch is read before the challenge logs: a challenge in a later
        # block cannot be of an epoch that `_prune` deletes this round.
        current = self._clock.current()
        if current != self.last_epoch:
            logger.info("chain epoch is %d; tracking %s", current, format_count(len(workers), "worker"))
        self.last_epoch = current
        challenges_read = self._answer_challenges()

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
        if challenges_read:
            self._prune(current)
        self.cycles += 1

    def _answer_challenges(self) -> bool:
        """Answer open challenges; return whether every challenge log up to now was read."""
        if self._answerer is None:
            return True
        try:
            self._answerer.run_once()
        except Exception as error:  # noqa: BLE001 - proofs and claims go on; the next round retries
            self._answer_failures += 1
            count = self._answer_failures
            if count & (count - 1) == 0:
                logger.warning("reading or answering challenges failed (%d rounds in a row): %s", count, error)
                logger.debug("challenge answer failure", exc_info=True)
            return False
        if self._answer_failures:
            logger.info("challenge answers recovered after %d failed rounds", self._answer_failures)
        self._answer_failures = 0
        return True

    def _prune(self, current: int) -> None:
        if self._records is None:
            return
        open_epochs = self._answerer.open_epochs() if self._answerer is not None else set()
        try:
            self._records.prune(current - self._kept_epochs, open_epochs)
        except Exception as error:  # noqa: BLE001 - pruning is retried next round
            logger.warning("pruning records before epoch %d failed: %s", current - self._kept_epochs, error)

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
        self._cheats.before_proofs(tracked)
        self._prover.prove(tracked, current)
        if self._claim_enabled:
            self._prover.claim(tracked)
