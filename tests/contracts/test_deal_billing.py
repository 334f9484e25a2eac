"""DealManager settlement, status, deposit, withdraw, setAppCid, stopDeal and exitWorker."""

import ape
import pytest

from contract_helpers import (
    MIN_DEPOSITED_EPOCHS,
    PRICE,
    UINT64_MAX,
    USDC,
    Status,
    events,
)
from revert_checks import assert_call_reverts

WORKER_RATE = 2 * PRICE
"""Rate of one worker with the default 2 CUs per worker at the default price."""
RESERVE = PRICE * 2 * 2 * MIN_DEPOSITED_EPOCHS
"""Reserve of a default deal: cap x 2 CUs x 2 target workers x 2 epochs."""
APP_CID = b"\x01\x55\x12\x20" + b"\x07" * 32
"""A valid appCid for setAppCid: CIDv1, raw codec, sha2-256 digest of 32 bytes."""


def _unfunded(deal_manager, deal_id):
    return [(span.start, span.end) for span in deal_manager.unfundedSpans(deal_id)]


# ------------------------------------------------------------------ settlement


def test_settle_charges_rate_per_epoch(build, deal_manager, provider, developer, clock):
    deal_id, _, _ = build.matched_deal(provider)
    start = deal_manager.getDeal(deal_id).settledEpoch
    clock.advance(3)

    receipt = deal_manager.deposit(deal_id, 1, sender=developer)

    [settled] = events(receipt, deal_manager.DealSettled)
    assert (settled.fromEpoch, settled.toEpoch, settled.fundedEpochs) == (start, start + 3, 3)
    assert settled.charged == 3 * WORKER_RATE
    deal = deal_manager.getDeal(deal_id)
    assert deal.balance == 100 * USDC - 3 * WORKER_RATE + 1
    assert deal.pending == 3 * WORKER_RATE
    assert deal.settledEpoch == start + 3
    assert _unfunded(deal_manager, deal_id) == []
    assert deal_manager.fundedUntilEpoch(deal_id) == start + 3 + deal.balance // WORKER_RATE


def test_settle_merges_contiguous_spans(build, deal_manager, provider, developer, clock):
    # The reserve pays four epochs of one worker, and a top-up of 1 pays none.
    deal_id, _, _ = build.matched_deal(provider, deposit=RESERVE)
    start = deal_manager.getDeal(deal_id).settledEpoch

    clock.advance(5)
    deal_manager.deposit(deal_id, 1, sender=developer)
    assert _unfunded(deal_manager, deal_id) == [(start + 4, start + 5)]
    clock.advance(2)
    deal_manager.deposit(deal_id, 1, sender=developer)

    assert _unfunded(deal_manager, deal_id) == [(start + 4, start + 7)]


def test_settle_is_idempotent_within_epoch(build, deal_manager, provider, developer, clock):
    deal_id, _, _ = build.matched_deal(provider)
    clock.advance(1)
    deal_manager.deposit(deal_id, 1, sender=developer)

    receipt = deal_manager.deposit(deal_id, 1, sender=developer)

    assert events(receipt, deal_manager.DealSettled) == []
    assert deal_manager.getDeal(deal_id).pending == WORKER_RATE


def test_settle_skips_unfunded_epochs_for_good(build, deal_manager, provider, developer, clock):
    # The reserve pays four epochs of one worker.
    deal_id, _, _ = build.matched_deal(provider, deposit=RESERVE)
    start = deal_manager.getDeal(deal_id).settledEpoch
    clock.advance(6)
    assert deal_manager.dealStatus(deal_id) == Status.INSUFFICIENT_FUNDS
    assert deal_manager.dealBalance(deal_id) == 0
    assert deal_manager.fundedUntilEpoch(deal_id) == start + 6

    receipt = deal_manager.deposit(deal_id, 2 * WORKER_RATE, sender=developer)

    [settled] = events(receipt, deal_manager.DealSettled)
    assert (settled.fromEpoch, settled.toEpoch, settled.fundedEpochs) == (start, start + 6, 4)
    assert settled.charged == 4 * WORKER_RATE
    assert deal_manager.getDeal(deal_id).balance == 2 * WORKER_RATE
    assert _unfunded(deal_manager, deal_id) == [(start + 4, start + 6)]

    # The top-up funds epochs from the current one on, never the two missed ones.
    assert deal_manager.fundedUntilEpoch(deal_id) == start + 8
    clock.advance(1)
    deal_manager.deposit(deal_id, 1, sender=developer)
    assert _unfunded(deal_manager, deal_id) == [(start + 4, start + 6)]
    assert deal_manager.getDeal(deal_id).pending == 5 * WORKER_RATE

    # The balance left, one epoch's rate plus 1, pays epoch start + 7 only.
    clock.advance(3)
    deal_manager.deposit(deal_id, 1, sender=developer)
    assert _unfunded(deal_manager, deal_id) == [(start + 4, start + 6), (start + 8, start + 10)]
    assert deal_manager.getDeal(deal_id).pending == 6 * WORKER_RATE


