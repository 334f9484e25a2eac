"""Gateway receipt verification and worker failover, with fake nodes behind httpx.MockTransport."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eth_account import Account

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.chain.types import OPEN_ENDED_EPOCH, AccessMode, BillingMode, Deal, DealStatus, Worker
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.exceptions import CallRejectedError, ReceiptVerificationError
from cloudless.gateway.chain_view import DealView, WorkerRoute
from cloudless.gateway.dispatch import CallDispatcher
from cloudless.gateway.verify import ReceiptExpectation, verify_call_receipt
from cloudless.node.models import CallBody, CallReply, ErrorInfo, error_envelope
from cloudless.receipts.eip712 import Domain, Receipt, hash_output
from cloudless.receipts.models import SignedReceipt

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
APP_CID = cid_to_bytes(compute_cid(b"package"))
SIGNER_KEYS = {1: account_key(10), 2: account_key(11)}
CURRENT_EPOCH = 7


def make_receipt(output: bytes, *, key: str = SIGNER_KEYS[1], **changes: Any) -> SignedReceipt:
    fields: dict[str, Any] = {
        "worker_id": 1,
        "request_hash": b"\x22" * 32,
        "app_cid": APP_CID,
        "output_hash": hash_output(output),
        "fuel_used": 1234,
        "epoch": CURRENT_EPOCH,
        "sequence": 0,
    }
    fields.update(changes)
    return SignedReceipt.sign(Receipt(**fields), key, DOMAIN)


def expectation(**changes: Any) -> ReceiptExpectation:
    fields: dict[str, Any] = {
        "request_hash": b"\x22" * 32,
        "worker_id": 1,
        "app_cid": APP_CID,
        "signer": Account.from_key(SIGNER_KEYS[1]).address,
        "min_epoch": CURRENT_EPOCH,
        "max_epoch": CURRENT_EPOCH,
    }
    fields.update(changes)
    return ReceiptExpectation(**fields)


# ---------------------------------------------------------------- the verifier


def test_verifier_accepts_genuine_receipt() -> None:
    output = b'{"text":"olleh"}'

    verify_call_receipt(make_receipt(output), output, expectation(), DOMAIN)


TAMPERED: list[tuple[str, Callable[[bytes], tuple[SignedReceipt, bytes, ReceiptExpectation]], str]] = [
    ("output", lambda out: (make_receipt(out), b'{"text":"forged"}', expectation()), "does not match the"),
    ("signer key", lambda out: (make_receipt(out, key=account_key(12)), out, expectation()), "peer signer on chain"),
    (
        "field after signing",
        lambda out: (make_receipt(out).model_copy(update={"fuel_used": 1}), out, expectation()),
        "signature is invalid",
    ),
    (
        "signature bytes",
        lambda out: (
            make_receipt(out).model_copy(update={"signature": make_receipt(b"other").signature}),
            out,
            expectation(),
        ),
        "signature is invalid",
    ),
    ("request hash", lambda out: (make_receipt(out, request_hash=b"\x33" * 32), out, expectation()), "names request"),
    ("worker", lambda out: (make_receipt(out, worker_id=2), out, expectation()), "is for worker 2"),
    (
        "app cid",
        lambda out: (make_receipt(out, app_cid=cid_to_bytes(compute_cid(b"x"))), out, expectation()),
        "names package",
    ),
    ("old epoch", lambda out: (make_receipt(out, epoch=CURRENT_EPOCH - 1), out, expectation()), "outside epochs"),
    ("future epoch", lambda out: (make_receipt(out, epoch=CURRENT_EPOCH + 1), out, expectation()), "outside epochs"),
]


@pytest.mark.parametrize(("case", "build", "message"), TAMPERED, ids=[case for case, _, _ in TAMPERED])
def test_verifier_rejects_tampered_receipt(case: str, build: Any, message: str) -> None:
    receipt, output, expected = build(b'{"text":"olleh"}')

    with pytest.raises(ReceiptVerificationError, match=message):
        verify_call_receipt(receipt, output, expected, DOMAIN)


# -------------------------------------------------------------- the dispatcher


def make_deal() -> Deal:
    return Deal(
        deal_id=5,
        owner="0x" + "44" * 20,
        app_cid=APP_CID,
        payment_token="0x" + "55" * 20,
        max_price_per_cu_per_epoch=10,
        cu_per_worker=1,
        min_workers=1,
        target_workers=2,
        max_workers_per_provider=2,
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
        active_workers=2,
        rate_per_epoch=20,
        balance=1000,
        pending=0,
    )


def make_route(worker_id: int) -> WorkerRoute:
    worker = Worker(
        worker_id=worker_id,
        deal_id=5,
        peer_id=worker_id,
        provider="0x" + "66" * 20,
        price_per_cu_per_epoch=10,
        cus=1,
        joined_epoch=0,
        left_epoch=OPEN_ENDED_EPOCH,
        claimed_until_epoch=0,
        active=True,
    )
    signer = Account.from_key(SIGNER_KEYS[worker_id]).address
    return WorkerRoute(worker=worker, signer=signer, endpoint=f"http://node-{worker_id}.test")


class FakeView:
    """The part of ChainView that the dispatcher uses, with a fixed deal."""

    def __init__(self, status: DealStatus = DealStatus.ACTIVE) -> None:
        self.view = DealView(make_deal(), status, CURRENT_EPOCH, (make_route(1), make_route(2)))
        # None: the deal counts every caller, as a deal without allowed callers does.
        self.allowed_callers: set[str] | None = None

    def caller_allowed(self, deal_id: int, caller: str) -> bool:
        return self.allowed_callers is None or caller in self.allowed_callers

    def deal_exists(self, deal_id: int) -> bool:
        return deal_id == 5

    def deal(self, deal_id: int) -> DealView:
        return self.view

    def current_epoch(self, *, fresh: bool = False) -> int:
        return CURRENT_EPOCH


NodeBehaviour = Callable[[int, CallBody], httpx.Response]


def honest_node(output: bytes = b'{"text":"olleh"}', error: ErrorInfo | None = None) -> NodeBehaviour:
    def respond(worker_id: int, body: CallBody) -> httpx.Response:
        payload = error_envelope(error.kind, error.message) if error else output
        receipt = make_receipt(
            payload, key=SIGNER_KEYS[worker_id], worker_id=worker_id, request_hash=body.request.digest(DOMAIN)
        )
        reply = CallReply(
            ok=error is None,
            output_b64=base64.b64encode(payload).decode(),
            receipt=receipt,
            error=error,
            wall_ms=1.0,
        )
        return httpx.Response(200, json=reply.model_dump(mode="json"))

    return respond


def forging_node(worker_id: int, body: CallBody) -> httpx.Response:
    response = honest_node()(worker_id, body)
    data = response.json()
    data["output_b64"] = base64.b64encode(b'{"text":"forged"}').decode()
    return httpx.Response(200, json=data)


def unavailable_node(worker_id: int, body: CallBody) -> httpx.Response:
    return httpx.Response(503, json={"error": {"kind": "package_unavailable", "message": "not loaded"}})


def make_dispatcher(nodes: dict[int, NodeBehaviour], calls: list[int], view: FakeView | None = None) -> CallDispatcher:
    def handler(request: httpx.Request) -> httpx.Response:
        worker_id = int(request.url.host.removeprefix("node-").removesuffix(".test"))
        calls.append(worker_id)
        return nodes[worker_id](worker_id, CallBody.model_validate(json.loads(request.content)))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return CallDispatcher(view or FakeView(), DOMAIN, account_key(8), client, deadline_seconds=60)  # type: ignore[arg-type]


def test_dispatcher_returns_verified_output() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: honest_node(), 2: honest_node()}, calls)

    reply = dispatcher.call(5, "reverse", b'{"text":"hello"}')

    assert reply.status == 200
    assert reply.body["output"] == {"text": "olleh"}
    assert reply.body["receipt_verified"] is True
    assert reply.body["fuel_used"] == 1234


def test_dispatcher_alternates_workers() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: honest_node(), 2: honest_node()}, calls)

    served = [dispatcher.call(5, "reverse", b"{}").body["worker_id"] for _ in range(4)]

    assert served == [1, 2, 1, 2]


def test_dispatcher_fails_over_on_5xx() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: unavailable_node, 2: honest_node()}, calls)

    reply = dispatcher.call(5, "reverse", b"{}")

    assert reply.status == 200
    assert reply.body["worker_id"] == 2
    assert calls == [1, 2]


def test_dispatcher_skips_forged_receipt() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: forging_node, 2: honest_node()}, calls)

    reply = dispatcher.call(5, "reverse", b"{}")

    assert reply.body["worker_id"] == 2
    assert reply.body["output"] == {"text": "olleh"}


def test_dispatcher_all_forged_is_502() -> None:
    dispatcher = make_dispatcher({1: forging_node, 2: forging_node}, [])

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(5, "reverse", b"{}")

    assert raised.value.status == 502
    assert raised.value.kind == "invalid_receipt"
    assert "worker 1" in str(raised.value)
    assert "worker 2" in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("function_not_found", 404), ("guest_error", 422), ("fuel_exhausted", 422), ("invalid_input", 422), ("trap", 422)],
)
def test_dispatcher_maps_error_kind(kind: str, status: int) -> None:
    error = ErrorInfo(kind=kind, message=f"{kind} happened")
    dispatcher = make_dispatcher({1: honest_node(error=error), 2: honest_node(error=error)}, [])

    reply = dispatcher.call(5, "reverse", b"{}")

    assert reply.status == status
    assert reply.body["error"]["kind"] == kind
    assert reply.body["receipt_verified"] is True


def test_dispatcher_rejects_ended_deal() -> None:
    dispatcher = make_dispatcher({}, [], FakeView(DealStatus.ENDED))

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(5, "reverse", b"{}")

    assert (raised.value.status, raised.value.kind) == (409, "deal_ended")


def test_dispatcher_rejects_deal_without_workers() -> None:
    view = FakeView()
    view.view = dataclasses.replace(view.view, workers=())
    dispatcher = make_dispatcher({}, [], view)

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(5, "reverse", b"{}")

    assert (raised.value.status, raised.value.kind) == (409, "no_active_worker")


def test_dispatcher_rejects_caller_outside_list() -> None:
    view = FakeView()
    view.allowed_callers = {"0x" + "77" * 20}
    calls: list[int] = []
    dispatcher = make_dispatcher({1: honest_node(), 2: honest_node()}, calls, view)

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(5, "reverse", b"{}")

    assert (raised.value.status, raised.value.kind) == (403, "caller_not_allowed")
    assert dispatcher.caller in str(raised.value)
    assert calls == []


def test_dispatcher_unknown_deal_is_404() -> None:
    dispatcher = make_dispatcher({}, [])

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(6, "reverse", b"{}")

    assert (raised.value.status, raised.value.kind) == (404, "deal_not_found")
