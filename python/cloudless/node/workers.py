"""The node's view of the workers placed on its peers, rebuilt from chain logs.

Start-up scans `WorkerJoined` and `WorkerLeft` from the deployment block on.
Every later sync scans only the blocks since the previous one. Each sync then
re-reads every unsettled worker and its deal, so claims, stops and app CID
changes show up too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from cloudless.chain.session import Session
from cloudless.chain.types import OPEN_ENDED_EPOCH, Deal, DealStatus, Worker
from cloudless.cid import cid_from_bytes

__all__ = ["TrackedWorker", "WorkerTracker"]

logger = logging.getLogger("cloudless.node")

# Blocks per eth_getLogs request when scanning for workers.
_LOG_BLOCK_RANGE = 5_000


@dataclass(frozen=True)
class TrackedWorker:
    """One worker on one of this node's peers, with its deal as last read."""

    worker: Worker
    deal: Deal
    deal_status: DealStatus
    signer: str  # checksum address of the peer signer

    @property
    def worker_id(self) -> int:
        return self.worker.worker_id

    @property
    def deal_id(self) -> int:
        return self.worker.deal_id

    @property
    def app_cid(self) -> str:
        """String CID of the deal's function package."""
        return cid_from_bytes(self.deal.app_cid)

    @property
    def end_epoch(self) -> int:
        """First epoch the worker is no longer in: its leave epoch or the deal's end, whichever is first."""
        return min(self.worker.left_epoch, self.deal.end_epoch)

    def serves_calls(self, current_epoch: int) -> bool:
        """Return whether the worker takes calls now: it has its CUs and neither it nor its deal has ended."""
        return (
            self.worker.active
            and self.deal_status != DealStatus.ENDED
            and current_epoch < self.end_epoch
        )

    def settled(self) -> bool:
        """Return whether nothing is left to prove or claim: the worker ended and is claimed up to its end."""
        return self.end_epoch != OPEN_ENDED_EPOCH and self.worker.claimed_until_epoch >= self.end_epoch


class WorkerTracker:
    """Workers on the given peers, safe to read from the HTTP threads while the loop syncs."""

    def __init__(self, session: Session, peer_signers: Mapping[int, str], start_block: int) -> None:
        self._session = session
        self._peer_signers = {peer_id: to_checksum_address(signer) for peer_id, signer in peer_signers.items()}
        self._next_block = start_block
        self._known_ids: set[int] = set()
        self._workers: dict[int, TrackedWorker] = {}
        self._lock = threading.Lock()

    def get(self, worker_id: int) -> TrackedWorker | None:
        with self._lock:
            return self._workers.get(worker_id)

    def all(self) -> list[TrackedWorker]:
        """Return every tracked worker, ordered by id."""
        with self._lock:
            return [self._workers[worker_id] for worker_id in sorted(self._workers)]

    def sync(self) -> list[TrackedWorker]:
        """Scan new logs, re-read every unsettled worker and its deal, and return all workers."""
        self._scan_logs()

        previous = self._snapshot()
        refreshed: dict[int, TrackedWorker] = {}
        deals: dict[int, tuple[Deal, DealStatus]] = {}
        for worker_id in sorted(self._known_ids):
            old = previous.get(worker_id)
            if old is not None and old.settled():
                refreshed[worker_id] = old
                continue
            worker = self._session.deals.get_worker(worker_id)
            if worker.deal_id not in deals:
                deals[worker.deal_id] = (
                    self._session.deals.get_deal(worker.deal_id),
                    self._session.deals.deal_status(worker.deal_id),
                )
            deal, status = deals[worker.deal_id]
            tracked = TrackedWorker(worker, deal, status, self._peer_signers[worker.peer_id])
            self._log_changes(old, tracked)
            refreshed[worker_id] = tracked

        with self._lock:
            self._workers = refreshed
        return [refreshed[worker_id] for worker_id in sorted(refreshed)]

    def _snapshot(self) -> dict[int, TrackedWorker]:
        with self._lock:
            return dict(self._workers)

    def _scan_logs(self) -> None:
        if not self._peer_signers:
            return
        latest = self._session.client.w3.eth.block_number
        if latest < self._next_block:
            return
        deals = self._session.deals
        peer_ids = sorted(self._peer_signers)
        joined: list[Any] = []
        left: list[Any] = []
        # Many RPC providers cap the block range of one eth_getLogs request.
        for first in range(self._next_block, latest + 1, _LOG_BLOCK_RANGE):
            last = min(first + _LOG_BLOCK_RANGE - 1, latest)
            joined += self._session.client.get_logs(deals.contract.events.WorkerJoined, first, last, peerId=peer_ids)
            left += self._session.client.get_logs(deals.contract.events.WorkerLeft, first, last, peerId=peer_ids)
        for event in joined:
            worker_id = int(event.args.workerId)
            if worker_id not in self._known_ids:
                logger.info(
                    "worker %d of deal %d joined peer %d at epoch %d",
                    worker_id,
                    int(event.args.dealId),
                    int(event.args.peerId),
                    int(event.args.joinedEpoch),
                )
                self._known_ids.add(worker_id)
        for event in left:
            logger.info(
                "worker %d of deal %d left peer %d at epoch %d",
                int(event.args.workerId),
                int(event.args.dealId),
                int(event.args.peerId),
                int(event.args.leftEpoch),
            )
        self._next_block = latest + 1

    @staticmethod
    def _log_changes(old: TrackedWorker | None, new: TrackedWorker) -> None:
        if old is None:
            return
        if old.deal.app_cid != new.deal.app_cid:
            logger.info("deal %d now runs package %s", new.deal_id, new.app_cid)
        if old.deal_status != new.deal_status:
            logger.info(
                "deal %d status changed from %s to %s (worker %d)",
                new.deal_id,
                old.deal_status.name,
                new.deal_status.name,
                new.worker_id,
            )