def test_settle_without_workers_charges_nothing(build, deal_manager, developer, clock):
    deal_id = build.deal()
    start = deal_manager.getDeal(deal_id).settledEpoch
    clock.advance(2)

    receipt = deal_manager.deposit(deal_id, 1, sender=developer)

    [settled] = events(receipt, deal_manager.DealSettled)
    assert (settled.fromEpoch, settled.toEpoch, settled.fundedEpochs, settled.charged) == (start, start + 2, 0, 0)
    # Epochs without billed workers are neither charged nor unfunded.
    assert _unfunded(deal_manager, deal_id) == []
    assert deal_manager.getDeal(deal_id).settledEpoch == start + 2
    assert deal_manager.fundedUntilEpoch(deal_id) == UINT64_MAX


def test_settle_stops_at_end_epoch(build, deal_manager, provider, developer, clock):
    deal_id, _, _ = build.matched_deal(provider, durationEpochs=3)
    deal = deal_manager.getDeal(deal_id)
    clock.advance(6)

    receipt = deal_manager.withdraw(deal_id, 1, sender=developer)

    [settled] = events(receipt, deal_manager.DealSettled)
    assert (settled.fromEpoch, settled.toEpoch, settled.fundedEpochs) == (deal.startEpoch, deal.endEpoch, 3)
    assert deal_manager.getDeal(deal_id).pending == 3 * WORKER_RATE


def test_deal_balance_view_does_not_write(build, deal_manager, provider, clock):
    deal_id, _, _ = build.matched_deal(provider)
    stored = deal_manager.getDeal(deal_id)
    clock.advance(3)

    assert deal_manager.dealBalance(deal_id) == stored.balance - 3 * WORKER_RATE
    after = deal_manager.getDeal(deal_id)
    assert (after.balance, after.settledEpoch, after.pending) == (stored.balance, stored.settledEpoch, 0)


# ---------------------------------------------------------------------- status


def test_deal_status_follows_workers_funds_and_end(build, deal_manager, provider, clock):
    _, [peer_id] = build.offer(provider)
    deal_id = build.deal(durationEpochs=10, deposit=RESERVE)
    assert deal_manager.dealStatus(deal_id) == Status.NOT_ENOUGH_WORKERS

    build.match(deal_id, [peer_id])
    assert deal_manager.dealStatus(deal_id) == Status.ACTIVE

    clock.advance(4)
    assert deal_manager.dealStatus(deal_id) == Status.INSUFFICIENT_FUNDS

    clock.advance(6)
    assert deal_manager.dealStatus(deal_id) == Status.ENDED


def test_deal_status_counts_min_workers(build, deal_manager, provider):
    deal_id, _, _ = build.matched_deal(provider, minWorkers=2, targetWorkers=2)

    assert deal_manager.getDeal(deal_id).activeWorkers == 1
    assert deal_manager.dealStatus(deal_id) == Status.NOT_ENOUGH_WORKERS


# --------------------------------------------------------------------- deposit


