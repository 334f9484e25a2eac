"""DealManager epoch proofs, claims, maxClaimEpoch and withdrawEarnings."""

import ape
import pytest

from contract_helpers import (
    MIN_DEPOSITED_EPOCHS,
    PRICE,
    PROOF_WINDOW_EPOCHS,
    USDC,
    events,
    proof_batch_hash,
)
from revert_checks import assert_call_reverts, reverts_with

WORKER_RATE = 2 * PRICE
RESERVE = PRICE * 2 * 2 * MIN_DEPOSITED_EPOCHS
ROOT = b"\x11" * 32


@pytest.fixture
def matched(build, provider, clock):
    """A deal with one worker whose peer signer is the first signer account.

    Returns (deal id, worker id, join epoch). The worker joins at epoch 1 or
    later, so an epoch before the join exists.
    """
    clock.advance(1)
    deal_id, worker_id, _ = build.matched_deal(provider)
    return deal_id, worker_id, clock.epoch()


def _prove(deal_manager, worker_id, epoch, signer, calls=1, usage=100):
    return deal_manager.submitEpochProof(worker_id, epoch, ROOT, calls, usage, sender=signer)


# ---------------------------------------------------------------------- proofs


def test_submit_proof_stores_and_emits(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)

    receipt = _prove(deal_manager, worker_id, joined, signers[0], calls=3, usage=1_000)

    proof = deal_manager.getEpochProof(worker_id, joined)
    assert proof.proven
    # A SUBSCRIPTION deal does not record the reported usage.
    assert proof.usage == 0
    entry = (worker_id, joined, ROOT, 3, 1_000)
    [log] = events(receipt, deal_manager.EpochProofsSubmitted)
    assert log.signer == signers[0]
    assert [tuple(logged) for logged in log.entries] == [entry]
    assert bytes(log.batchHash) == proof_batch_hash([entry])
    assert deal_manager.proofBatchSubmittedAt(log.batchHash) == receipt.timestamp


