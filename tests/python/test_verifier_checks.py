"""The verifier's off-chain checks of a served epoch, on real signed requests, receipts and Merkle trees."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudless.chain.types import EpochProofEntry
from cloudless.receipts.merkle import EMPTY_ROOT
from cloudless.verifier.checks import (
    EpochCheck,
    EpochContext,
    check_served_epoch,
    equivocation_finding,
    not_served_finding,
    omitted_receipt_findings,
    pick_challenge,
)
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from verifier_support import (
    DEAL_ID,
    DOMAIN,
    EPOCH,
    EPOCH_START,
    OTHER_KEY,
    PEER,
    WORKER_ID,
    Call,
    build_epoch,
    high_s,
    honest_calls,
    parse_served,
    resign_receipt,
    sign_call,
)

CONTEXT = EpochContext(
    worker_id=WORKER_ID, deal_id=DEAL_ID, epoch=EPOCH, signer=PEER, epoch_start=EPOCH_START, domain=DOMAIN
)


def check(served_calls: list[Call], /, *, committed_fuel: list[int] | None = None, **entry_changes: Any) -> EpochCheck:
    entry, served = build_epoch(served_calls, committed_fuel=committed_fuel)
    entry = dataclasses.replace(entry, **entry_changes)
    return check_served_epoch(entry, parse_served(served), CONTEXT)


def kinds(findings: tuple[Finding, ...] | list[Finding]) -> set[FindingKind]:
    return {finding.kind for finding in findings}


# ------------------------------------------------------------- honest epochs


def test_honest_epoch_has_no_findings() -> None:
    result = check(honest_calls(3))

    assert result.findings == ()
    assert result.root_matches
    assert result.challenge() is None


def test_empty_epoch_has_no_findings() -> None:
    result = check([])

    assert result.findings == ()
    assert result.entry.receipts_root == EMPTY_ROOT
    assert result.known_digests == frozenset()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fuels=st.lists(st.integers(min_value=0, max_value=10**12), min_size=0, max_size=6),
    deadline_after_start=st.integers(min_value=0, max_value=10**6),
)
def test_any_honest_epoch_has_no_findings(fuels: list[int], deadline_after_start: int) -> None:
    calls = honest_calls(len(fuels), fuel=fuels, deadline=EPOCH_START + deadline_after_start)

    result = check(calls)

    assert result.findings == ()
    assert result.root_matches


# ------------------------------------------------------------- one tampering


@dataclass(frozen=True)
class Tampered:
    calls: list[Call]
    committed_fuel: list[int] | None
    entry_changes: dict[str, Any]
    kind: FindingKind
    remedy: Remedy
    leaf: int | None  # leaf of the finding and of the receipt the challenge shows


def wrong_deal(calls: list[Call], position: int) -> Tampered:
    calls[position] = sign_call(nonce=999, sequence=position, deal_id=DEAL_ID + 1)
    return Tampered(calls, None, {}, FindingKind.WRONG_DEAL, Remedy.CHALLENGE_RECEIPT, position)


def wrong_worker(calls: list[Call], position: int) -> Tampered:
    calls[position] = resign_receipt(calls[position], worker_id=WORKER_ID + 1)
    # The contract's receipt challenge takes only receipts of the proof's worker and epoch.
    return Tampered(calls, None, {}, FindingKind.WRONG_WORKER, Remedy.NONE, position)


def wrong_epoch(calls: list[Call], position: int) -> Tampered:
    calls[position] = resign_receipt(calls[position], epoch=EPOCH - 1)
    return Tampered(calls, None, {}, FindingKind.WRONG_EPOCH, Remedy.NONE, position)


def expired_request(calls: list[Call], position: int) -> Tampered:
    calls[position] = sign_call(nonce=999, sequence=position, deadline=EPOCH_START - 1)
    return Tampered(calls, None, {}, FindingKind.EXPIRED_REQUEST, Remedy.CHALLENGE_RECEIPT, position)


def malformed_caller_signature(calls: list[Call], position: int) -> Tampered:
    call = calls[position]
    request = call.request.model_copy(update={"signature": high_s(call.request.signature)})
    calls[position] = dataclasses.replace(call, request=request)
    return Tampered(calls, None, {}, FindingKind.BAD_CALLER_SIGNATURE, Remedy.CHALLENGE_RECEIPT, position)


def running_total_gap(calls: list[Call], position: int) -> Tampered:
    committed = [call.receipt.fuel_used for call in calls]
    committed[position] += 7
    return Tampered(calls, committed, {}, FindingKind.USAGE_MISMATCH, Remedy.CHALLENGE_RECEIPT, position)


def inflated_usage(calls: list[Call], position: int) -> Tampered:
    usage = sum(call.receipt.fuel_used for call in calls) + 5
    return Tampered(calls, None, {"usage": usage}, FindingKind.USAGE_MISMATCH, Remedy.CHALLENGE_RECEIPT, len(calls) - 1)


def inflated_calls(calls: list[Call], position: int) -> Tampered:
    return Tampered(calls, None, {"calls": len(calls) + 1}, FindingKind.USAGE_MISMATCH, Remedy.CHALLENGE_RECEIPT, len(calls) - 1)


def replayed_call(calls: list[Call], position: int) -> Tampered:
    source = calls[(position + 1) % len(calls)]
    calls[position] = resign_receipt(source, sequence=source.receipt.sequence + 100)
    return Tampered(calls, None, {}, FindingKind.EQUIVOCATION, Remedy.PROVE_EQUIVOCATION, None)


def other_root(calls: list[Call], position: int) -> Tampered:
    return Tampered(calls, None, {"receipts_root": b"\x07" * 32}, FindingKind.TREE_MISMATCH, Remedy.CHALLENGE_SAMPLE, None)


TAMPERS: list[Callable[[list[Call], int], Tampered]] = [
    wrong_deal,
    wrong_worker,
    wrong_epoch,
    expired_request,
    malformed_caller_signature,
    running_total_gap,
    inflated_usage,
    inflated_calls,
    replayed_call,
    other_root,
]


def assert_tampering_found(tampered: Tampered) -> None:
    result = check(tampered.calls, committed_fuel=tampered.committed_fuel, **tampered.entry_changes)

    matching = [
        finding
        for finding in result.findings
        if finding.kind is tampered.kind and finding.remedy is tampered.remedy
    ]
    assert matching, f"expected {tampered.kind} with {tampered.remedy}, got {[f.describe() for f in result.findings]}"
    if tampered.remedy in (Remedy.CHALLENGE_RECEIPT, Remedy.CHALLENGE_SAMPLE):
        chosen = result.challenge()
        assert chosen is not None
        assert chosen.kind is tampered.kind
        if tampered.leaf is not None:
            assert chosen.leaf_index == tampered.leaf
            assert chosen.receipt == tampered.calls[tampered.leaf].receipt


@pytest.mark.parametrize("tamper", TAMPERS, ids=[tamper.__name__ for tamper in TAMPERS])
def test_single_tampering_is_found(tamper: Callable[[list[Call], int], Tampered]) -> None:
    assert_tampering_found(tamper(honest_calls(4), 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tamper=st.sampled_from(TAMPERS),
    size=st.integers(min_value=2, max_value=5),
    data=st.data(),
)
def test_any_single_tampering_is_found(tamper: Callable[[list[Call], int], Tampered], size: int, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=size - 1), label="position")
    fuels = data.draw(st.lists(st.integers(min_value=0, max_value=10**9), min_size=size, max_size=size), label="fuels")

    assert_tampering_found(tamper(honest_calls(size, fuel=fuels), position))


# ------------------------------------------------------- when not to challenge


def test_receipt_not_signed_by_peer_is_not_challenged() -> None:
    calls = honest_calls(3)
    calls[1] = resign_receipt(sign_call(nonce=999, sequence=1, deal_id=DEAL_ID + 1), key=OTHER_KEY)

    result = check(calls)

    assert FindingKind.BAD_RECEIPT_SIGNATURE in kinds(result.findings)
    wrong_deal_findings = [finding for finding in result.findings if finding.kind is FindingKind.WRONG_DEAL]
    assert wrong_deal_findings
    assert wrong_deal_findings[0].remedy is Remedy.NONE
    assert result.challenge() is None


def test_foreign_receipt_outside_root_is_not_challenged() -> None:
    calls = honest_calls(2)
    entry, served = build_epoch(calls)
    foreign = resign_receipt(sign_call(nonce=500, sequence=9), worker_id=WORKER_ID + 1, epoch=EPOCH + 1)
    extra = dict(served["receipts"][0], index=2, receipt=foreign.receipt.to_dict(), request=foreign.request.to_dict())
    served["receipts"].append(extra)

    result = check_served_epoch(entry, parse_served(served), CONTEXT)

    foreign_findings = [f for f in result.findings if f.kind in (FindingKind.WRONG_WORKER, FindingKind.WRONG_EPOCH)]
    assert foreign_findings
    assert all(finding.remedy is Remedy.NONE for finding in foreign_findings)
    assert all(finding.kind is not FindingKind.RECEIPT_OMITTED for finding in result.findings)


def test_caller_other_than_named_is_not_challenged() -> None:
    calls = honest_calls(2)
    call = calls[0]
    calls[0] = dataclasses.replace(call, request=call.request.model_copy(update={"signer": PEER}))

    result = check(calls)

    caller_findings = [f for f in result.findings if f.kind is FindingKind.BAD_CALLER_SIGNATURE]
    assert len(caller_findings) == 1
    assert caller_findings[0].remedy is Remedy.NONE
    assert result.challenge() is None


def test_caller_outside_allowed_callers_is_challenged() -> None:
    calls = honest_calls(3)
    allowed_only_peer = dataclasses.replace(CONTEXT, caller_allowed=lambda caller: caller == PEER)
    entry, served = build_epoch(calls)

    result = check_served_epoch(entry, parse_served(served), allowed_only_peer)

    caller_findings = [f for f in result.findings if f.kind is FindingKind.BAD_CALLER_SIGNATURE]
    assert len(caller_findings) == len(calls)
    assert all(finding.remedy is Remedy.CHALLENGE_RECEIPT for finding in caller_findings)
    chosen = result.challenge()
    assert chosen is not None
    assert chosen.kind is FindingKind.BAD_CALLER_SIGNATURE


def test_served_request_mismatch_skips_request_checks() -> None:
    calls = honest_calls(2)
    other = sign_call(nonce=4242, sequence=0, deal_id=DEAL_ID + 1)
    calls[0] = dataclasses.replace(calls[0], request=other.request)

    result = check(calls)

    assert kinds(result.findings) == {FindingKind.REQUEST_MISMATCH}
    assert result.findings[0].remedy is Remedy.NONE


def test_bad_opening_is_reported_without_action() -> None:
    entry, served = build_epoch(honest_calls(3))
    served["receipts"][1]["opening"]["index"] = 2

    result = check_served_epoch(entry, parse_served(served), CONTEXT)

    assert kinds(result.findings) == {FindingKind.BAD_OPENING}
    assert result.challenge() is None


def test_summary_mismatch_alone_is_not_challenged() -> None:
    entry, served = build_epoch(honest_calls(2))
    served["usage"] += 1

    result = check_served_epoch(entry, parse_served(served), CONTEXT)

    assert kinds(result.findings) == {FindingKind.SUMMARY_MISMATCH}
    assert result.challenge() is None


def test_tree_mismatch_of_empty_proof_cannot_be_sampled() -> None:
    calls = honest_calls(2)

    result = check(calls, receipts_root=b"\x05" * 32, calls=0, usage=0)

    tree = [finding for finding in result.findings if finding.kind is FindingKind.TREE_MISMATCH]
    assert len(tree) == 1
    assert tree[0].remedy is Remedy.NONE


# --------------------------------------------------------- omitted receipts


def test_receipts_served_for_empty_proof_are_omitted() -> None:
    calls = honest_calls(2)

    result = check(calls, receipts_root=EMPTY_ROOT, calls=0, usage=0)

    omitted = [finding for finding in result.findings if finding.kind is FindingKind.RECEIPT_OMITTED]
    assert [finding.receipt for finding in omitted] == [call.receipt for call in calls]
    assert result.challenge() is not None
    assert result.challenge().kind is FindingKind.RECEIPT_OMITTED  # type: ignore[union-attr]


def test_receipt_seen_elsewhere_missing_from_root_is_omitted() -> None:
    calls = honest_calls(3)
    result = check(calls[:2])
    assert result.known_digests is not None

    findings = omitted_receipt_findings([call.receipt for call in calls], result.entry, result.known_digests, DOMAIN)

    assert [finding.receipt for finding in findings] == [calls[2].receipt]
    assert findings[0].remedy is Remedy.CHALLENGE_RECEIPT


def test_receipt_of_other_epoch_is_not_omitted() -> None:
    result = check(honest_calls(1))
    other_epoch = sign_call(nonce=77, sequence=5, epoch=EPOCH + 1)
    assert result.known_digests is not None

    findings = omitted_receipt_findings([other_epoch.receipt], result.entry, result.known_digests, DOMAIN)

    assert findings == []


# ------------------------------------------------------------- equivocation


def test_equivocation_needs_same_signer_and_request() -> None:
    first = sign_call(nonce=1, sequence=0)
    replay = resign_receipt(first, sequence=1, epoch=EPOCH + 1)
    other_signer = resign_receipt(first, key=OTHER_KEY, sequence=1)
    other_request = sign_call(nonce=2, sequence=1)

    found = equivocation_finding(first.receipt, replay.receipt, DOMAIN)

    assert found is not None
    assert found.kind is FindingKind.EQUIVOCATION
    assert found.other_receipt == replay.receipt
    assert equivocation_finding(first.receipt, first.receipt, DOMAIN) is None
    assert equivocation_finding(first.receipt, other_signer.receipt, DOMAIN) is None
    assert equivocation_finding(first.receipt, other_request.receipt, DOMAIN) is None


# ----------------------------------------------------------------- choosing


def test_not_served_proof_gets_sample_challenge() -> None:
    entry = EpochProofEntry(worker_id=WORKER_ID, epoch=EPOCH, receipts_root=b"\x01" * 32, calls=3, usage=10)

    assert not_served_finding(entry, "timed out").remedy is Remedy.CHALLENGE_SAMPLE
    assert not_served_finding(dataclasses.replace(entry, calls=0), "timed out").remedy is Remedy.NONE


def test_receipt_challenge_wins_over_sample() -> None:
    sample = Finding(FindingKind.TREE_MISMATCH, WORKER_ID, EPOCH, "tree", Remedy.CHALLENGE_SAMPLE)
    receipt = Finding(FindingKind.BAD_CALLER_SIGNATURE, WORKER_ID, EPOCH, "caller", Remedy.CHALLENGE_RECEIPT)
    wrong_deal_finding = Finding(FindingKind.WRONG_DEAL, WORKER_ID, EPOCH, "deal", Remedy.CHALLENGE_RECEIPT)
    unprovable = Finding(FindingKind.WRONG_WORKER, WORKER_ID, EPOCH, "worker", Remedy.NONE)

    assert pick_challenge([sample, receipt]) is receipt
    assert pick_challenge([sample, receipt, wrong_deal_finding, unprovable]) is wrong_deal_finding
    assert pick_challenge([unprovable]) is None
