"""Replicated calls without a network: worker choice, tie-breakers, majorities and the replies built from them.

Every receipt here is signed with a real peer key and checked with the
gateway's own receipt verifier before it enters a plan, as the dispatcher does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.chain.types import OPEN_ENDED_EPOCH, AccessMode, BillingMode, Deal, DealStatus, Worker
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.exceptions import CallRejectedError, ReceiptVerificationError
from cloudless.gateway.chain_view import DealView, WorkerRoute
from cloudless.gateway.evidence import EvidenceLog
from cloudless.gateway.models import CallSuccess
from cloudless.gateway.replies import GatewayReply, replication_unavailable, settle_verdict
from cloudless.gateway.replication import (
    Replica,
    ReplicationPlan,
    Verdict,
    VerdictKind,
    WorkerFailure,
    decide,
    serving_providers,
)
from cloudless.gateway.verify import ReceiptExpectation, verify_call_receipt
from cloudless.gateway.worker_calls import SignedCall, WorkerResult
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
APP_CID = cid_to_bytes(compute_cid(b"package"))
DEAL_ID = 5
EPOCH = 7
CALLER_KEY = account_key(8)
# Peer signer keys: worker N signs with account 10 + N - 1, so up to 10 workers.
MAX_WORKERS = 10
INPUT = b'{"text":"hello"}'
GOOD_OUTPUT = b'{"text":"olleh"}'
WRONG_OUTPUT = b'{"text":"wrong"}'
FUEL = 1234


def provider_address(index: int) -> str:
    return Account.from_key(account_key(index + 1)).address


def signer_key(worker_id: int) -> str:
    return account_key(9 + worker_id)


def make_route(worker_id: int, provider_index: int) -> WorkerRoute:
    worker = Worker(
        worker_id=worker_id,
        deal_id=DEAL_ID,
        peer_id=worker_id,
        provider=provider_address(provider_index),
        price_per_cu_per_epoch=10,
        cus=1,
        joined_epoch=0,
        left_epoch=OPEN_ENDED_EPOCH,
        claimed_until_epoch=0,
        active=True,
    )
    signer = Account.from_key(signer_key(worker_id)).address
    return WorkerRoute(worker=worker, signer=signer, endpoint=f"http://provider-{provider_index}.test")


def routes_for(providers: Sequence[int]) -> list[WorkerRoute]:
    """One route per entry, worker ids from 1, each on the provider the entry names."""
    return [make_route(worker_id, provider) for worker_id, provider in enumerate(providers, start=1)]


def make_deal_view(routes: Sequence[WorkerRoute], replication: int) -> DealView:
    deal = Deal(
        deal_id=DEAL_ID,
        owner="0x" + "44" * 20,
        app_cid=APP_CID,
        payment_token="0x" + "55" * 20,
        max_price_per_cu_per_epoch=10,
        cu_per_worker=1,
        min_workers=1,
        target_workers=len(routes),
        max_workers_per_provider=1,
        regions=(),
        min_tier=0,
        min_sla_bps=0,
        access_mode=AccessMode.NONE,
        providers=(),
        billing_mode=BillingMode.SUBSCRIPTION,
        start_epoch=0,
        end_epoch=OPEN_ENDED_EPOCH,
        settled_epoch=0,
        stopped=False,
        active_workers=len(routes),
        rate_per_epoch=10,
        balance=1000,
        pending=0,
    )
    return DealView(deal, DealStatus.ACTIVE, EPOCH, tuple(routes), replication)


def make_call(routes: Sequence[WorkerRoute], replication: int) -> SignedCall:
    request = CallRequest.for_input(
        deal_id=DEAL_ID, function_name="reverse", input=INPUT, nonce=42, deadline=2_000_000_000
    )
    signed = SignedCallRequest.sign(request, CALLER_KEY, DOMAIN)
    payload = {"request": signed.to_dict(), "input_b64": base64.b64encode(INPUT).decode()}
    return SignedCall(make_deal_view(routes, replication), "reverse", INPUT, signed, signed.digest(DOMAIN), payload)


CALL = make_call(routes_for([0]), 1)
DIGEST = CALL.digest


def sign_receipt(route: WorkerRoute, output: bytes, fuel: int, *, key: str | None = None) -> SignedReceipt:
    receipt = Receipt(
        worker_id=route.worker_id,
        request_hash=DIGEST,
        app_cid=APP_CID,
        output_hash=hash_output(output),
        fuel_used=fuel,
        epoch=EPOCH,
        sequence=0,
    )
    return SignedReceipt.sign(receipt, key or signer_key(route.worker_id), DOMAIN)


def expectation(route: WorkerRoute) -> ReceiptExpectation:
    return ReceiptExpectation(
        request_hash=DIGEST,
        worker_id=route.worker_id,
        app_cid=APP_CID,
        signer=route.signer,
        min_epoch=EPOCH,
        max_epoch=EPOCH,
    )


def verified_replica(route: WorkerRoute, output: bytes = GOOD_OUTPUT, fuel: int = FUEL) -> Replica[WorkerResult]:
    """Sign a receipt as the worker's peer, verify it as the gateway does, and wrap it as a Replica."""
    receipt = sign_receipt(route, output, fuel)
    verify_call_receipt(receipt, output, expectation(route), DOMAIN)
    success = CallSuccess(
        deal_id=DEAL_ID,
        function="reverse",
        worker_id=route.worker_id,
        output=json.loads(output),
        receipt=receipt,
        receipt_verified=True,
        fuel_used=fuel,
    )
    return Replica(route, receipt, WorkerResult(200, success))


