"""Epoch proofs (from the peer signer's key) and claims (from the provider's key)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from cloudless.chain.deals import ClaimResult
from cloudless.chain.session import Session
from cloudless.exceptions import ContractRevertError
from cloudless.node.workers import TrackedWorker
from cloudless.receipts.store import ReceiptStore

__all__ = ["EpochClock", "EpochProver"]

logger = logging.getLogger("cloudless.node")


class EpochClock:
    """The chain's current epoch, and one lock per worker that orders receipts against proofs.

    A call reads the epoch and appends its receipt under the worker's lock,
    and the prover reads an epoch's receipts under the same lock only after
    the chain has moved past that epoch. So no receipt of an epoch can be
    stored after its proof was computed.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}

    def current(self) -> int:
        """Read the DealManager's current epoch."""
        return self._session.deals.current_epoch()

    def lock(self, worker_id: int) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(worker_id)
            if lock is None:
                lock = self._locks[worker_id] = threading.Lock()
            return lock


class EpochProver:
    """Submits every ended, unproven epoch of a worker while its proof window is open, then claims."""

    def __init__(
        self,
        provider: Session,
        signers: Mapping[str, Session],
        store: ReceiptStore,
        clock: EpochClock,
        *,
        proof_window_epochs: int,
    ) -> None:
        self._provider = provider
        self._signers = dict(signers)
        self._store = store
        self._clock = clock
        self._window = proof_window_epochs
        self._done: dict[int, set[int]] = {}  # worker id -> epochs proven on chain or past their window

    def provable_epochs(self, tracked: TrackedWorker, current_epoch: int) -> range:
        """Return the epochs that have ended and whose proof window is still open."""
        first = max(tracked.worker.joined_epoch, current_epoch - self._window, 0)
        end = min(tracked.end_epoch, current_epoch)
        return range(first, max(first, end))

    def prove(self, tracked: TrackedWorker, current_epoch: int) -> int:
        """Submit the proof of every provable epoch not yet on chain, and return how many were sent."""
        worker_id = tracked.worker_id
        done = self._done.setdefault(worker_id, set())
        deals = self._provider.deals
        sent = 0
        for epoch in self.provable_epochs(tracked, current_epoch):
            if epoch in done:
                continue
            if deals.get_epoch_proof(worker_id, epoch).proven:
                done.add(epoch)
                continue
            with self._clock.lock(worker_id):
                summary = self._store.summary(worker_id, epoch)
            signer = self._signers[tracked.signer]
            try:
                signer.deals.submit_epoch_proof(worker_id, epoch, summary.root, summary.calls, summary.fuel_total)
            except ContractRevertError as error:
                if error.error_name in ("DealProofAlreadySubmitted", "DealProofWindowClosed"):
                    logger.warning("skipping proof of worker %d epoch %d: %s", worker_id, epoch, error)
                    done.add(epoch)
                    continue
                raise
            logger.info(
                "submitted proof of deal %d worker %d epoch %d: root 0x%s, %d calls, %d fuel",
                tracked.deal_id,
                worker_id,
                epoch,
                summary.root.hex()[:16],
                summary.calls,
                summary.fuel_total,
            )
            done.add(epoch)
            sent += 1
        # Epochs before the window can never be proven again, so forget them.
        window_start = current_epoch - self._window
        self._done[worker_id] = {epoch for epoch in done if epoch >= window_start}
        return sent

    def claim(self, tracked: TrackedWorker) -> ClaimResult | None:
        """Claim the worker's epochs up to `maxClaimEpoch` when that is past what it claimed."""
        deals = self._provider.deals
        worker_id = tracked.worker_id
        max_epoch = deals.max_claim_epoch(worker_id)
        if max_epoch <= tracked.worker.claimed_until_epoch:
            return None
        logger.info(
            "claiming deal %d worker %d epochs [%d, %d)",
            tracked.deal_id,
            worker_id,
            tracked.worker.claimed_until_epoch,
            max_epoch,
        )
        return deals.claim(worker_id, max_epoch)

    def withdraw_earnings(self) -> int:
        """Withdraw the provider's claimed USDC earnings, if any, and return the amount."""
        usdc = self._provider.usdc
        amount = self._provider.deals.earnings(self._provider.address, usdc.address)
        if amount == 0:
            return 0
        self._provider.deals.withdraw_earnings(usdc.address)
        logger.info("withdrew %s USDC of earnings to %s", usdc.format(amount), self._provider.address)
        return amount