def test_deposit_by_anyone_adds_balance(build, deal_manager, usdc, stranger):
    deal_id = build.deal()
    wallet = usdc.balanceOf(stranger)

    receipt = deal_manager.deposit(deal_id, 5 * USDC, sender=stranger)

    assert deal_manager.getDeal(deal_id).balance == 105 * USDC
    assert usdc.balanceOf(stranger) == wallet - 5 * USDC
    [log] = events(receipt, deal_manager.DealDeposited)
    assert (log["from"], log.amount, log.balance) == (stranger, 5 * USDC, 105 * USDC)


def test_deposit_rejects_zero(build, deal_manager, developer):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealZeroAmount):
        deal_manager.deposit(deal_id, 0, sender=developer)


def test_deposit_rejects_ended_deal(build, deal_manager, developer, clock):
    deal_id = build.deal(durationEpochs=2)
    clock.advance(2)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.deposit(deal_id, 1, sender=developer)


def test_deposit_rejects_balance_over_uint128(build, deal_manager, stranger):
    deal_id = build.deal()
    balance = deal_manager.getDeal(deal_id).balance

    with ape.reverts(deal_manager.DealInvalidParams, field="amount"):
        deal_manager.deposit(deal_id, 2**128 - balance, sender=stranger)


def test_deposit_rejects_unknown_deal(deal_manager, developer):
    with ape.reverts(deal_manager.DealNotFound, dealId=4):
        deal_manager.deposit(4, 1, sender=developer)


# -------------------------------------------------------------------- withdraw


def test_withdraw_keeps_reserve(build, deal_manager, usdc, developer):
    deal_id = build.deal(deposit=10 * USDC)
    available = 10 * USDC - RESERVE
    assert deal_manager.reserveOf(deal_id) == RESERVE
    assert deal_manager.withdrawable(deal_id) == available
    wallet = usdc.balanceOf(developer)

    receipt = deal_manager.withdraw(deal_id, available, sender=developer)

    assert usdc.balanceOf(developer) == wallet + available
    assert deal_manager.getDeal(deal_id).balance == RESERVE
    [log] = events(receipt, deal_manager.DealWithdrawn)
    assert (log.to, log.amount, log.balance) == (developer, available, RESERVE)
    with ape.reverts(deal_manager.DealWithdrawBelowReserve, dealId=deal_id, amount=1, withdrawable=0):
        deal_manager.withdraw(deal_id, 1, sender=developer)


def test_withdraw_rejects_more_than_withdrawable(build, deal_manager, developer):
    deal_id = build.deal(deposit=10 * USDC)
    available = 10 * USDC - RESERVE

    with ape.reverts(deal_manager.DealWithdrawBelowReserve, amount=available + 1, withdrawable=available):
        deal_manager.withdraw(deal_id, available + 1, sender=developer)


def test_withdraw_reserve_shrinks_near_end(build, deal_manager, developer, clock):
    deal_id = build.deal(durationEpochs=3, deposit=10 * USDC)
    clock.advance(2)

    one_epoch = PRICE * 2 * 2
    assert deal_manager.reserveOf(deal_id) == one_epoch
    deal_manager.withdraw(deal_id, 10 * USDC - one_epoch, sender=developer)

    assert deal_manager.getDeal(deal_id).balance == one_epoch


def test_withdraw_after_end_returns_whole_balance(build, deal_manager, provider, developer, clock):
    deal_id, _, _ = build.matched_deal(provider, durationEpochs=2, deposit=10 * USDC)
    clock.advance(3)
    balance = 10 * USDC - 2 * WORKER_RATE
    assert deal_manager.reserveOf(deal_id) == 0
    assert deal_manager.withdrawable(deal_id) == balance

    deal_manager.withdraw(deal_id, balance, sender=developer)

    deal = deal_manager.getDeal(deal_id)
    assert deal.balance == 0
    assert deal.pending == 2 * WORKER_RATE


def test_withdraw_after_stop_keeps_last_epoch(build, deal_manager, provider, developer):
    deal_id, _, _ = build.matched_deal(provider, deposit=10 * USDC)
    deal_manager.stopDeal(deal_id, sender=developer)

    assert deal_manager.reserveOf(deal_id) == WORKER_RATE
    assert deal_manager.withdrawable(deal_id) == 10 * USDC - WORKER_RATE
    deal_manager.withdraw(deal_id, 10 * USDC - WORKER_RATE, sender=developer)

    with ape.reverts(deal_manager.DealWithdrawBelowReserve, withdrawable=0):
        deal_manager.withdraw(deal_id, 1, sender=developer)


