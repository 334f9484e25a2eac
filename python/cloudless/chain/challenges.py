"""Calls on the ChallengeManager: challenges of epoch proofs, answers, fraud proofs and replication.

The structs of the contract's ABI are built from the receipt models here, so
the node, the verifier, the gateway and the tests encode them one way.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3.logs import DISCARD
from web3.types import TxReceipt

from cloudless.chain.client import ChainClient
from cloudless.chain.types import ProofBatch
from cloudless.receipts.merkle import NO_OPENING, LeafOpening
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = [
    "Challenge",
    "ChallengeClient",
    "ChallengeKind",
    "ChallengeParameters",
    "ChallengeStatus",
    "Fault",
    "FraudProof",
    "request_tuple",
    "receipt_tuple",
    "signed_call_tuple",
]

logger = logging.getLogger("cloudless.chain")

_UINT256_MAX = 2**256 - 1


class ChallengeKind(enum.IntEnum):
    SAMPLE = 0  # the contract picks the leaf
    RECEIPT = 1  # the challenger shows a receipt the proof must contain


class ChallengeStatus(enum.IntEnum):
    NONE = 0
    OPEN = 1
    ANSWERED = 2  # the proof remains valid
    UPHELD = 3  # the provider was slashed and the epoch forfeited


class Fault(enum.IntEnum):
    """Reason for an upheld challenge or a fraud proof: the contract's `Fault` enum."""

    UNANSWERED = 0
    BAD_CALLER_SIGNATURE = 1
    WRONG_WORKER = 2
    WRONG_EPOCH = 3
    WRONG_DEAL = 4
    EXPIRED_REQUEST = 5
    USAGE_MISMATCH = 6
    EQUIVOCATION = 7
    DISAGREEMENT = 8
    MISSED_PROOF = 9


@dataclass(frozen=True)
class ChallengeParameters:
    challenge_bond: int  # FLT wei
    slash_amount: int  # FLT wei
    missed_proof_slash_amount: int  # FLT wei
    answer_period: int  # seconds

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.challenge_bond, self.slash_amount, self.missed_proof_slash_amount, self.answer_period)


@dataclass(frozen=True)
class Challenge:
    challenge_id: int
    worker_id: int
    deal_id: int
    epoch: int
    deadline: int  # unix seconds
    leaf_index: int
    challenger: str
    kind: ChallengeKind
    status: ChallengeStatus
    provider: str
    signer: str
    receipts_root: bytes
    receipt_digest: bytes
    calls: int
    usage: int
    bond: int

    @classmethod
    def from_chain(cls, challenge_id: int, raw: Any) -> Challenge:
        return cls(
            challenge_id=challenge_id,
            worker_id=int(raw.workerId),
            deal_id=int(raw.dealId),
            epoch=int(raw.epoch),
            deadline=int(raw.deadline),
            leaf_index=int(raw.leafIndex),
            challenger=str(raw.challenger),
            kind=ChallengeKind(raw.kind),
            status=ChallengeStatus(raw.status),
            provider=str(raw.provider),
            signer=str(raw.signer),
            receipts_root=bytes(raw.receiptsRoot),
            receipt_digest=bytes(raw.receiptDigest),
            calls=int(raw.calls),
            usage=int(raw.usage),
            bond=int(raw.bond),
        )


@dataclass(frozen=True)
class FraudProof:
    """Outcome of a fraud proof or a missed-proof report, from its `FraudProven` event."""

    fraud_key: bytes
    provider: str
    worker_id: int
    epoch: int
    fault: Fault
    slashed: int  # FLT wei


def request_tuple(request: SignedCallRequest) -> tuple[int, str, bytes, int, int]:
    """Build the `CallRequest` struct of the ABI."""
    return (request.deal_id, request.function_name, request.input_hash, request.nonce, request.deadline)


def receipt_tuple(receipt: SignedReceipt) -> tuple[int, bytes, bytes, bytes, int, int, int]:
    """Build the `Receipt` struct of the ABI."""
    return (
        receipt.worker_id,
        receipt.request_hash,
        receipt.app_cid,
        receipt.output_hash,
        receipt.fuel_used,
        receipt.epoch,
        receipt.sequence,
    )