def failure(route: WorkerRoute, *, busy: bool = False) -> WorkerFailure:
    return WorkerFailure(route, "node busy" if busy else "connection refused", busy=busy)


# ------------------------------------------------------------------ decide


def test_decide_agreement_of_k_providers() -> None:
    routes = routes_for([0, 1, 2])

    verdict = decide([verified_replica(route) for route in routes], 3)

    assert verdict.kind is VerdictKind.AGREED
    assert [replica.route.worker_id for replica in verdict.backing] == [1, 2, 3]
    assert verdict.outvoted == ()
    assert not verdict.disagreement


def test_decide_counts_a_provider_once() -> None:
    # Workers 1 and 2 share provider 0, so two agreeing receipts are one provider's word.
    routes = routes_for([0, 0])

    verdict = decide([verified_replica(route) for route in routes], 2)

    assert verdict.kind is VerdictKind.SHORT
    assert not verdict.has_result


def test_decide_majority_needs_distinct_providers() -> None:
    # Two agreeing receipts of provider 0 against one of provider 1: one provider each way.
    one, two, three = routes_for([0, 0, 1])
    replicas = [verified_replica(one), verified_replica(two), verified_replica(three, WRONG_OUTPUT)]

    verdict = decide(replicas, 2)

    assert verdict.kind is VerdictKind.DISAGREED


def test_decide_majority_after_tie_breaker() -> None:
    first, second, tie_breaker = routes_for([0, 1, 2])
    replicas = [verified_replica(first), verified_replica(second, WRONG_OUTPUT), verified_replica(tie_breaker)]

    verdict = decide(replicas, 2)

    assert verdict.kind is VerdictKind.MAJORITY
    assert [replica.route.worker_id for replica in verdict.backing] == [1, 3]
    assert [replica.route.worker_id for replica in verdict.outvoted] == [2]
    assert verdict.disagreement


def test_decide_fuel_difference_is_disagreement() -> None:
    first, second = routes_for([0, 1])

    verdict = decide([verified_replica(first), verified_replica(second, fuel=FUEL + 1)], 2)

    assert verdict.kind is VerdictKind.DISAGREED
    assert verdict.disagreement


