"""Which receipt of a replay a fraud proof names, and which epochs it forfeits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudless.receipts.eip712 import Receipt
from cloudless.receipts.models import SignedReceipt
from cloudless.verifier.frauds import equivocation_forfeits, order_equivocation
from verifier_support import APP_CID, DOMAIN, PEER_KEY

REQUEST_HASH = b"\x11" * 32
epochs = st.integers(min_value=0, max_value=2**64 - 1)
workers = st.integers(min_value=1, max_value=50)


def receipt_of(worker_id: int, epoch: int, sequence: int = 0) -> SignedReceipt:
    receipt = Receipt(
        worker_id=worker_id,
        request_hash=REQUEST_HASH,
        app_cid=APP_CID,
        output_hash=b"\x22" * 32,
        fuel_used=1000,
        epoch=epoch,
        sequence=sequence,
    )
    return SignedReceipt.sign(receipt, PEER_KEY, DOMAIN)


@settings(max_examples=40, deadline=None)
@given(worker_id=workers, epoch_a=epochs, epoch_b=epochs)
def test_replay_names_later_epoch(worker_id: int, epoch_a: int, epoch_b: int) -> None:
    a = receipt_of(worker_id, epoch_a, sequence=0)
    b = receipt_of(worker_id, epoch_b, sequence=1)

    first, second = order_equivocation(a, b)

    assert {first, second} == {a, b}
    assert first.epoch == max(epoch_a, epoch_b)
    if epoch_a != epoch_b:
        assert order_equivocation(b, a) == (first, second)
    else:
        assert (first, second) == (a, b)
    assert equivocation_forfeits(first, second) == sorted({epoch_a, epoch_b})


@settings(max_examples=40, deadline=None)
@given(epoch_a=epochs, epoch_b=epochs, copy_is_a=st.booleans())
def test_replay_names_worker_outside_deal(epoch_a: int, epoch_b: int, copy_is_a: bool) -> None:
    """A receipt of a worker outside the request's deal is the copy, whatever the epochs."""
    deals = {1: 10, 2: 20}  # worker id -> deal id
    a = receipt_of(1 if copy_is_a else 2, epoch_a)
    b = receipt_of(2 if copy_is_a else 1, epoch_b)
    copy = a if copy_is_a else b

    first, second = order_equivocation(a, b, request_deal_id=20, deal_of=deals.__getitem__)

    assert first == copy
    assert order_equivocation(b, a, request_deal_id=20, deal_of=deals.__getitem__)[0] == copy
    # The second receipt is of another worker, so only the copy's epoch is forfeited.
    assert equivocation_forfeits(first, second) == [copy.epoch]


def test_unknown_request_deal_orders_by_epoch() -> None:
    deals = {1: 10, 2: 20}
    original = receipt_of(1, 3)
    copy = receipt_of(2, 4)

    assert order_equivocation(original, copy, deal_of=deals.__getitem__) == (copy, original)
    # Both workers outside the request's deal: the epoch decides.
    assert order_equivocation(original, copy, request_deal_id=30, deal_of=deals.__getitem__) == (copy, original)
    assert order_equivocation(copy, original, request_deal_id=10, deal_of=deals.__getitem__) == (copy, original)
