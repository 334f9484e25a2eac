"""One worker epoch as the node proves it: receipts in leaf order, the calls behind them, and the proof totals.

The prover submits `EpochRecords.summary`, the receipts endpoint serves
`EpochRecords.record`, and the challenge answerer opens leaves of the same
record, so all three agree on the root, the call count and the usage.
`EpochRecords.prune` deletes epochs whose challenge window has closed.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from cloudless.exceptions import ReceiptStoreError
from cloudless.node.cheats import Cheats
from cloudless.node.evidence_store import CallEvidence, EvidenceStore
from cloudless.node.prover import EpochClock
from cloudless.receipts.merkle import LeafOpening, ReceiptMerkleTree
from cloudless.receipts.models import SignedReceipt
from cloudless.receipts.store import EpochSummary, ReceiptStore

__all__ = ["EpochPrunedError", "EpochRecord", "EpochRecords", "RecordedCall"]

logger = logging.getLogger("cloudless.node")


class EpochPrunedError(ReceiptStoreError):
    """The node deleted the epoch's receipts after its challenge window closed."""


@dataclass(frozen=True)
class RecordedCall:
    """One leaf of an epoch: the receipt, the call it records (None if the node lost it) and its opening."""

    receipt: SignedReceipt
    call: CallEvidence | None
    opening: LeafOpening

    @property
    def index(self) -> int:
        return self.opening.index

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "receipt": self.receipt.to_dict(),
            "request": None if self.call is None else self.call.request.to_dict(),
            "input": None if self.call is None else base64.b64encode(self.call.input).decode("ascii"),
            "opening": self.opening.to_json(),
        }


@dataclass(frozen=True)
class EpochRecord:
    """A worker epoch: the proof totals and every leaf in index order."""

    worker_id: int
    epoch: int
    summary: EpochSummary
    tree: ReceiptMerkleTree
    calls: tuple[RecordedCall, ...]

    def to_json(self) -> dict[str, Any]:
        """Build the body of `GET /workers/{worker_id}/epochs/{epoch}/receipts`."""
        return {
            "worker_id": self.worker_id,
            "epoch": self.epoch,
            "root": "0x" + self.summary.root.hex(),
            "calls": self.summary.calls,
            "usage": self.summary.fuel_total,
            "receipts": [call.to_json() for call in self.calls],
        }


class EpochRecords:
    """Reads worker epochs from the receipt and evidence stores, and prunes them.

    Reads take the worker's clock lock, so they never see half of a call's
    records. `cheats` changes the proof totals as the prover submits them.
    `now` returns unix seconds and decides which pruned requests are still live.
    """

    def __init__(
        self,
        store: ReceiptStore,
        evidence: EvidenceStore,
        clock: EpochClock,
        cheats: Cheats | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.evidence = evidence
        self._clock = clock
        self._cheats = cheats or Cheats()
        self._now = now
        self._reported_kept: set[tuple[int, int]] = set()

    def summary(self, worker_id: int, epoch: int) -> EpochSummary:
        """Return the root, call count and usage that the epoch's proof submits."""
        with self._clock.lock(worker_id):
            summary = self.store.summary(worker_id, epoch)
        return self._cheats.proof_summary(summary)

    def record(self, worker_id: int, epoch: int) -> EpochRecord:
        """Return the epoch's proof totals and leaves. Raises EpochPrunedError for a pruned epoch."""
        with self._clock.lock(worker_id):
            if self.store.is_pruned(worker_id, epoch):
                raise EpochPrunedError(
                    f"epoch {epoch} of worker {worker_id} was pruned after its challenge window closed"
                )
            receipts = self.store.receipts(worker_id, epoch)
            calls = self.evidence.calls(worker_id, epoch)
        domain = self.store.domain
        tree = ReceiptMerkleTree((receipt.digest(domain), receipt.fuel_used) for receipt in receipts)
        summary = self._cheats.proof_summary(EpochSummary(root=tree.root, calls=len(tree), fuel_total=tree.total_fuel))
        recorded = tuple(
            RecordedCall(receipt=receipt, call=calls.get(receipt.request_hash), opening=tree.opening(index))
            for index, receipt in enumerate(receipts)
        )
        missing = [call.index for call in recorded if call.call is None]
        if missing:
            logger.warning(
                "worker %d epoch %d has no stored request for the receipts at leaves %s",
                worker_id,
                epoch,
                missing,
            )
        return EpochRecord(worker_id=worker_id, epoch=epoch, summary=summary, tree=tree, calls=recorded)

    def prune(self, below: int, open_epochs: Collection[tuple[int, int]]) -> dict[int, list[int]]:
        """Delete the receipts, requests and inputs of every epoch before `below`, except `open_epochs`.

        `open_epochs` contains the (worker id, epoch) pairs with an open
        challenge, which stay until it is settled. Returns the deleted epochs by worker.
        """
        pruned: dict[int, list[int]] = {}
        workers = sorted(set(self.store.workers()) | set(self.evidence.workers()))
        for worker_id in workers:
            keep = {epoch for worker, epoch in open_epochs if worker == worker_id}
            self._log_kept(worker_id, below, keep)
            with self._clock.lock(worker_id):
                receipt_epochs = self.store.prune_epochs(worker_id, below, keep)
                marked = self.store.pruned_epochs(worker_id)
                call_epochs = self.evidence.delete_epochs(
                    worker_id,
                    [epoch for epoch in self.evidence.epochs(worker_id) if epoch in marked],
                    now=int(self._now()),
                )
            epochs = sorted(set(receipt_epochs) | set(call_epochs))
            if epochs:
                pruned[worker_id] = epochs
                logger.info(
                    "pruned the receipts, requests and inputs of worker %d epochs %s: their challenge windows closed",
                    worker_id,
                    _format_epochs(epochs),
                )
        return pruned

    def _log_kept(self, worker_id: int, below: int, keep: set[int]) -> None:
        for epoch in sorted(keep):
            if epoch < below and (worker_id, epoch) not in self._reported_kept:
                self._reported_kept.add((worker_id, epoch))
                logger.info(
                    "keeping worker %d epoch %d past its challenge window: a challenge of it is still open",
                    worker_id,
                    epoch,
                )


def _format_epochs(epochs: list[int]) -> str:
    """Render sorted epochs as ranges, for example "3-5, 8"."""
    ranges: list[list[int]] = []
    for epoch in epochs:
        if ranges and epoch == ranges[-1][1] + 1:
            ranges[-1][1] = epoch
        else:
            ranges.append([epoch, epoch])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)
