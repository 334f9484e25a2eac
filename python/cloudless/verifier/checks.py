"""Off-chain checks of one epoch proof against the receipts its node serves. Pure functions: no chain, no network.

`check_served_epoch` compares a `ServedEpoch` with the proof entry on chain
and returns every finding. A finding gets an on-chain remedy only when the
contract is bound to uphold it:

- a receipt challenge names a receipt that the worker's peer signed. The
  receipt is inside the proof's root with bad content or a broken running
  fuel total, or it is a receipt of this worker and epoch that the root lacks;
- a sample challenge is for a proof whose receipts the node does not serve
  in a form that rebuilds the root, so it cannot open a sampled leaf either.

A receipt of another worker or epoch that is not inside the root is never
used, because the node of this proof could not answer for it even if it
were honest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cloudless.chain.types import EpochProofEntry
from cloudless.exceptions import InvalidSignatureError, MerkleProofError
from cloudless.receipts.eip712 import recover_receipt_signer
from cloudless.receipts.merkle import EMPTY_ROOT, ReceiptMerkleTree, verify_proof
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from cloudless.verifier.leaf_checks import (
    CheckedReceipt,
    EpochContext,
    content_findings,
    duplicate_findings,
    equivocation_finding,
    omitted_receipt_findings,
    opening_findings,
    running_total_findings,
    served_equivocations,
)
from cloudless.verifier.models import ServedEpoch, ServedReceipt

__all__ = [
    "CheckedReceipt",
    "EpochCheck",
    "EpochContext",
    "check_served_epoch",
    "equivocation_finding",
    "not_served_finding",
    "omitted_receipt_findings",
    "pick_challenge",
]

# Findings that a challenge may act on, best first. Receipt challenges come
# before sample challenges because they do not depend on which leaf the
# contract picks. A caller signature comes last among receipt faults: the
# contract accepts a signature by any key, so a node can escape it by
# signing the request itself when it answers.
_CHALLENGE_ORDER = (
    FindingKind.WRONG_WORKER,
    FindingKind.WRONG_EPOCH,
    FindingKind.WRONG_DEAL,
    FindingKind.EXPIRED_REQUEST,
    FindingKind.USAGE_MISMATCH,
    FindingKind.RECEIPT_OMITTED,
    FindingKind.BAD_CALLER_SIGNATURE,
    FindingKind.TREE_MISMATCH,
    FindingKind.NOT_SERVED,
)


@dataclass(frozen=True)
class EpochCheck:
    """Result of checking one served epoch against its proof.

    `root_matches` is True when the served receipts rebuild the proof's root.
    `known_digests` are all the receipt digests inside the proof's root when
    the checks could tell (the root was rebuilt, or it is the empty root),
    else None.
    """

    entry: EpochProofEntry
    receipts: tuple[CheckedReceipt, ...]
    root_matches: bool
    known_digests: frozenset[bytes] | None
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    def challenge(self) -> Finding | None:
        """Return the finding that the proof's one challenge should act on, or None."""
        return pick_challenge(self.findings)


def pick_challenge(findings: Iterable[Finding]) -> Finding | None:
    """Return the best actionable challenge finding, by the order in `_CHALLENGE_ORDER`, or None."""
    candidates = [
        finding
        for finding in findings
        if finding.remedy in (Remedy.CHALLENGE_RECEIPT, Remedy.CHALLENGE_SAMPLE)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda finding: _CHALLENGE_ORDER.index(finding.kind))


def not_served_finding(entry: EpochProofEntry, reason: str) -> Finding:
    """Return the finding for a node that did not serve the receipts of a proof."""
    if entry.calls == 0:
        return Finding(
            FindingKind.NOT_SERVED,
            entry.worker_id,
            entry.epoch,
            f"{reason}; the proof has 0 calls, so there is no leaf to sample",
        )
    return Finding(
        FindingKind.NOT_SERVED,
        entry.worker_id,
        entry.epoch,
        f"{reason}; a sample challenge asks the node to open a leaf of its {entry.calls} calls",
        Remedy.CHALLENGE_SAMPLE,
    )


