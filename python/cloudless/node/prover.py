"""Epoch proofs (from the peer signer's key) and claims (from the provider's key)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cloudless.chain.deals import ClaimResult
from cloudless.chain.session import Session
from cloudless.chain.types import EpochProofEntry
from cloudless.exceptions import ContractRevertError
from cloudless.node.workers import TrackedWorker

if TYPE_CHECKING:
    from cloudless.node.epoch_records import EpochRecords

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
    """Submits every ended, unproven epoch of a worker while its proof window is open, then claims.

    `records` gives the totals to prove. `has_open_challenge(worker_id)`
    returns whether a challenge of the worker can still be answered: the
    worker is not claimed meanwhile. `skip_proofs` is the cheat of that name.
    """

    def __init__(
        self,
        provider: Session,
        signers: Mapping[str, Session],
        records: EpochRecords,
        clock: EpochClock,
        *,
        proof_window_epochs: int,
        has_open_challenge: Callable[[int], bool] = lambda worker_id: False,
        skip_proofs: bool = False,
    ) -> None:
        self._provider = provider
        self._signers = dict(signers)
        self._records = records
        self._clock = clock
        self._window = proof_window_epochs
        self._has_open_challenge = has_open_challenge
        self._skip_proofs = skip_proofs
        self._done: dict[int, set[int]] = {}  # worker id -> epochs proven on chain or past their window
        self._waiting_claims: set[int] = set()  # workers whose claim waits for a challenge answer

    def provable_epochs(self, tracked: TrackedWorker, current_epoch: int) -> range:
        """Return the epochs that have ended and whose proof window is still open."""
        first = max(tracked.worker.joined_epoch, current_epoch - self._window, 0)
        end = min(tracked.end_epoch, current_epoch)
        return range(first, max(first, end))

    def prove(self, tracked: TrackedWorker, current_epoch: int) -> int:
        """Submit the proofs of every provable epoch not yet on chain in one batch; return how many were sent.

        One transaction per worker and round, whatever the number of epochs,
        because the base cost of a transaction (21,000 gas) dominates a proof.
        """
        worker_id = tracked.worker_id
        done = self._done.setdefault(worker_id, set())
        deals = self._provider.deals
        entries: list[EpochProofEntry] = []
        for epoch in self.provable_epochs(tracked, current_epoch):
            if epoch in done:
                continue
            if deals.get_epoch_proof(worker_id, epoch).proven:
                done.add(epoch)
                continue
            summary = self._records.summary(worker_id, epoch)
            entries.append(EpochProofEntry(worker_id, epoch, summary.root, summary.calls, summary.fuel_total))

        if entries and self._skip_proofs:
            for entry in entries:
                logger.warning(
                    "cheat skip_proofs: not submitting the proof of worker %d epoch %d", entry.worker_id, entry.epoch
                )
            done.update(entry.epoch for entry in entries)
            entries = []
        if entries:
            self._submit(tracked, entries)
            done.update(entry.epoch for entry in entries)
        # Epochs before the window can never be proven again, so forget them.
        window_start = current_epoch - self._window
        self._done[worker_id] = {epoch for epoch in done if epoch >= window_start}
        return len(entries)

    def _submit(self, tracked: TrackedWorker, entries: list[EpochProofEntry]) -> None:
        signer = self._signers[tracked.signer]
        try:
            signer.deals.submit_epoch_proofs(entries)
        except ContractRevertError as error:
            # A proof sent by an earlier run, or an epoch whose window closed
            # while we read receipts: the chain has the final word, so the
            # batch is dropped and the next round re-reads what is proven.
            if error.error_name in ("DealProofAlreadySubmitted", "DealProofWindowClosed"):
                logger.warning("skipping proof batch of worker %d: %s", tracked.worker_id, error)
                return
            raise
        for entry in entries:
            logger.info(
                "submitted proof of deal %d worker %d epoch %d: root 0x%s, %d calls, %d fuel",
                tracked.deal_id,
                entry.worker_id,
                entry.epoch,
                entry.receipts_root.hex()[:16],
                entry.calls,
                entry.usage,
            )

    def claim(self, tracked: TrackedWorker) -> ClaimResult | None:
        """Claim the worker's epochs up to `maxClaimEpoch` and receive the pay, when that is past what it claimed.

        `claimAndWithdraw` pays in the same transaction, which saves the gas
        of a separate withdrawal.
        """
        deals = self._provider.deals
        worker_id = tracked.worker_id
        max_epoch = deals.max_claim_epoch(worker_id)
        if max_epoch <= tracked.worker.claimed_until_epoch:
            return None
        if self._has_open_challenge(worker_id):
            # A claim counts a challenged epoch as unproven, so its pay would
            # go back to the deal even if the answer then restores the proof.
            if worker_id not in self._waiting_claims:
                self._waiting_claims.add(worker_id)
                logger.info("not claiming deal %d worker %d while a challenge of it is open", tracked.deal_id, worker_id)
            return None
        self._waiting_claims.discard(worker_id)
        logger.info(
            "claiming deal %d worker %d epochs [%d, %d)",
            tracked.deal_id,
            worker_id,
            tracked.worker.claimed_until_epoch,
            max_epoch,
        )
        results = deals.claim_and_withdraw([worker_id])
        return results[0] if results else None

    def withdraw_earnings(self) -> int:
        """Withdraw USDC earnings credited by `claim` (by hand or by an older node), if any; return the amount."""
        usdc = self._provider.usdc
        amount = self._provider.deals.earnings(self._provider.address, usdc.address)
        if amount == 0:
            return 0
        self._provider.deals.withdraw_earnings(usdc.address)
        logger.info("withdrew %s USDC of earnings to %s", usdc.format(amount), self._provider.address)
        return amount