def test_decide_tie_has_no_majority() -> None:
    routes = routes_for([0, 1, 2, 3])
    outputs = [GOOD_OUTPUT, WRONG_OUTPUT, GOOD_OUTPUT, WRONG_OUTPUT]

    verdict = decide([verified_replica(route, output) for route, output in zip(routes, outputs)], 3)

    assert verdict.kind is VerdictKind.DISAGREED


def test_decide_two_of_three_is_majority() -> None:
    routes = routes_for([0, 1, 2])
    outputs = [GOOD_OUTPUT, WRONG_OUTPUT, GOOD_OUTPUT]

    verdict = decide([verified_replica(route, output) for route, output in zip(routes, outputs)], 3)

    assert verdict.kind is VerdictKind.MAJORITY
    assert len(verdict.backing) == 2


def test_decide_rejects_replication_zero() -> None:
    with pytest.raises(ValueError, match="replication must be at least 1, got 0"):
        decide([], 0)


# -------------------------------------------------------------------- plan


def test_plan_starts_one_worker_per_provider() -> None:
    # Workers 1 and 2 are on provider 0, worker 3 on provider 1, worker 4 on provider 2.
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 0, 1, 2]), 2)

    started = plan.start()

    assert [route.worker_id for route in started] == [1, 3]


def test_plan_replaces_failure_with_other_provider() -> None:
    routes = routes_for([0, 0, 1, 2])
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes, 2)
    first, second = plan.start()

    replacement = plan.failed(failure(first, busy=True))

    # Worker 2 shares the busy worker's provider and node, so worker 4 of provider 2 replaces it.
    assert [route.worker_id for route in replacement] == [4]


def test_plan_agreement_needs_no_tie_breaker() -> None:
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 1, 2]), 2)
    first, second = plan.start()

    assert plan.succeeded(verified_replica(first)) == []
    assert plan.succeeded(verified_replica(second)) == []
    verdict = plan.verdict()

    assert verdict.kind is VerdictKind.AGREED
    assert not verdict.tie_breaker_sent


def test_plan_tie_breaker_waits_for_all_k() -> None:
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 1, 2, 3]), 3)
    first, second, third = plan.start()

    assert plan.succeeded(verified_replica(first)) == []
    assert plan.succeeded(verified_replica(second, WRONG_OUTPUT)) == []
    tie_breaker = plan.succeeded(verified_replica(third))

    assert [route.worker_id for route in tie_breaker] == [4]
    assert plan.succeeded(verified_replica(tie_breaker[0])) == []
    verdict = plan.verdict()
    assert verdict.kind is VerdictKind.MAJORITY
    assert verdict.tie_breaker_sent
    assert [replica.route.worker_id for replica in verdict.backing] == [1, 3, 4]


def test_plan_replaces_failed_tie_breaker() -> None:
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 1, 2, 3]), 2)
    first, second = plan.start()
    plan.succeeded(verified_replica(first))
    (tie_breaker,) = plan.succeeded(verified_replica(second, WRONG_OUTPUT))

    (replacement,) = plan.failed(failure(tie_breaker))

    assert (tie_breaker.worker_id, replacement.worker_id) == (3, 4)
    assert plan.succeeded(verified_replica(replacement, WRONG_OUTPUT)) == []
    verdict = plan.verdict()
    assert verdict.kind is VerdictKind.MAJORITY
    assert [replica.route.worker_id for replica in verdict.backing] == [2, 4]


def test_plan_without_spare_provider_disagrees() -> None:
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 1]), 2)
    first, second = plan.start()
    plan.succeeded(verified_replica(first))

    assert plan.succeeded(verified_replica(second, WRONG_OUTPUT)) == []
    verdict = plan.verdict()
    assert verdict.kind is VerdictKind.DISAGREED
    assert not verdict.tie_breaker_sent


def test_plan_verdict_waits_for_replies() -> None:
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes_for([0, 1]), 2)
    plan.start()

    with pytest.raises(RuntimeError, match="2 replies are still in flight"):
        plan.verdict()