def test_withdraw_rejects_non_owner(build, deal_manager, stranger):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealNotOwner, dealId=deal_id, caller=stranger.address):
        deal_manager.withdraw(deal_id, 1, sender=stranger)


def test_withdraw_rejects_zero(build, deal_manager, developer):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealZeroAmount):
        deal_manager.withdraw(deal_id, 0, sender=developer)


# ------------------------------------------------------------------- setAppCid


def test_set_app_cid_changes_cid(build, deal_manager, developer):
    deal_id = build.deal()

    receipt = deal_manager.setAppCid(deal_id, APP_CID, sender=developer)

    assert deal_manager.getDeal(deal_id).appCid == APP_CID
    [log] = events(receipt, deal_manager.DealAppCidChanged)
    assert (log.dealId, log.appCid) == (deal_id, APP_CID)


@pytest.mark.parametrize(
    "app_cid",
    [
        b"",
        APP_CID[:-1],
        APP_CID + b"\x00",
        b"\x00" + APP_CID[1:],
        APP_CID[:2] + b"\x13" + APP_CID[3:],
        APP_CID[:3] + b"\x1f" + APP_CID[4:],
    ],
    ids=["empty", "short", "long", "version", "hash-code", "digest-length"],
)
def test_set_app_cid_rejects_invalid_cid(build, deal_manager, developer, app_cid):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealInvalidParams, field="appCid"):
        deal_manager.setAppCid(deal_id, app_cid, sender=developer)


def test_set_app_cid_rejects_non_owner(build, deal_manager, stranger):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealNotOwner, dealId=deal_id, caller=stranger.address):
        deal_manager.setAppCid(deal_id, APP_CID, sender=stranger)


def test_set_app_cid_rejects_ended_deal(build, deal_manager, developer, clock):
    deal_id = build.deal(durationEpochs=1)
    clock.advance(1)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.setAppCid(deal_id, APP_CID, sender=developer)


# -------------------------------------------------------------------- stopDeal


def test_stop_deal_releases_every_worker(build, deal_manager, market, providers, developer, clock):
    _, [peer_a] = build.offer(providers[0], cus=(8,))
    _, [peer_b] = build.offer(providers[1], cus=(8,))
    deal_id = build.deal()
    _, worker_ids = build.match(deal_id, [peer_a, peer_b])
    epoch = clock.advance(1)

    receipt = deal_manager.stopDeal(deal_id, sender=developer)

    deal = deal_manager.getDeal(deal_id)
    assert deal.stopped
    assert deal.endEpoch == epoch + 1
    assert deal.activeWorkers == 0
    assert deal.ratePerEpoch == 2 * WORKER_RATE
    for worker_id in worker_ids:
        worker = deal_manager.getWorker(worker_id)
        assert not worker.active
        assert worker.leftEpoch == epoch + 1
    assert market.getPeer(peer_a).freeCus == 8
    assert market.getPeer(peer_b).freeCus == 8
    [stopped] = events(receipt, deal_manager.DealStopped)
    assert stopped.endEpoch == epoch + 1
    left = events(receipt, deal_manager.WorkerLeft)
    assert sorted(log.workerId for log in left) == sorted(worker_ids)
    assert len(events(receipt, market.CusReleased)) == 2


def test_stop_deal_bills_current_epoch_only(build, deal_manager, provider, developer, clock):
    deal_id, _, _ = build.matched_deal(provider)
    clock.advance(1)
    deal_manager.stopDeal(deal_id, sender=developer)
    pending = deal_manager.getDeal(deal_id).pending
    clock.advance(4)

    assert deal_manager.dealStatus(deal_id) == Status.ENDED
    deal_manager.withdraw(deal_id, 1, sender=developer)

    assert deal_manager.getDeal(deal_id).pending == pending + WORKER_RATE


