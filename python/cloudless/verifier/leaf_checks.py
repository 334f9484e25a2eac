"""Checks of single served leaves: openings, receipt and request content, running fuel totals, duplicates.

These are the checks that the contract applies to an opened leaf, run off
chain on every served receipt. `checks.check_served_epoch` calls them; see
its module for when a finding gets an on-chain remedy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cloudless.chain.types import EpochProofEntry
from cloudless.exceptions import InvalidSignatureError, MerkleProofError
from cloudless.receipts.eip712 import Domain, hash_input, recover_receipt_signer, recover_request_signer
from cloudless.receipts.merkle import verify_proof
from cloudless.receipts.models import SignedReceipt
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from cloudless.verifier.models import ServedReceipt

__all__ = [
    "CheckedReceipt",
    "EpochContext",
    "content_findings",
    "duplicate_findings",
    "equivocation_finding",
    "omitted_receipt_findings",
    "opening_findings",
    "running_total_findings",
    "served_equivocations",
]

_UNSIGNED = "the worker's peer signer did not sign the served receipt, so it cannot be shown in a challenge"


@dataclass(frozen=True)
class EpochContext:
    """Chain facts about the worker epoch under check.

    `signer` is the worker's peer signer (checksum address) and `epoch_start`
    the epoch's first second: genesis + epoch x epoch duration.
    `caller_allowed` returns whether the deal counts requests of a caller in
    this epoch (`ChallengeManager.isCallerAllowedAt`); by default every caller counts.
    """

    worker_id: int
    deal_id: int
    epoch: int
    signer: str
    epoch_start: int
    domain: Domain
    caller_allowed: Callable[[str], bool] = lambda caller: True


@dataclass(frozen=True)
class CheckedReceipt:
    """One served leaf with what the checks computed about it.

    `in_root` is True when the leaf is known to be inside the proof's root:
    its served opening verifies, or the served receipts rebuild the root.
    """

    position: int
    item: ServedReceipt
    digest: bytes
    signed_by_worker: bool
    request_matches: bool
    in_root: bool

    @property
    def receipt(self) -> SignedReceipt:
        return self.item.receipt


def omitted_receipt_findings(
    receipts: Iterable[SignedReceipt], entry: EpochProofEntry, known_digests: frozenset[bytes], domain: Domain
) -> list[Finding]:
    """Return a RECEIPT_OMITTED finding for each receipt of the proof's worker and epoch that its root lacks.

    The caller must pass only receipts that the worker's peer signer signed.
    """
    findings = []
    seen: set[bytes] = set()
    for receipt in receipts:
        if (receipt.worker_id, receipt.epoch) != (entry.worker_id, entry.epoch):
            continue
        digest = receipt.digest(domain)
        if digest in known_digests or digest in seen:
            continue
        seen.add(digest)
        findings.append(
            Finding(
                FindingKind.RECEIPT_OMITTED,
                entry.worker_id,
                entry.epoch,
                f"receipt 0x{digest.hex()} (sequence {receipt.sequence}) is signed for this worker and epoch "
                f"but is not among the {len(known_digests)} leaves of root 0x{entry.receipts_root.hex()}",
                Remedy.CHALLENGE_RECEIPT,
                receipt=receipt,
            )
        )
    return findings


def equivocation_finding(first: SignedReceipt, second: SignedReceipt, domain: Domain) -> Finding | None:
    """Return an EQUIVOCATION finding when two receipts by one signer name one request with different digests.

    The caller must have checked that `first.signer` is the peer signer of
    `first.worker_id`, which `proveEquivocation` requires; the signatures are
    checked here.
    """
    if first.request_hash != second.request_hash:
        return None
    first_digest = first.digest(domain)
    second_digest = second.digest(domain)
    if first_digest == second_digest:
        return None
    try:
        first_signer = recover_receipt_signer(first.to_receipt(), first.signature, domain)
        second_signer = recover_receipt_signer(second.to_receipt(), second.signature, domain)
    except InvalidSignatureError:
        return None
    if first_signer != second_signer:
        return None
    replay = first.output_hash == second.output_hash and first.fuel_used == second.fuel_used
    what = "replay: one call counted twice" if replay else "two different outputs for one call"
    return Finding(
        FindingKind.EQUIVOCATION,
        first.worker_id,
        first.epoch,
        f"signer {first_signer} signed receipts 0x{first_digest.hex()} (worker {first.worker_id}, epoch "
        f"{first.epoch}, sequence {first.sequence}) and 0x{second_digest.hex()} (worker {second.worker_id}, "
        f"epoch {second.epoch}, sequence {second.sequence}) for request 0x{first.request_hash.hex()} ({what})",
        Remedy.PROVE_EQUIVOCATION,
        receipt=first,
        other_receipt=second,
    )


def opening_findings(checked: CheckedReceipt, entry: EpochProofEntry, root_matches: bool) -> list[Finding]:
    item = checked.item
    problems = []
    if item.index != checked.position:
        problems.append(f"the receipt at position {checked.position} is served as leaf {item.index}")
    if item.opening.digest != checked.digest:
        problems.append(f"the opening names digest 0x{item.opening.digest.hex()}, the receipt's is 0x{checked.digest.hex()}")
    elif root_matches and not _opening_verifies(item, entry):
        problems.append("the opening's Merkle path does not verify against the proof's root")
    if not problems:
        return []
    return [
        Finding(
            FindingKind.BAD_OPENING,
            entry.worker_id,
            entry.epoch,
            "; ".join(problems) + " (a serving error: the contract checks only the answer's opening)",
            leaf_index=checked.position,
        )
    ]


def _opening_verifies(item: ServedReceipt, entry: EpochProofEntry) -> bool:
    opening = item.opening
    try:
        return verify_proof(entry.receipts_root, opening.digest, opening.index, opening.fuel_before, opening.proof)
    except MerkleProofError:
        return False


def content_findings(checked: CheckedReceipt, entry: EpochProofEntry, context: EpochContext) -> list[Finding]:
    """Check the receipt and its request as the contract judges an opened leaf."""
    receipt = checked.receipt
    request = checked.item.request
    domain = context.domain
    findings: list[Finding] = []

    def add(kind: FindingKind, message: str, *, needs_root: bool = False) -> None:
        # A receipt of this worker and epoch is bound to this proof even outside
        # the root, where it is an omitted receipt. Any other receipt is bound only inside it.
        bound = checked.in_root or (
            not needs_root and (receipt.worker_id, receipt.epoch) == (entry.worker_id, entry.epoch)
        )
        if not checked.signed_by_worker:
            remedy, message = Remedy.NONE, f"{message}; {_UNSIGNED}"
        elif not bound:
            remedy, message = Remedy.NONE, f"{message}; the receipt is not inside the proof's root"
        elif (receipt.worker_id, receipt.epoch) != (entry.worker_id, entry.epoch):
            # NOTE: `challengeReceipt` takes only receipts that name the proof's
            # worker and epoch, so that nobody can challenge a proof with a
            # receipt that rightly belongs elsewhere. A copy that names another
            # worker or epoch is reachable only by a sample challenge, which
            # opens a random leaf, so the verifier leaves it alone.
            remedy = Remedy.NONE
            message = f"{message}; a receipt challenge cannot name it, and a sample challenge would open a random leaf"
        else:
            remedy = Remedy.CHALLENGE_RECEIPT
        findings.append(
            Finding(kind, entry.worker_id, entry.epoch, message, remedy, leaf_index=checked.position, receipt=receipt)
        )

    if not checked.signed_by_worker:
        findings.append(
            Finding(
                FindingKind.BAD_RECEIPT_SIGNATURE,
                entry.worker_id,
                entry.epoch,
                f"receipt 0x{checked.digest.hex()} is not signed by the peer signer {context.signer}; the peer "
                "can still sign it when it answers, so a challenge cannot rely on it",
                leaf_index=checked.position,
            )
        )
    if receipt.worker_id != entry.worker_id:
        add(FindingKind.WRONG_WORKER, f"the receipt is for worker {receipt.worker_id}", needs_root=True)
    if receipt.epoch != entry.epoch:
        add(FindingKind.WRONG_EPOCH, f"the receipt is for epoch {receipt.epoch}", needs_root=True)

    if not checked.request_matches:
        findings.append(
            Finding(
                FindingKind.REQUEST_MISMATCH,
                entry.worker_id,
                entry.epoch,
                f"the served request hashes to 0x{request.digest(domain).hex()}, the receipt names "
                f"0x{receipt.request_hash.hex()}; the node may still hold the right request, so the "
                "request checks are skipped",
                leaf_index=checked.position,
            )
        )
        return findings

    if request.deal_id != context.deal_id:
        add(FindingKind.WRONG_DEAL, f"the request is for deal {request.deal_id}, the worker serves deal {context.deal_id}")
    try:
        caller = recover_request_signer(request.to_request(), request.signature, domain)
    except InvalidSignatureError as error:
        add(FindingKind.BAD_CALLER_SIGNATURE, f"the request's caller signature does not recover: {error}")
    else:
        if not context.caller_allowed(caller):
            add(
                FindingKind.BAD_CALLER_SIGNATURE,
                f"the request was signed by {caller}, which is not an allowed caller of deal {context.deal_id}",
            )
        elif caller != request.signer:
            findings.append(
                Finding(
                    FindingKind.BAD_CALLER_SIGNATURE,
                    entry.worker_id,
                    entry.epoch,
                    f"the request names caller {request.signer} but was signed by {caller}; the contract "
                    "accepts a signature by any key, so this cannot be proven on chain",
                    leaf_index=checked.position,
                )
            )
    if request.deadline < context.epoch_start:
        add(
            FindingKind.EXPIRED_REQUEST,
            f"the request's deadline {request.deadline} is before epoch {entry.epoch} started at {context.epoch_start}",
        )
    if hash_input(checked.item.input_bytes) != request.input_hash:
        findings.append(
            Finding(
                FindingKind.INPUT_MISMATCH,
                entry.worker_id,
                entry.epoch,
                f"the served input hashes to 0x{hash_input(checked.item.input_bytes).hex()}, the request signs "
                f"0x{request.input_hash.hex()}; the call cannot be re-executed",
                leaf_index=checked.position,
            )
        )
    return findings


def running_total_findings(
    leaves: dict[int, tuple[CheckedReceipt, int]], entry: EpochProofEntry, *, full_tree: bool
) -> list[Finding]:
    """Check the committed running fuel totals of the leaves known to be inside the root.

    `leaves` maps leaf index to the receipt and its committed fuel before it.
    With `full_tree`, the leaves are all of the root's, so a leaf whose next
    leaf is missing shows a call count that the tree does not have.
    """
    digest_counts: dict[bytes, int] = {}
    for checked, _ in leaves.values():
        digest_counts[checked.digest] = digest_counts.get(checked.digest, 0) + 1

    findings = []
    for index in sorted(leaves):
        checked, before = leaves[index]
        after = before + checked.receipt.fuel_used
        following = leaves.get(index + 1)
        if index >= entry.calls:
            problem = f"leaf {index} is past the proof's {entry.calls} calls"
        elif index == 0 and before != 0:
            problem = f"leaf 0 starts at {before} fuel, not 0"
        elif after > entry.usage:
            problem = f"the running total reaches {after} fuel at leaf {index}, above the proof's usage of {entry.usage}"
        elif index + 1 == entry.calls:
            if after == entry.usage:
                continue
            problem = f"the last leaf ends at {after} fuel, but the proof's usage is {entry.usage}"
        elif following is not None and following[1] != after:
            problem = f"leaf {index} ends at {after} fuel, but leaf {index + 1} starts at {following[1]}"
        elif following is None and full_tree:
            problem = f"the proof counts {entry.calls} calls, but the tree has {len(leaves)} leaves"
        else:
            continue

        # A receipt at two leaves lets the node answer with the other one.
        if not checked.signed_by_worker:
            remedy, problem = Remedy.NONE, f"{problem}; {_UNSIGNED}"
        elif digest_counts[checked.digest] > 1:
            remedy, problem = Remedy.NONE, f"{problem}; the receipt is at more than one leaf"
        else:
            remedy = Remedy.CHALLENGE_RECEIPT
        findings.append(
            Finding(
                FindingKind.USAGE_MISMATCH,
                entry.worker_id,
                entry.epoch,
                problem,
                remedy,
                leaf_index=checked.position,
                receipt=checked.receipt,
            )
        )
    return findings


def duplicate_findings(receipts: Sequence[CheckedReceipt], entry: EpochProofEntry) -> list[Finding]:
    first_position: dict[bytes, int] = {}
    findings = []
    for checked in receipts:
        earlier = first_position.setdefault(checked.digest, checked.position)
        if earlier != checked.position:
            findings.append(
                Finding(
                    FindingKind.DUPLICATE_RECEIPT,
                    entry.worker_id,
                    entry.epoch,
                    f"receipt 0x{checked.digest.hex()} is served at positions {earlier} and {checked.position}; "
                    "the contract cannot tell the two leaves apart",
                    leaf_index=checked.position,
                )
            )
    return findings


def served_equivocations(receipts: Sequence[CheckedReceipt], entry: EpochProofEntry) -> list[Finding]:
    """Find two receipts of this worker, signed by its peer, for one request within the served epoch."""
    first_by_request: dict[bytes, CheckedReceipt] = {}
    reported: set[bytes] = set()
    findings = []
    for checked in receipts:
        if not checked.signed_by_worker or checked.receipt.worker_id != entry.worker_id:
            continue
        request_hash = checked.receipt.request_hash
        first = first_by_request.setdefault(request_hash, checked)
        if first.digest == checked.digest or request_hash in reported:
            continue
        reported.add(request_hash)
        findings.append(
            Finding(
                FindingKind.EQUIVOCATION,
                entry.worker_id,
                entry.epoch,
                f"receipts at positions {first.position} and {checked.position} answer request "
                f"0x{request_hash.hex()} with digests 0x{first.digest.hex()} and 0x{checked.digest.hex()}",
                Remedy.PROVE_EQUIVOCATION,
                leaf_index=checked.position,
                receipt=first.receipt,
                other_receipt=checked.receipt,
            )
        )
    return findings