# ---------------------------------------------------------------- replies


def test_settle_agreement_lists_every_receipt() -> None:
    routes = routes_for([0, 1])
    call = make_call(routes, 2)
    evidence = EvidenceLog()

    reply = settle_verdict(call, decide([verified_replica(route) for route in routes], 2), evidence)

    assert reply.status == 200
    assert reply.body["output"] == {"text": "olleh"}
    assert reply.body["replication"] == 2
    assert [receipt["worker_id"] for receipt in reply.body["receipts"]] == [1, 2]
    assert reply.body["receipt"] == reply.body["receipts"][0]
    assert reply.body["outvoted_receipts"] == []
    assert reply.body["evidence_id"] is None
    assert len(evidence) == 0


def test_settle_majority_records_evidence() -> None:
    routes = routes_for([0, 1, 2])
    call = make_call(routes, 2)
    evidence = EvidenceLog()
    replicas = [verified_replica(routes[0]), verified_replica(routes[1], WRONG_OUTPUT), verified_replica(routes[2])]

    reply = settle_verdict(call, decide(replicas, 2, tie_breaker_sent=True), evidence)

    assert reply.status == 200
    assert [receipt["worker_id"] for receipt in reply.body["receipts"]] == [1, 3]
    assert [receipt["worker_id"] for receipt in reply.body["outvoted_receipts"]] == [2]
    assert reply.body["evidence_id"] == 0
    item = evidence.page(0).items[0].model_dump(mode="json")
    assert item["kind"] == "disagreement"
    assert item["deal_id"] == DEAL_ID
    assert item["function"] == "reverse"
    assert item["request"] == call.request.to_dict()
    assert base64.b64decode(item["input"]) == INPUT
    assert item["receipts"] == [replica.receipt.to_dict() for replica in replicas]


def test_settle_disagreement_is_502_naming_workers() -> None:
    routes = routes_for([0, 1])
    call = make_call(routes, 2)
    evidence = EvidenceLog()
    replicas = [verified_replica(routes[0]), verified_replica(routes[1], WRONG_OUTPUT)]

    reply = settle_verdict(call, decide(replicas, 2), evidence)

    assert reply.status == 502
    error = reply.body["error"]
    assert error["kind"] == "replicas_disagree"
    assert "worker 1 of provider" in error["message"]
    assert "worker 2 of provider" in error["message"]
    assert "0x" + hash_output(GOOD_OUTPUT).hex() in error["message"]
    assert "0x" + hash_output(WRONG_OUTPUT).hex() in error["message"]
    assert "no other provider was left for a tie-breaker" in error["message"]
    assert [receipt["worker_id"] for receipt in reply.body["receipts"]] == [1, 2]
    assert reply.body["evidence_id"] == 0
    assert len(evidence) == 1


def test_settle_short_of_busy_workers_is_busy() -> None:
    routes = routes_for([0, 1, 2])
    call = make_call(routes, 3)
    verdict = decide([verified_replica(routes[0])], 3, [failure(routes[1], busy=True), failure(routes[2], busy=True)])

    with pytest.raises(CallRejectedError) as raised:
        settle_verdict(call, verdict, EvidenceLog())

    assert (raised.value.status, raised.value.kind) == (503, "busy")
    assert "replication 3, but only 1 provider returned a verified receipt" in str(raised.value)


def test_settle_short_of_failed_workers_is_502() -> None:
    routes = routes_for([0, 1])
    call = make_call(routes, 2)
    verdict = decide([verified_replica(routes[0])], 2, [failure(routes[1])])

    with pytest.raises(CallRejectedError) as raised:
        settle_verdict(call, verdict, EvidenceLog())

    assert (raised.value.status, raised.value.kind) == (502, "workers_unavailable")
    assert "worker 2: connection refused" in str(raised.value)