def signed_receipt_tuple(receipt: SignedReceipt) -> tuple[Any, bytes]:
    """Build the `SignedReceipt` struct of the ABI."""
    return (receipt_tuple(receipt), receipt.signature)


def signed_call_tuple(request: SignedCallRequest, receipt: SignedReceipt) -> tuple[Any, bytes, Any, bytes]:
    """Build the `SignedCall` struct of the ABI."""
    return (request_tuple(request), request.signature, receipt_tuple(receipt), receipt.signature)


class ChallengeClient:
    """Typed wrapper around the deployed ChallengeManager."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract = client.contract("ChallengeManager")

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # ------------------------------------------------------------ settings

    def set_parameters(self, parameters: ChallengeParameters) -> TxReceipt:
        return self.client.transact(self.contract.functions.setParameters(parameters.as_tuple()))

    def set_replication(self, deal_id: int, replication: int) -> TxReceipt:
        logger.info("asking for replication %d on deal %d", replication, deal_id)
        return self.client.transact(self.contract.functions.setReplication(deal_id, replication))

    def set_caller_allowed(self, deal_id: int, caller: str, allowed: bool) -> TxReceipt:
        logger.info("%s caller %s on deal %d", "allowing" if allowed else "removing", caller, deal_id)
        return self.client.transact(self.contract.functions.setCallerAllowed(deal_id, caller, allowed))

    # ---------------------------------------------------------- challenges

    def approve_bonds(self, flt_contract: Any, count: int = 1) -> None:
        """Let the ChallengeManager pull `count` bonds of FLT from the signer, if it may not already."""
        needed = self.parameters().challenge_bond * count
        allowance = int(self.client.call(flt_contract.functions.allowance(self.client.address, self.address)))
        if allowance < needed:
            self.client.transact(flt_contract.functions.approve(self.address, _UINT256_MAX), description="approve challenge bonds")

    def challenge_sample(self, batch: ProofBatch) -> int:
        """Challenge one entry of a batch at a leaf the contract picks; return the challenge id."""
        receipt = self.client.transact(self.contract.functions.challengeSample(batch.as_tuples(), batch.index))
        return self._opened_id(receipt)

    def challenge_receipt(self, batch: ProofBatch, receipt: SignedReceipt) -> int:
        """Challenge a batch entry to contain `receipt`, signed by the worker's peer; return the challenge id."""
        tx = self.client.transact(
            self.contract.functions.challengeReceipt(batch.as_tuples(), batch.index, signed_receipt_tuple(receipt))
        )
        return self._opened_id(tx)

    def _opened_id(self, receipt: TxReceipt) -> int:
        (event,) = self.contract.events.ChallengeOpened().process_receipt(receipt, errors=DISCARD)
        challenge_id = int(event.args.challengeId)
        logger.info(
            "opened challenge %d of worker %d epoch %d (%s)",
            challenge_id,
            int(event.args.workerId),
            int(event.args.epoch),
            ChallengeKind(event.args.kind).name,
        )
        return challenge_id

    def answer(
        self,
        challenge_id: int,
        request: SignedCallRequest,
        receipt: SignedReceipt,
        leaf: LeafOpening,
        next_leaf: LeafOpening | None = None,
    ) -> ChallengeStatus:
        """Answer a challenge; return the status it ends in (ANSWERED, or UPHELD if the receipt is bad)."""
        self.client.transact(
            self.contract.functions.answerChallenge(
                challenge_id,
                signed_call_tuple(request, receipt),
                leaf.as_tuple(),
                (next_leaf or NO_OPENING).as_tuple(),
            ),
            description=f"answer challenge {challenge_id}",
        )
        return self.get_challenge(challenge_id).status

    def resolve_unanswered(self, challenge_id: int) -> TxReceipt:
        return self.client.transact(self.contract.functions.resolveUnanswered(challenge_id))

    # -------------------------------------------------------- fraud proofs

    def prove_equivocation(self, first: SignedReceipt, second: SignedReceipt) -> FraudProof:
        tx = self.client.transact(
            self.contract.functions.proveEquivocation(signed_receipt_tuple(first), signed_receipt_tuple(second)),
            description="prove equivocation",
        )
        return self._fraud(tx)

    def prove_disagreement(
        self, request: SignedCallRequest, majority: Sequence[SignedReceipt], minority: SignedReceipt
    ) -> FraudProof:
        tx = self.client.transact(
            self.contract.functions.proveDisagreement(
                request_tuple(request),
                request.signature,
                [signed_receipt_tuple(receipt) for receipt in majority],
                signed_receipt_tuple(minority),
            ),
            description="prove disagreement",
        )
        return self._fraud(tx)

    def report_missed_proof(self, worker_id: int, epoch: int) -> FraudProof:
        tx = self.client.transact(
            self.contract.functions.reportMissedProof(worker_id, epoch),
            description=f"report missed proof of worker {worker_id} epoch {epoch}",
        )
        return self._fraud(tx)

    def _fraud(self, receipt: TxReceipt) -> FraudProof:
        (event,) = self.contract.events.FraudProven().process_receipt(receipt, errors=DISCARD)
        proof = FraudProof(
            fraud_key=bytes(event.args.fraudKey),
            provider=str(event.args.provider),
            worker_id=int(event.args.workerId),
            epoch=int(event.args.epoch),
            fault=Fault(event.args.fault),
            slashed=int(event.args.slashed),
        )
        logger.info(
            "%s proven against provider %s (worker %d epoch %d): %d FLT wei slashed",
            proof.fault.name,
            proof.provider,
            proof.worker_id,
            proof.epoch,
            proof.slashed,
        )
        return proof

    # --------------------------------------------------------------- views

    def _view(self, name: str, *args: object) -> Any:
        return self.client.call(getattr(self.contract.functions, name)(*args))

    def parameters(self) -> ChallengeParameters:
        raw = self._view("parameters")
        return ChallengeParameters(
            challenge_bond=int(raw.challengeBond),
            slash_amount=int(raw.slashAmount),
            missed_proof_slash_amount=int(raw.missedProofSlashAmount),
            answer_period=int(raw.answerPeriod),
        )

    def challenge_count(self) -> int:
        return int(self._view("challengeCount"))

    def get_challenge(self, challenge_id: int) -> Challenge:
        return Challenge.from_chain(challenge_id, self._view("getChallenge", challenge_id))

    def is_caller_allowed(self, deal_id: int, caller: str) -> bool:
        """Return whether requests signed by `caller` count for the deal (any key while it lists no callers)."""
        return bool(self._view("isCallerAllowed", deal_id, caller))

    def is_caller_allowed_at(self, deal_id: int, caller: str, epoch: int) -> bool:
        """Return whether requests signed by `caller` count in receipts of `epoch`."""
        return bool(self._view("isCallerAllowedAt", deal_id, caller, epoch))

    def callers_restricted_from(self, deal_id: int) -> int:
        """Return the first epoch in which only allowed callers count for the deal, 0 while any key counts."""
        return int(self._view("callersRestrictedFrom", deal_id))

    def allowed_caller_count(self, deal_id: int) -> int:
        return int(self._view("allowedCallerCount", deal_id))

    def replication_of(self, deal_id: int) -> int:
        return int(self._view("replicationOf", deal_id))

    def fraud_settled(self, fraud_key: bytes) -> bool:
        return bool(self._view("fraudSettled", fraud_key))

    def opened_challenges(self, from_block: int | None = None, **filters: Any) -> list[Challenge]:
        """Challenges opened since `from_block` (the deployment by default), filtered by indexed
        arguments of `ChallengeOpened` (`workerId`, `challenger`), with their current state."""
        start = self.client.deployment.start_block if from_block is None else from_block
        logs = self.client.get_logs(self.contract.events.ChallengeOpened, start, **filters)
        return [self.get_challenge(int(log.args.challengeId)) for log in logs]