def test_epoch_proof_empty_when_unproven(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(2)
    _prove(deal_manager, worker_id, joined + 1, signers[0])

    proof = deal_manager.getEpochProof(worker_id, joined)
    assert not proof.proven
    assert proof.usage == 0


def test_proof_batch_unknown_hash_is_zero(deal_manager):
    assert deal_manager.proofBatchSubmittedAt(b"\x42" * 32) == 0


def test_get_epoch_proof_rejects_unknown_worker(deal_manager):
    assert_call_reverts(deal_manager, "getEpochProof", [5, 0], deal_manager.DealWorkerNotFound, workerId=5)


@pytest.mark.parametrize("sender_name", ["stranger", "provider"])
def test_submit_proof_rejects_non_signer(request, deal_manager, matched, signers, clock, sender_name):
    _, worker_id, joined = matched
    sender = request.getfixturevalue(sender_name)
    clock.advance(1)

    with ape.reverts(
        deal_manager.DealNotPeerSigner, workerId=worker_id, caller=sender.address, signer=signers[0].address
    ):
        _prove(deal_manager, worker_id, joined, sender)


def test_submit_proof_rejects_other_peer_signer(build, deal_manager, matched, providers, signers, clock):
    _, worker_id, joined = matched
    build.offer(providers[1])  # its peer uses signers[1]
    clock.advance(1)

    with ape.reverts(deal_manager.DealNotPeerSigner, caller=signers[1].address):
        _prove(deal_manager, worker_id, joined, signers[1])


def test_submit_proof_rejects_unknown_worker(deal_manager, signers):
    with ape.reverts(deal_manager.DealWorkerNotFound, workerId=1):
        _prove(deal_manager, 1, 0, signers[0])


def test_submit_proof_rejects_epoch_before_join(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)

    with ape.reverts(deal_manager.DealEpochNotInWorker, workerId=worker_id, epoch=joined - 1):
        _prove(deal_manager, worker_id, joined - 1, signers[0])


def test_submit_proof_rejects_current_epoch(deal_manager, matched, signers):
    _, worker_id, joined = matched

    with ape.reverts(deal_manager.DealEpochNotEnded, epoch=joined, currentEpoch=joined):
        _prove(deal_manager, worker_id, joined, signers[0])


def test_submit_proof_rejects_future_epoch(deal_manager, matched, signers):
    _, worker_id, joined = matched

    with ape.reverts(deal_manager.DealEpochNotEnded, epoch=joined + 1, currentEpoch=joined):
        _prove(deal_manager, worker_id, joined + 1, signers[0])


def test_submit_proof_accepts_last_window_epoch(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(PROOF_WINDOW_EPOCHS)

    _prove(deal_manager, worker_id, joined, signers[0])

    assert deal_manager.getEpochProof(worker_id, joined).proven


def test_submit_proof_rejects_closed_window(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    now = clock.advance(PROOF_WINDOW_EPOCHS + 1)

    with ape.reverts(deal_manager.DealProofWindowClosed, workerId=worker_id, epoch=joined, currentEpoch=now):
        _prove(deal_manager, worker_id, joined, signers[0])


def test_submit_proof_rejects_second_proof(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)
    _prove(deal_manager, worker_id, joined, signers[0])

    with ape.reverts(deal_manager.DealProofAlreadySubmitted, workerId=worker_id, epoch=joined):
        _prove(deal_manager, worker_id, joined, signers[0], calls=9)


@pytest.mark.parametrize(
    ("root", "calls", "usage"),
    [(bytes(32), 1, 0), (ROOT, 0, 0), (bytes(32), 0, 5)],
    ids=["calls-without-root", "root-without-calls", "usage-without-calls"],
)
def test_submit_proof_rejects_inconsistent_entry(deal_manager, matched, signers, clock, root, calls, usage):
    _, worker_id, joined = matched
    clock.advance(1)

    with reverts_with(deal_manager.DealInvalidProofEntry, workerId=worker_id, epoch=joined):
        deal_manager.submitEpochProof(worker_id, joined, root, calls, usage, sender=signers[0])

    assert not deal_manager.getEpochProof(worker_id, joined).proven


def test_submit_proof_accepts_empty_epoch(deal_manager, matched, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)

    deal_manager.submitEpochProof(worker_id, joined, bytes(32), 0, 0, sender=signers[0])

    assert deal_manager.getEpochProof(worker_id, joined).proven


def test_submit_proof_after_exit_stops_at_leave(deal_manager, matched, provider, signers, clock):
    _, worker_id, joined = matched
    left = clock.advance(2)
    deal_manager.exitWorker(worker_id, sender=provider)
    clock.advance(1)

    _prove(deal_manager, worker_id, joined + 1, signers[0])

    with ape.reverts(deal_manager.DealEpochNotInWorker, workerId=worker_id, epoch=left):
        _prove(deal_manager, worker_id, left, signers[0])


def test_submit_proof_after_stop_covers_last_epoch(deal_manager, matched, developer, signers, clock):
    deal_id, worker_id, _ = matched
    last = clock.advance(1)
    deal_manager.stopDeal(deal_id, sender=developer)
    clock.advance(1)

    _prove(deal_manager, worker_id, last, signers[0])

    with ape.reverts(deal_manager.DealEpochNotInWorker, epoch=last + 1):
        _prove(deal_manager, worker_id, last + 1, signers[0])


def test_submit_proof_rejects_epoch_after_deal_end(build, deal_manager, provider, signers, clock):
    deal_id, worker_id, _ = build.matched_deal(provider, durationEpochs=1)
    end = deal_manager.getDeal(deal_id).endEpoch
    clock.advance(2)

    with ape.reverts(deal_manager.DealEpochNotInWorker, epoch=end):
        _prove(deal_manager, worker_id, end, signers[0])


# ---------------------------------------------------------------------- claims


def test_claim_pays_proven_and_returns_unproven(deal_manager, usdc, matched, provider, signers, clock):
    deal_id, worker_id, joined = matched
    clock.advance(1)
    _prove(deal_manager, worker_id, joined, signers[0])
    clock.advance(2)
    _prove(deal_manager, worker_id, joined + 2, signers[0])
    clock.goto_epoch(joined + 3 + PROOF_WINDOW_EPOCHS)
    assert deal_manager.maxClaimEpoch(worker_id) == joined + 3
    before = deal_manager.getDeal(deal_id)
    settled_charge = (joined + 3 + PROOF_WINDOW_EPOCHS - before.settledEpoch) * WORKER_RATE

    receipt = deal_manager.claim(worker_id, joined + 3, sender=provider)

    [log] = events(receipt, deal_manager.WorkerClaimed)
    assert (log.workerId, log.fromEpoch, log.toEpoch, log.provenEpochs) == (worker_id, joined, joined + 3, 2)
    assert (log.paid, log.returned) == (2 * WORKER_RATE, WORKER_RATE)
    assert deal_manager.earnings(provider, usdc) == 2 * WORKER_RATE
    after = deal_manager.getDeal(deal_id)
    assert after.pending == before.pending + settled_charge - 3 * WORKER_RATE
    assert after.balance == before.balance - settled_charge + WORKER_RATE
    assert deal_manager.getWorker(worker_id).claimedUntilEpoch == joined + 3
    assert usdc.balanceOf(deal_manager) == after.balance + after.pending + 2 * WORKER_RATE


def test_claim_in_two_parts(deal_manager, usdc, matched, provider, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)
    _prove(deal_manager, worker_id, joined, signers[0])
    clock.advance(1)
    _prove(deal_manager, worker_id, joined + 1, signers[0])
    clock.goto_epoch(joined + 2 + PROOF_WINDOW_EPOCHS)

    first = deal_manager.claim(worker_id, joined + 1, sender=provider)
    second = deal_manager.claim(worker_id, joined + 2, sender=provider)

    [first_log] = events(first, deal_manager.WorkerClaimed)
    [second_log] = events(second, deal_manager.WorkerClaimed)
    assert (first_log.fromEpoch, first_log.toEpoch, first_log.paid) == (joined, joined + 1, WORKER_RATE)
    assert (second_log.fromEpoch, second_log.toEpoch, second_log.paid) == (joined + 1, joined + 2, WORKER_RATE)
    assert deal_manager.earnings(provider, usdc) == 2 * WORKER_RATE


def test_claim_ignores_unfunded_epochs(build, deal_manager, usdc, provider, signers, clock):
    clock.advance(1)
    # The reserve pays four epochs of the single worker, so epochs 5 and 6 are unfunded.
    deal_id, worker_id, _ = build.matched_deal(provider, deposit=RESERVE)
    joined = clock.epoch()
    clock.advance(6)
    _prove(deal_manager, worker_id, joined + 4, signers[0])
    _prove(deal_manager, worker_id, joined + 5, signers[0])
    clock.advance(PROOF_WINDOW_EPOCHS)

    receipt = deal_manager.claim(worker_id, joined + 6, sender=provider)

    [log] = events(receipt, deal_manager.WorkerClaimed)
    assert (log.provenEpochs, log.paid, log.returned) == (0, 0, 4 * WORKER_RATE)
    assert deal_manager.earnings(provider, usdc) == 0
    deal = deal_manager.getDeal(deal_id)
    assert deal.pending == 0
    assert deal.balance == RESERVE


def test_claim_rejects_open_proof_window(deal_manager, matched, provider, clock):
    _, worker_id, joined = matched
    clock.advance(PROOF_WINDOW_EPOCHS + 1)

    with ape.reverts(
        deal_manager.DealClaimRangeInvalid,
        workerId=worker_id,
        fromEpoch=joined,
        toEpoch=joined + 2,
        maxToEpoch=joined + 1,
    ):
        deal_manager.claim(worker_id, joined + 2, sender=provider)


def test_claim_rejects_empty_range(deal_manager, matched, provider, clock):
    _, worker_id, joined = matched
    clock.advance(PROOF_WINDOW_EPOCHS + 2)

    with ape.reverts(deal_manager.DealClaimRangeInvalid, fromEpoch=joined, toEpoch=joined):
        deal_manager.claim(worker_id, joined, sender=provider)


def test_claim_rejects_range_already_claimed(deal_manager, matched, provider, clock):
    _, worker_id, joined = matched
    clock.advance(PROOF_WINDOW_EPOCHS + 2)
    deal_manager.claim(worker_id, joined + 2, sender=provider)

    with ape.reverts(deal_manager.DealClaimRangeInvalid, fromEpoch=joined + 2, toEpoch=joined + 1):
        deal_manager.claim(worker_id, joined + 1, sender=provider)


def test_claim_caps_at_leave_epoch(deal_manager, matched, provider, clock):
    _, worker_id, joined = matched
    left = clock.advance(2)
    deal_manager.exitWorker(worker_id, sender=provider)
    clock.advance(6)

    assert deal_manager.maxClaimEpoch(worker_id) == left
    with ape.reverts(deal_manager.DealClaimRangeInvalid, maxToEpoch=left):
        deal_manager.claim(worker_id, left + 1, sender=provider)
    deal_manager.claim(worker_id, left, sender=provider)
    assert deal_manager.getWorker(worker_id).claimedUntilEpoch == left


def test_claim_rejects_other_provider(deal_manager, matched, providers, clock):
    _, worker_id, joined = matched
    clock.advance(PROOF_WINDOW_EPOCHS + 2)

    with ape.reverts(deal_manager.DealNotWorkerProvider, workerId=worker_id, caller=providers[1].address):
        deal_manager.claim(worker_id, joined + 1, sender=providers[1])


def test_claim_rejects_unknown_worker(deal_manager, provider):
    with ape.reverts(deal_manager.DealWorkerNotFound, workerId=3):
        deal_manager.claim(3, 1, sender=provider)


def test_max_claim_epoch_trails_proof_window(deal_manager, matched, clock):
    _, worker_id, joined = matched
    assert deal_manager.maxClaimEpoch(worker_id) <= joined

    clock.advance(PROOF_WINDOW_EPOCHS + 1)
    assert deal_manager.maxClaimEpoch(worker_id) == joined + 1

    clock.advance(3)
    assert deal_manager.maxClaimEpoch(worker_id) == joined + 4


def test_max_claim_epoch_rejects_unknown_worker(deal_manager):
    assert_call_reverts(deal_manager, "maxClaimEpoch", [8], deal_manager.DealWorkerNotFound, workerId=8)


# ------------------------------------------------------------ withdrawEarnings


def test_withdraw_earnings_sends_tokens(deal_manager, usdc, matched, provider, signers, clock):
    _, worker_id, joined = matched
    clock.advance(1)
    _prove(deal_manager, worker_id, joined, signers[0])
    clock.advance(PROOF_WINDOW_EPOCHS)
    deal_manager.claim(worker_id, joined + 1, sender=provider)
    wallet = usdc.balanceOf(provider)

    receipt = deal_manager.withdrawEarnings(usdc, sender=provider)

    assert usdc.balanceOf(provider) == wallet + WORKER_RATE
    assert deal_manager.earnings(provider, usdc) == 0
    [log] = events(receipt, deal_manager.EarningsWithdrawn)
    assert (log["provider"], log.token, log.amount) == (provider, usdc, WORKER_RATE)


def test_withdraw_earnings_rejects_nothing_to_withdraw(deal_manager, usdc, provider):
    with ape.reverts(deal_manager.DealNothingToWithdraw, provider=provider.address, token=usdc.address):
        deal_manager.withdrawEarnings(usdc, sender=provider)


def test_earnings_stay_after_deal_ends(build, deal_manager, usdc, provider, developer, signers, clock):
    clock.advance(1)
    deal_id, worker_id, _ = build.matched_deal(provider, durationEpochs=1, deposit=10 * USDC)
    joined = clock.epoch()
    clock.advance(1)
    _prove(deal_manager, worker_id, joined, signers[0])
    clock.advance(PROOF_WINDOW_EPOCHS)
    deal_manager.withdraw(deal_id, deal_manager.withdrawable(deal_id), sender=developer)

    deal_manager.claim(worker_id, joined + 1, sender=provider)

    assert deal_manager.earnings(provider, usdc) == WORKER_RATE
    deal = deal_manager.getDeal(deal_id)
    assert (deal.balance, deal.pending) == (0, 0)
    assert usdc.balanceOf(deal_manager) == WORKER_RATE