def test_stop_deal_keeps_earlier_end(build, deal_manager, developer, clock):
    deal_id = build.deal(durationEpochs=2)
    clock.advance(1)
    end = deal_manager.getDeal(deal_id).endEpoch

    deal_manager.stopDeal(deal_id, sender=developer)

    assert deal_manager.getDeal(deal_id).endEpoch == end


def test_stop_deal_rejects_non_owner(build, deal_manager, stranger):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealNotOwner, dealId=deal_id, caller=stranger.address):
        deal_manager.stopDeal(deal_id, sender=stranger)


def test_stop_deal_rejects_second_stop(build, deal_manager, developer):
    deal_id = build.deal()
    deal_manager.stopDeal(deal_id, sender=developer)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.stopDeal(deal_id, sender=developer)


def test_stop_deal_rejects_ended_deal(build, deal_manager, developer, clock):
    deal_id = build.deal(durationEpochs=1)
    clock.advance(1)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.stopDeal(deal_id, sender=developer)


# ------------------------------------------------------------------ exitWorker


def test_exit_worker_frees_slot_and_rate(build, deal_manager, market, provider, clock):
    deal_id, worker_id, peer_id = build.matched_deal(provider, cus=(8,))
    epoch = clock.advance(2)

    receipt = deal_manager.exitWorker(worker_id, sender=provider)

    worker = deal_manager.getWorker(worker_id)
    assert not worker.active
    assert worker.leftEpoch == epoch
    deal = deal_manager.getDeal(deal_id)
    assert (deal.activeWorkers, deal.ratePerEpoch) == (0, 0)
    assert deal.pending == 2 * WORKER_RATE
    assert market.getPeer(peer_id).freeCus == 8
    [left] = events(receipt, deal_manager.WorkerLeft)
    assert (left.dealId, left.workerId, left.peerId, left.leftEpoch) == (deal_id, worker_id, peer_id, epoch)
    assert len(events(receipt, deal_manager.DealSettled)) == 1
    assert deal_manager.dealStatus(deal_id) == Status.NOT_ENOUGH_WORKERS


def test_exit_worker_reopens_slot_on_same_peer(build, deal_manager, provider):
    deal_id, worker_id, peer_id = build.matched_deal(provider)
    deal_manager.exitWorker(worker_id, sender=provider)

    _, [new_worker_id] = build.match(deal_id, [peer_id])

    assert new_worker_id != worker_id
    assert list(deal_manager.dealWorkerIds(deal_id)) == [worker_id, new_worker_id]


def test_exit_worker_after_end_keeps_rate(build, deal_manager, provider, clock):
    deal_id, worker_id, _ = build.matched_deal(provider, durationEpochs=2)
    end = deal_manager.getDeal(deal_id).endEpoch
    clock.advance(4)

    deal_manager.exitWorker(worker_id, sender=provider)

    assert deal_manager.getWorker(worker_id).leftEpoch == end
    assert deal_manager.getDeal(deal_id).ratePerEpoch == WORKER_RATE


def test_exit_worker_rejects_other_provider(build, deal_manager, providers):
    _, worker_id, _ = build.matched_deal(providers[0])

    with ape.reverts(deal_manager.DealNotWorkerProvider, workerId=worker_id, caller=providers[1].address):
        deal_manager.exitWorker(worker_id, sender=providers[1])


def test_exit_worker_rejects_inactive_worker(build, deal_manager, provider):
    _, worker_id, _ = build.matched_deal(provider)
    deal_manager.exitWorker(worker_id, sender=provider)

    with ape.reverts(deal_manager.DealWorkerNotActive, workerId=worker_id):
        deal_manager.exitWorker(worker_id, sender=provider)


def test_exit_worker_rejects_unknown_worker(deal_manager, provider):
    with ape.reverts(deal_manager.DealWorkerNotFound, workerId=1):
        deal_manager.exitWorker(1, sender=provider)


def test_get_worker_rejects_unknown_id(deal_manager):
    assert_call_reverts(deal_manager, "getWorker", [2], deal_manager.DealWorkerNotFound, workerId=2)


def test_open_ended_worker_has_max_leave_epoch(build, deal_manager, provider):
    _, worker_id, _ = build.matched_deal(provider)

    assert deal_manager.getWorker(worker_id).leftEpoch == UINT64_MAX