def test_settle_keeps_result_when_evidence_write_fails(tmp_path: Any) -> None:
    routes = routes_for([0, 1, 2])
    call = make_call(routes, 2)
    evidence = EvidenceLog(tmp_path / "gone" / "evidence.jsonl")
    (tmp_path / "gone").rmdir()
    replicas = [verified_replica(routes[0]), verified_replica(routes[1], WRONG_OUTPUT), verified_replica(routes[2])]

    reply = settle_verdict(call, decide(replicas, 2), evidence)

    assert reply.status == 200
    assert reply.body["evidence_id"] is None


def test_replication_unavailable_names_k_and_providers() -> None:
    routes = routes_for([0, 0, 1])

    error = replication_unavailable(DEAL_ID, 3, serving_providers(routes))

    assert (error.status, error.kind) == (503, "replication_unavailable")
    message = str(error)
    assert "deal 5 has replication 3" in message
    assert "on 2 providers" in message
    assert f"{provider_address(0)}: workers 1, 2" in message
    assert f"{provider_address(1)}: worker 3" in message
    assert "`cloudless deal replication 5 2`" in message


# ----------------------------------------------------- property: any replies

BEHAVIOURS = ("honest", "honest", "wrong_output", "wrong_fuel", "forged", "busy", "down")


@dataclass
class Run:
    """What happened in one simulated call."""

    launched: list[WorkerRoute] = field(default_factory=list)
    verified: list[SignedReceipt] = field(default_factory=list)
    max_in_flight: int = 0


def reply_of(route: WorkerRoute, behaviour: str) -> Replica[WorkerResult] | WorkerFailure:
    """Act as the worker's node, then check its receipt as the gateway does."""
    if behaviour in ("busy", "down"):
        return failure(route, busy=behaviour == "busy")
    output = WRONG_OUTPUT if behaviour == "wrong_output" else GOOD_OUTPUT
    fuel = FUEL + 1 if behaviour == "wrong_fuel" else FUEL
    if behaviour == "forged":
        # Signed by a key that is not the worker's peer signer on chain.
        receipt = sign_receipt(route, output, fuel, key=account_key(0))
        try:
            verify_call_receipt(receipt, output, expectation(route), DOMAIN)
        except ReceiptVerificationError as error:
            return WorkerFailure(route, str(error), bad_receipt=True)
        raise AssertionError("a receipt signed by another key passed verification")
    return verified_replica(route, output, fuel)


def simulate(
    routes: list[WorkerRoute], replication: int, behaviours: dict[int, str], data: st.DataObject
) -> tuple[Verdict[WorkerResult], Run]:
    """Drive a plan to its verdict, with replies landing in an order that hypothesis picks."""
    plan: ReplicationPlan[WorkerResult] = ReplicationPlan(routes, replication)
    run = Run()
    in_flight = plan.start()
    run.launched.extend(in_flight)
    while in_flight:
        run.max_in_flight = max(run.max_in_flight, len(in_flight))
        route = in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="lands next"))
        outcome = reply_of(route, behaviours[route.worker_id])
        if isinstance(outcome, WorkerFailure):
            more = plan.failed(outcome)
        else:
            run.verified.append(outcome.receipt)
            more = plan.succeeded(outcome)
        run.launched.extend(more)
        in_flight.extend(more)
    return plan.verdict(), run


def provider_of(routes: list[WorkerRoute], worker_id: int) -> str:
    return next(route.worker.provider for route in routes if route.worker_id == worker_id)


