"""The verifier's reads of the chain: proof logs, workers, deals, peer signers, endpoints and the epoch clock.

Workers, deals, endpoints and the answer period are read at most once per
pass (`begin_pass` forgets them). Peer signers are read once per process,
because a peer's signer never changes, and so are the DealManager's epoch
settings, which are fixed at deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_utils import to_checksum_address

from cloudless.chain.challenges import ChallengeKind
from cloudless.chain.session import Session
from cloudless.chain.types import Deal, EpochProofEntry, Worker
from cloudless.receipts.eip712 import Domain

__all__ = ["ChallengeWindow", "ProofLog", "VerifierChain"]

logger = logging.getLogger("cloudless.verifier")

T = TypeVar("T")

# Blocks per eth_getLogs request.
LOG_BLOCK_RANGE = 5_000


@dataclass(frozen=True)
class ProofLog:
    """One `EpochProofsSubmitted` log: the batch hash, its block and its entries."""

    batch_hash: str
    block: int
    entries: list[EpochProofEntry]


@dataclass(frozen=True)
class ChallengeWindow:
    """Unix seconds of one epoch's challenge window.

    Challenges may open from `opens_at` to `closes_at` (`claims_at` minus the
    answer period); missed proofs may be reported from `opens_at` until
    `claims_at`, when the provider's claim opens.
    """

    opens_at: int
    closes_at: int
    claims_at: int


class VerifierChain:
    """Cached chain reads of one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        deals = session.deals
        self.genesis = deals.genesis()
        self.epoch_duration = deals.epoch_duration()
        self.proof_window_epochs = deals.proof_window_epochs()
        self.challenge_window_epochs = deals.challenge_window_epochs()
        self.domain = Domain(
            chain_id=session.deployment.chain_id,
            verifying_contract=session.deployment.address("ExecutionReceipts"),
        )
        self.max_replication = int(session.client.call(session.challenges.contract.functions.MAX_REPLICATION()))
        self._signers: dict[int, str] = {}
        self._pass_cache: dict[object, object] = {}

    def begin_pass(self) -> None:
        """Forget workers, deals and endpoints read in the previous pass."""
        self._pass_cache.clear()

    def _cached(self, key: object, load: Callable[[], T]) -> T:
        if key not in self._pass_cache:
            self._pass_cache[key] = load()
        return self._pass_cache[key]  # type: ignore[return-value]

    # --------------------------------------------------------------- clock

    def now(self) -> int:
        """Timestamp of the latest block, in unix seconds: the clock that the contracts compare with."""
        return self._cached("now", lambda: int(self.session.client.w3.eth.get_block("latest")["timestamp"]))

    def current_epoch(self) -> int:
        return self._cached("epoch", self.session.deals.current_epoch)

    @property
    def answer_period(self) -> int:
        """Seconds a peer has to answer a challenge; the owner may change it, so it is read each pass."""
        return self._cached("answer_period", lambda: self.session.challenges.parameters().answer_period)

    def epoch_start(self, epoch: int) -> int:
        return self.genesis + epoch * self.epoch_duration

    def challenge_window(self, epoch: int) -> ChallengeWindow:
        """Return the challenge window of `epoch`, as the ChallengeManager computes it."""
        opens_at = self.epoch_start(epoch + self.proof_window_epochs + 1)
        claims_at = opens_at + self.challenge_window_epochs * self.epoch_duration
        return ChallengeWindow(opens_at=opens_at, closes_at=claims_at - self.answer_period, claims_at=claims_at)

    # -------------------------------------------------------------- records

    def worker(self, worker_id: int) -> Worker:
        return self._cached(("worker", worker_id), lambda: self.session.deals.get_worker(worker_id))

    def worker_count(self) -> int:
        deals = self.session.deals
        return self._cached("workers", lambda: int(self.session.client.call(deals.contract.functions.workerCount())))

    def deal(self, deal_id: int) -> Deal:
        return self._cached(("deal", deal_id), lambda: self.session.deals.get_deal(deal_id))

    def deal_count(self) -> int:
        return self._cached("deals", self.session.deals.deal_count)

    def signer(self, peer_id: int) -> str:
        """Return the peer's signer as a checksum address, from `Market.peerSigner`."""
        if peer_id not in self._signers:
            market = self.session.market
            self._signers[peer_id] = to_checksum_address(self.session.client.call(market.contract.functions.peerSigner(peer_id)))
        return self._signers[peer_id]

    def endpoint(self, provider: str) -> str | None:
        """Return the provider's node URL without a trailing slash, or None when it published none."""
        url = self._cached(("endpoint", provider), lambda: self.session.market.provider_endpoint(provider))
        return url.rstrip("/") or None

    def caller_allowed(self, deal_id: int, caller: str, epoch: int) -> bool:
        """Return whether the deal counts requests that `caller` signs in receipts of `epoch` (`isCallerAllowedAt`)."""
        return self._cached(
            ("caller", deal_id, caller.lower(), epoch),
            lambda: self.session.challenges.is_caller_allowed_at(deal_id, caller, epoch),
        )

    def epoch_proven(self, worker_id: int, epoch: int) -> bool:
        return self.session.deals.get_epoch_proof(worker_id, epoch).proven

    def unfunded_spans(self, deal_id: int) -> list[tuple[int, int]]:
        """Settled epochs `[start, end)` that the deal's balance could not pay."""
        deals = self.session.deals

        def load() -> list[tuple[int, int]]:
            spans = self.session.client.call(deals.contract.functions.unfundedSpans(deal_id))
            return [(int(span.start), int(span.end)) for span in spans]

        return self._cached(("unfunded", deal_id), load)

    def was_funded(self, deal: Deal, epoch: int) -> bool:
        """Return whether the deal's balance paid for `epoch`, as the ChallengeManager's `_wasFunded` decides."""
        if epoch >= deal.settled_epoch:
            if deal.rate_per_epoch == 0:
                return True
            return epoch - deal.settled_epoch < deal.balance // deal.rate_per_epoch
        return not any(start <= epoch < end for start, end in self.unfunded_spans(deal.deal_id))

    # ----------------------------------------------------------------- logs

    def latest_block(self) -> int:
        return self._cached("block", lambda: int(self.session.client.w3.eth.block_number))

    def _logs(self, event: object, from_block: int, to_block: int, **filters: object) -> list[Any]:
        """Read an event's logs of blocks `from_block` to `to_block`, both included, in requests of LOG_BLOCK_RANGE blocks."""
        logs: list[Any] = []
        start = from_block
        while start <= to_block:
            end = min(start + LOG_BLOCK_RANGE - 1, to_block)
            logs.extend(self.session.client.get_logs(event, start, end, **filters))
            start = end + 1
        return logs

    def proof_logs(self, from_block: int, to_block: int) -> list[ProofLog]:
        """Read the `EpochProofsSubmitted` logs of blocks `from_block` to `to_block`, both included."""
        event = self.session.deals.contract.events.EpochProofsSubmitted
        logs = []
        for log in self._logs(event, from_block, to_block):
            entries = [
                EpochProofEntry(
                    worker_id=int(raw["workerId"]),
                    epoch=int(raw["epoch"]),
                    receipts_root=bytes(raw["receiptsRoot"]),
                    calls=int(raw["calls"]),
                    usage=int(raw["usage"]),
                )
                for raw in log.args.entries
            ]
            logs.append(ProofLog(batch_hash="0x" + bytes(log.args.batchHash).hex(), block=int(log.blockNumber), entries=entries))
        return logs

    def opened_challenges_by(self, challenger: str) -> list[tuple[int, int, int, str, str]]:
        """Return (challenge id, worker id, epoch, kind name, tx hash) of every challenge `challenger` opened."""
        event = self.session.challenges.contract.events.ChallengeOpened
        logs = self._logs(event, self.session.deployment.start_block, self.latest_block(), challenger=challenger)
        return [
            (
                int(log.args.challengeId),
                int(log.args.workerId),
                int(log.args.epoch),
                ChallengeKind(int(log.args.kind)).name,
                "0x" + bytes(log.transactionHash).hex(),
            )
            for log in logs
        ]

    def event_tx(self, event_name: str, from_block: int, **filters: object) -> str:
        """Return the hash of the transaction that emitted the first matching ChallengeManager event, or ""."""
        event = getattr(self.session.challenges.contract.events, event_name)
        logs = self.session.client.get_logs(event, from_block, **filters)
        return "0x" + bytes(logs[0].transactionHash).hex() if logs else ""
