"""Findings: problems the verifier found with a proof or a receipt, and the on-chain remedy each one allows."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cloudless.receipts.models import SignedReceipt

__all__ = ["Finding", "FindingKind", "Remedy"]


class FindingKind(enum.Enum):
    """A kind of problem. The values appear in logs and in the state file."""

    NOT_SERVED = "not_served"  # the node did not serve the epoch's receipts
    SUMMARY_MISMATCH = "summary_mismatch"  # served root, calls or usage differ from the proof on chain
    TREE_MISMATCH = "tree_mismatch"  # served receipts do not rebuild the proof's root, calls and usage
    BAD_OPENING = "bad_opening"  # a served leaf opening does not match its receipt or the proof's root
    DUPLICATE_RECEIPT = "duplicate_receipt"  # one receipt digest at two leaves of the tree
    BAD_RECEIPT_SIGNATURE = "bad_receipt_signature"  # the worker's peer signer did not sign the served receipt
    REQUEST_MISMATCH = "request_mismatch"  # the served request does not hash to the receipt's request hash
    WRONG_WORKER = "wrong_worker"
    WRONG_EPOCH = "wrong_epoch"
    WRONG_DEAL = "wrong_deal"
    BAD_CALLER_SIGNATURE = "bad_caller_signature"
    EXPIRED_REQUEST = "expired_request"  # the request's deadline is before the epoch's start
    USAGE_MISMATCH = "usage_mismatch"  # running fuel totals or call count do not add up
    RECEIPT_OMITTED = "receipt_omitted"  # a receipt the peer signed for the epoch is missing from the proof
    EQUIVOCATION = "equivocation"  # two different receipts by one signer for one request
    INPUT_MISMATCH = "input_mismatch"  # served input bytes do not hash to the request's input hash
    APP_CID_MISMATCH = "app_cid_mismatch"  # the receipt names another package than the deal runs
    OUTPUT_MISMATCH = "output_mismatch"  # re-execution gave another output hash or fuel
    MISSED_PROOF = "missed_proof"  # a funded epoch without a proof


class Remedy(enum.Enum):
    """The on-chain action that a finding allows, or NONE when the contract cannot check it."""

    NONE = "none"
    CHALLENGE_SAMPLE = "challenge_sample"
    CHALLENGE_RECEIPT = "challenge_receipt"
    PROVE_EQUIVOCATION = "prove_equivocation"
    PROVE_DISAGREEMENT = "prove_disagreement"
    REPORT_MISSED_PROOF = "report_missed_proof"


@dataclass(frozen=True)
class Finding:
    """One problem with the proof of `worker_id` for `epoch`.

    `leaf_index` is the position of the receipt in the served epoch, when the
    finding is about one receipt. `receipt` is the receipt that a
    CHALLENGE_RECEIPT shows, or the first receipt of an equivocation, whose
    `other_receipt` is the second. The `message` of a finding with remedy
    NONE explains why it cannot be proven on chain.
    """

    kind: FindingKind
    worker_id: int
    epoch: int
    message: str
    remedy: Remedy = Remedy.NONE
    leaf_index: int | None = None
    receipt: SignedReceipt | None = None
    other_receipt: SignedReceipt | None = None

    @property
    def actionable(self) -> bool:
        return self.remedy is not Remedy.NONE

    def describe(self) -> str:
        """Return a one-line summary with the ids, for logs."""
        where = f"worker {self.worker_id} epoch {self.epoch}"
        if self.leaf_index is not None:
            where += f" leaf {self.leaf_index}"
        action = self.remedy.value if self.actionable else "no on-chain action"
        return f"{self.kind.value} at {where} ({action}): {self.message}"