def check_result_is_backed(reply: GatewayReply, routes: list[WorkerRoute], replication: int, run: Run) -> None:
    """The rule: a result needs k agreeing verified receipts of distinct providers, or a strict majority of at least 2."""
    receipts = [SignedReceipt.from_dict(receipt) for receipt in reply.body["receipts"]]
    for receipt in receipts:
        route = next(route for route in routes if route.worker_id == receipt.worker_id)
        verify_call_receipt(receipt, GOOD_OUTPUT if receipt.output_hash == hash_output(GOOD_OUTPUT) else WRONG_OUTPUT, expectation(route), DOMAIN)
    providers = {provider_of(routes, receipt.worker_id) for receipt in receipts}
    outcomes = {(receipt.output_hash, receipt.fuel_used) for receipt in receipts}
    verified_providers = {provider_of(routes, receipt.worker_id) for receipt in run.verified}
    verified_outcomes = {(receipt.output_hash, receipt.fuel_used) for receipt in run.verified}
    assert len(providers) == len(receipts), "two backing receipts share a provider"
    assert len(outcomes) == 1, "backing receipts disagree"
    assert SignedReceipt.from_dict(reply.body["receipt"]) == receipts[0]
    assert len(verified_providers) >= replication
    if len(verified_outcomes) == 1:
        assert len(receipts) >= replication
    else:
        assert len(receipts) >= 2
        assert 2 * len(receipts) > len(verified_providers)


@st.composite
def deal_layouts(draw: st.DrawFn) -> tuple[list[int], int]:
    """Draw a replication k and workers on one provider fewer than k up to two more, each provider with a worker."""
    replication = draw(st.integers(1, 5), label="replication")
    provider_count = draw(st.integers(max(1, replication - 1), min(5, replication + 2)), label="providers")
    extra = draw(st.lists(st.integers(0, provider_count - 1), max_size=MAX_WORKERS - provider_count), label="extra workers")
    providers = draw(st.permutations(list(range(provider_count)) + extra), label="worker order")
    return providers, replication


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=deal_layouts(),
    behaviour_list=st.lists(st.sampled_from(BEHAVIOURS), min_size=MAX_WORKERS, max_size=MAX_WORKERS),
    data=st.data(),
)
def test_any_replies_never_return_unbacked_result(
    layout: tuple[list[int], int], behaviour_list: list[str], data: st.DataObject
) -> None:
    providers, replication = layout
    routes = routes_for(providers)
    behaviours = {route.worker_id: behaviour_list[route.worker_id - 1] for route in routes}
    call = make_call(routes, replication)
    evidence = EvidenceLog()

    verdict, run = simulate(routes, replication, behaviours, data)

    launched_providers = [route.worker.provider for route in run.launched]
    assert len(set(launched_providers)) == len(launched_providers), "a provider got the request twice"
    assert run.max_in_flight <= replication
    try:
        reply = settle_verdict(call, verdict, evidence)
    except CallRejectedError as error:
        assert error.status in (502, 503)
        assert len({provider_of(routes, receipt.worker_id) for receipt in run.verified}) < replication
        reply = None
    if reply is not None and reply.status == 200:
        check_result_is_backed(reply, routes, replication, run)
    elif reply is not None:
        assert reply.body["error"]["kind"] == "replicas_disagree"

    disagreement = len({(receipt.output_hash, receipt.fuel_used) for receipt in run.verified}) > 1
    assert len(evidence) == (1 if disagreement else 0)
    if disagreement:
        assert evidence.page(0).items[0].receipts == run.verified
    unasked = set(serving_providers(routes)) - {route.worker.provider.lower() for route in run.launched}
    if verdict.kind in (VerdictKind.MAJORITY, VerdictKind.DISAGREED) and unasked:
        # A provider was left, so the disagreement got its tie-breaker receipt.
        assert verdict.tie_breaker_sent
        assert len(run.verified) == replication + 1


@settings(max_examples=50, deadline=None)
@given(layout=deal_layouts(), data=st.data())
def test_honest_workers_agree_when_enough_providers(layout: tuple[list[int], int], data: st.DataObject) -> None:
    providers, replication = layout
    routes = routes_for(providers)
    behaviours = {route.worker_id: "honest" for route in routes}

    verdict, run = simulate(routes, replication, behaviours, data)

    if len(set(providers)) >= replication:
        assert verdict.kind is VerdictKind.AGREED
        assert len(verdict.backing) == replication
        assert len(run.launched) == replication
    else:
        assert verdict.kind is VerdictKind.SHORT