def check_served_epoch(entry: EpochProofEntry, served: ServedEpoch, context: EpochContext) -> EpochCheck:
    """Check a node's served receipts against its proof entry and return every finding."""
    findings: list[Finding] = []
    findings.extend(_summary_findings(entry, served))

    receipts = [_inspect(position, item, entry, context) for position, item in enumerate(served.receipts)]
    tree = _rebuild(receipts)
    root_matches = tree is not None and tree.root == entry.receipts_root
    if root_matches:
        assert tree is not None
        receipts = [dataclasses.replace(checked, in_root=True) for checked in receipts]
        known_digests: frozenset[bytes] | None = frozenset(tree.digests)
        leaves = {index: (checked, tree.fuel_before[index]) for index, checked in enumerate(receipts)}
    else:
        known_digests = frozenset() if entry.receipts_root == EMPTY_ROOT else None
        leaves = {checked.item.opening.index: (checked, checked.item.opening.fuel_before) for checked in receipts if checked.in_root}
        findings.append(_tree_mismatch(entry, tree, len(receipts)))

    for checked in receipts:
        findings.extend(opening_findings(checked, entry, root_matches))
        findings.extend(content_findings(checked, entry, context))
    findings.extend(running_total_findings(leaves, entry, full_tree=root_matches))
    findings.extend(duplicate_findings(receipts, entry))
    if known_digests is not None:
        signed = [checked.receipt for checked in receipts if checked.signed_by_worker]
        findings.extend(omitted_receipt_findings(signed, entry, known_digests, context.domain))
    findings.extend(served_equivocations(receipts, entry))

    return EpochCheck(
        entry=entry,
        receipts=tuple(receipts),
        root_matches=root_matches,
        known_digests=known_digests,
        findings=tuple(findings),
    )


# ------------------------------------------------------------------ helpers


def _summary_findings(entry: EpochProofEntry, served: ServedEpoch) -> list[Finding]:
    findings = []
    if (served.worker_id, served.epoch) != (entry.worker_id, entry.epoch):
        findings.append(
            Finding(
                FindingKind.SUMMARY_MISMATCH,
                entry.worker_id,
                entry.epoch,
                f"the node served worker {served.worker_id} epoch {served.epoch} for this proof",
            )
        )
    on_chain = ("0x" + entry.receipts_root.hex(), entry.calls, entry.usage)
    if (served.root.lower(), served.calls, served.usage) != on_chain:
        findings.append(
            Finding(
                FindingKind.SUMMARY_MISMATCH,
                entry.worker_id,
                entry.epoch,
                f"the node serves root {served.root}, {served.calls} calls and {served.usage} fuel, "
                f"but the proof on chain has root {on_chain[0]}, {entry.calls} calls and {entry.usage} fuel",
            )
        )
    return findings


def _inspect(position: int, item: ServedReceipt, entry: EpochProofEntry, context: EpochContext) -> CheckedReceipt:
    domain = context.domain
    receipt = item.receipt
    digest = receipt.digest(domain)
    try:
        signed = recover_receipt_signer(receipt.to_receipt(), receipt.signature, domain) == context.signer
    except InvalidSignatureError:
        signed = False
    opening = item.opening
    try:
        in_root = (
            opening.digest == digest
            and opening.index == item.index
            and verify_proof(entry.receipts_root, digest, opening.index, opening.fuel_before, opening.proof)
        )
    except MerkleProofError:
        in_root = False
    return CheckedReceipt(
        position=position,
        item=item,
        digest=digest,
        signed_by_worker=signed,
        request_matches=item.request.digest(domain) == receipt.request_hash,
        in_root=in_root,
    )


def _rebuild(receipts: Sequence[CheckedReceipt]) -> ReceiptMerkleTree | None:
    """Rebuild the tree from the served receipts, or return None when their fuel total overflows uint64."""
    try:
        return ReceiptMerkleTree([(checked.digest, checked.receipt.fuel_used) for checked in receipts])
    except MerkleProofError:
        return None


def _tree_mismatch(entry: EpochProofEntry, tree: ReceiptMerkleTree | None, served: int) -> Finding:
    rebuilt = "a fuel total above 2**64 - 1" if tree is None else f"root 0x{tree.root.hex()}"
    message = (
        f"the {served} served receipts rebuild {rebuilt}, "
        f"not the proof's root 0x{entry.receipts_root.hex()}"
    )
    if entry.calls == 0:
        return Finding(
            FindingKind.TREE_MISMATCH,
            entry.worker_id,
            entry.epoch,
            message + "; the proof has 0 calls, so there is no leaf to sample",
        )
    return Finding(FindingKind.TREE_MISMATCH, entry.worker_id, entry.epoch, message, Remedy.CHALLENGE_SAMPLE)


