"""Calls on the DealManager: deals, escrow, matching, proofs and claims."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from web3.logs import DISCARD
from web3.types import TxReceipt

from cloudless.chain.client import ChainClient
from cloudless.chain.types import Deal, DealParams, DealStatus, EpochProof, EpochProofEntry, ProofBatch, SkipReason, Worker
from cloudless.formatting import format_count

__all__ = ["ClaimResult", "DealClient", "MatchResult"]

logger = logging.getLogger("cloudless.chain")


@dataclass(frozen=True)
class MatchResult:
    """Outcome of one `matchDeal` transaction: new workers and skipped peers."""

    deal_id: int
    worker_ids: tuple[int, ...]
    skipped: tuple[tuple[int, SkipReason], ...]  # (peer id, reason)


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of one `claim` transaction for a worker."""

    worker_id: int
    from_epoch: int
    to_epoch: int
    proven_epochs: int
    paid: int
    returned: int


class DealClient:
    """Typed wrapper around the deployed DealManager."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract = client.contract("DealManager")

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # ------------------------------------------------------------ deals

    def create_deal(self, params: DealParams) -> int:
        """Create a deal (approve the deposit first) and return its id."""
        logger.info(
            "creating %s deal for %s at cap %d base units per CU per epoch, deposit %d base units",
            params.billing_mode.name,
            format_count(params.target_workers, "worker"),
            params.max_price_per_cu_per_epoch,
            params.deposit,
        )
        receipt = self.client.transact(self.contract.functions.createDeal(params.as_tuple()))
        (event,) = self.contract.events.DealCreated().process_receipt(receipt, errors=DISCARD)
        return int(event.args.dealId)

    def deposit(self, deal_id: int, amount: int) -> TxReceipt:
        logger.info("depositing %d into deal %d", amount, deal_id)
        return self.client.transact(self.contract.functions.deposit(deal_id, amount))

    def withdraw(self, deal_id: int, amount: int) -> TxReceipt:
        logger.info("withdrawing %d from deal %d", amount, deal_id)
        return self.client.transact(self.contract.functions.withdraw(deal_id, amount))

    def set_app_cid(self, deal_id: int, app_cid: bytes) -> TxReceipt:
        return self.client.transact(self.contract.functions.setAppCid(deal_id, app_cid))

    def stop_deal(self, deal_id: int) -> TxReceipt:
        logger.info("stopping deal %d", deal_id)
        return self.client.transact(self.contract.functions.stopDeal(deal_id))

    def match_deal(self, deal_id: int, peer_ids: Sequence[int]) -> MatchResult:
        """Send `matchDeal` and report which peers got workers and why others were skipped."""
        receipt = self.client.transact(self.contract.functions.matchDeal(deal_id, list(peer_ids)))
        joined = self.contract.events.WorkerJoined().process_receipt(receipt, errors=DISCARD)
        skipped = self.contract.events.CandidateSkipped().process_receipt(receipt, errors=DISCARD)
        return MatchResult(
            deal_id=deal_id,
            worker_ids=tuple(int(event.args.workerId) for event in joined),
            skipped=tuple((int(event.args.peerId), SkipReason(event.args.reason)) for event in skipped),
        )

    def exit_worker(self, worker_id: int) -> TxReceipt:
        return self.client.transact(self.contract.functions.exitWorker(worker_id))

    # -------------------------------------------------- proofs and claims

    def submit_epoch_proof(self, worker_id: int, epoch: int, root: bytes, calls: int, usage: int) -> TxReceipt:
        logger.info("proving worker %d epoch %d: %s, %d fuel", worker_id, epoch, format_count(calls, "call"), usage)
        return self.client.transact(self.contract.functions.submitEpochProof(worker_id, epoch, root, calls, usage))

    def submit_epoch_proofs(self, entries: Sequence[EpochProofEntry]) -> TxReceipt:
        """Send many epoch proofs of the signer's peers in one transaction."""
        logger.info("proving %s in one batch", format_count(len(entries), "worker epoch"))
        return self.client.transact(
            self.contract.functions.submitEpochProofs([entry.as_tuple() for entry in entries])
        )

    def claim(self, worker_id: int, to_epoch: int) -> ClaimResult:
        receipt = self.client.transact(self.contract.functions.claim(worker_id, to_epoch))
        (result,) = self._claim_results(receipt)
        return result

    def claim_and_withdraw(self, worker_ids: Sequence[int]) -> list[ClaimResult]:
        """Claim each worker up to its `maxClaimEpoch` and receive the earnings, in one transaction.

        Workers with nothing due are passed over; all must be in deals of one payment token.
        """
        receipt = self.client.transact(self.contract.functions.claimAndWithdraw(list(worker_ids)))
        return self._claim_results(receipt)

    def _claim_results(self, receipt: TxReceipt) -> list[ClaimResult]:
        results = []
        for event in self.contract.events.WorkerClaimed().process_receipt(receipt, errors=DISCARD):
            result = ClaimResult(
                worker_id=int(event.args.workerId),
                from_epoch=int(event.args.fromEpoch),
                to_epoch=int(event.args.toEpoch),
                proven_epochs=int(event.args.provenEpochs),
                paid=int(event.args.paid),
                returned=int(event.args.returned),
            )
            logger.info(
                "claimed worker %d epochs [%d, %d): paid %d, returned %d",
                result.worker_id,
                result.from_epoch,
                result.to_epoch,
                result.paid,
                result.returned,
            )
            results.append(result)
        return results

    def withdraw_earnings(self, token: str) -> TxReceipt:
        return self.client.transact(self.contract.functions.withdrawEarnings(token))

    # ------------------------------------------------------------ views

    def _view(self, name: str, *args: object) -> object:
        return self.client.call(getattr(self.contract.functions, name)(*args))

    def current_epoch(self) -> int:
        return int(self._view("currentEpoch"))  # type: ignore[call-overload]

    def epoch_duration(self) -> int:
        return int(self._view("epochDuration"))  # type: ignore[call-overload]

    def genesis(self) -> int:
        return int(self._view("genesis"))  # type: ignore[call-overload]

    def proof_window_epochs(self) -> int:
        return int(self._view("proofWindowEpochs"))  # type: ignore[call-overload]

    def challenge_window_epochs(self) -> int:
        return int(self._view("challengeWindowEpochs"))  # type: ignore[call-overload]

    def deal_count(self) -> int:
        return int(self._view("dealCount"))  # type: ignore[call-overload]

    def get_deal(self, deal_id: int) -> Deal:
        return Deal.from_chain(deal_id, self._view("getDeal", deal_id))

    def deal_status(self, deal_id: int) -> DealStatus:
        return DealStatus(self._view("dealStatus", deal_id))

    def deal_balance(self, deal_id: int) -> int:
        return int(self._view("dealBalance", deal_id))  # type: ignore[call-overload]

    def withdrawable(self, deal_id: int) -> int:
        return int(self._view("withdrawable", deal_id))  # type: ignore[call-overload]

    def reserve_of(self, deal_id: int) -> int:
        return int(self._view("reserveOf", deal_id))  # type: ignore[call-overload]

    def deal_worker_ids(self, deal_id: int) -> list[int]:
        return [int(worker_id) for worker_id in self._view("dealWorkerIds", deal_id)]  # type: ignore[attr-defined]

    def get_worker(self, worker_id: int) -> Worker:
        return Worker.from_chain(worker_id, self._view("getWorker", worker_id))

    def get_epoch_proof(self, worker_id: int, epoch: int) -> EpochProof:
        raw = self._view("getEpochProof", worker_id, epoch)
        return EpochProof(proven=bool(raw.proven), usage=int(raw.usage))  # type: ignore[attr-defined]

    def proof_entry(self, worker_id: int, epoch: int) -> EpochProofEntry | None:
        """Return the submitted proof of a worker epoch (root, calls, fuel) from the chain's logs, or None.

        The contract keeps one bit per proven epoch; the rest of a proof is in
        its `EpochProofsSubmitted` log.
        """
        event = self.contract.events.EpochProofsSubmitted
        for log in self.client.get_logs(event, self.client.deployment.start_block):
            for raw in log.args.entries:
                entry = EpochProofEntry(
                    worker_id=int(raw["workerId"]),
                    epoch=int(raw["epoch"]),
                    receipts_root=bytes(raw["receiptsRoot"]),
                    calls=int(raw["calls"]),
                    usage=int(raw["usage"]),
                )
                if (entry.worker_id, entry.epoch) == (worker_id, epoch):
                    return entry
        return None

    def proof_batch(self, worker_id: int, epoch: int) -> ProofBatch | None:
        """Return the recorded batch that proves a worker epoch, and the entry's position in it, or None.

        A challenge must send the whole batch, because the contract keeps only its hash.
        """
        event = self.contract.events.EpochProofsSubmitted
        found: ProofBatch | None = None
        for log in self.client.get_logs(event, self.client.deployment.start_block):
            entries = tuple(
                EpochProofEntry(
                    worker_id=int(raw["workerId"]),
                    epoch=int(raw["epoch"]),
                    receipts_root=bytes(raw["receiptsRoot"]),
                    calls=int(raw["calls"]),
                    usage=int(raw["usage"]),
                )
                for raw in log.args.entries
            )
            for index, entry in enumerate(entries):
                if (entry.worker_id, entry.epoch) == (worker_id, epoch):
                    # A forfeited epoch may be proven again inside its window; the last batch counts.
                    found = ProofBatch(entries=entries, index=index, block=int(log.blockNumber))
        return found

    def funded_until_epoch(self, deal_id: int) -> int:
        """Return the first epoch the deal's balance cannot pay at its current rate."""
        return int(self._view("fundedUntilEpoch", deal_id))  # type: ignore[call-overload]

    def worker_epoch_rate(self, worker_id: int) -> int:
        return int(self._view("workerEpochRate", worker_id))  # type: ignore[call-overload]

    def max_claim_epoch(self, worker_id: int) -> int:
        return int(self._view("maxClaimEpoch", worker_id))  # type: ignore[call-overload]

    def earnings(self, provider: str, token: str) -> int:
        return int(self._view("earnings", provider, token))  # type: ignore[call-overload]
