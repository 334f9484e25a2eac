"""ChallengeManager challenges: SAMPLE and RECEIPT challenges, answers, faults, deadlines and settings.

The `challenge_env` fixture of conftest.py has a DealManager with a proof
window of 2 epochs and a challenge window of 2 epochs: epoch e is proven in
e+1 or e+2, challenged in e+3 or e+4 (until ANSWER_PERIOD seconds before e+5
starts) and claimed from e+5 on. Requests and receipts are signed with the
Python `cloudless.receipts` code and trees are `ReceiptMerkleTree`s.
"""

from dataclasses import dataclass

import pytest
from eth_account import Account
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cloudless.chain.challenges import ChallengeKind, ChallengeStatus, Fault
from cloudless.receipts.merkle import EMPTY_ROOT, NO_OPENING, LeafOpening, leaf_hash

from challenge_helpers import CALLER_KEY, OTHER_KEY
from contract_helpers import (
    ANSWER_PERIOD,
    CHALLENGE_BOND,
    CHALLENGE_WINDOW_EPOCHS,
    EPOCH_SECONDS,
    MISSED_PROOF_SLASH_AMOUNT,
    SLASH_AMOUNT,
    events,
    isolated,
    proof_batch_hash,
)
from revert_checks import assert_deploy_reverts, reverts_with

ZERO_ADDRESS = "0x" + "00" * 20
REPORTER_SHARE = SLASH_AMOUNT // 2
"""The Market's default reporter share is 5000 basis points."""

# Each example sends about five transactions.
property_settings = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
fuel_lists = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12)


@pytest.fixture
def env(challenge_env):
    # The first epoch of a session may be 0, so starting one epoch later keeps `epoch - 1` valid.
    challenge_env.clock.advance(1)
    return challenge_env


@pytest.fixture
def worker(env):
    return env.matched_worker()


def prove_now(env, worker, fuels=(100, 200, 300), **prove_options):
    """Prove the current epoch from the next one with honest calls, and return the proof."""
    epoch = env.clock.epoch()
    calls = env.calls(worker, epoch, fuels)
    env.clock.advance(1)
    return env.prove(worker, epoch, calls, **prove_options)


def stake_of(env, account) -> int:
    return env.market.getProvider(account).stake


# -------------------------------------------------------- honest challenges


def test_sample_challenge_answered_pays_provider(env, worker):
    proven = prove_now(env, worker)
    epoch = proven.epoch
    env.goto_window(epoch)
    cm, flt = env.challenge_manager, env.flt
    provider_flt, challenger_flt = flt.balanceOf(worker.provider), flt.balanceOf(env.challenger)

    tx = cm.challengeSample(proven.batch, 0, sender=env.challenger)

    [opened] = events(tx, cm.ChallengeOpened)
    challenge_id = opened.challengeId
    assert (opened.workerId, opened.epoch, opened.challenger) == (worker.worker_id, epoch, env.challenger.address)
    assert opened.kind == ChallengeKind.SAMPLE
    assert opened.leafIndex < 3
    assert opened.deadline == tx.timestamp + ANSWER_PERIOD
    [forfeited] = events(tx, env.deal_manager.EpochProofStatusChanged)
    assert (forfeited.workerId, forfeited.epoch, forfeited.proven) == (worker.worker_id, epoch, False)
    assert not env.proven(worker.worker_id, epoch)
    stored = cm.getChallenge(challenge_id)
    assert stored.status == ChallengeStatus.OPEN
    assert (stored.dealId, stored.provider, stored.signer) == (worker.deal_id, worker.provider, worker.signer)
    assert (bytes(stored.receiptsRoot), stored.calls, stored.usage) == (proven.tree.root, 3, 600)
    assert stored.bond == CHALLENGE_BOND
    assert flt.balanceOf(env.challenger) == challenger_flt - CHALLENGE_BOND
    assert flt.balanceOf(cm) == CHALLENGE_BOND

    answer = env.answer(challenge_id, proven, opened.leafIndex)

    [answered] = events(answer, cm.ChallengeAnswered)
    assert (answered.challengeId, answered.workerId, answered.epoch) == (challenge_id, worker.worker_id, epoch)
    assert answered["provider"] == worker.provider
    [restored] = events(answer, env.deal_manager.EpochProofStatusChanged)
    assert (restored.workerId, restored.epoch, restored.proven) == (worker.worker_id, epoch, True)
    assert env.status(challenge_id) == ChallengeStatus.ANSWERED
    assert env.proven(worker.worker_id, epoch)
    assert flt.balanceOf(worker.provider) == provider_flt + CHALLENGE_BOND
    assert flt.balanceOf(cm) == 0

    env.clock.goto_epoch(env.claims_epoch(epoch))
    claim = env.deal_manager.claim(worker.worker_id, epoch + 1, sender=worker.provider)

    [claimed] = events(claim, env.deal_manager.WorkerClaimed)
    assert claimed.provenEpochs == 1
    assert claimed.paid == env.deal_manager.workerEpochRate(worker.worker_id)


def test_receipt_challenge_answered_by_provider(env, worker):
    proven = prove_now(env, worker)
    named = proven.calls[1]
    env.goto_window(proven.epoch)
    provider_flt = env.flt.balanceOf(worker.provider)

    opened = env.challenge_receipt(proven, named)

    assert opened.kind == ChallengeKind.RECEIPT
    assert bytes(opened.receiptDigest) == named.digest
    assert opened.leafIndex == 0
    assert not env.proven(worker.worker_id, proven.epoch)

    env.answer(opened.challengeId, proven, 1, sender=worker.provider)

    assert env.status(opened.challengeId) == ChallengeStatus.ANSWERED
    assert env.proven(worker.worker_id, proven.epoch)
    assert env.flt.balanceOf(worker.provider) == provider_flt + CHALLENGE_BOND

    env.clock.goto_epoch(env.claims_epoch(proven.epoch))
    claim = env.deal_manager.claim(worker.worker_id, proven.epoch + 1, sender=worker.provider)
    [claimed] = events(claim, env.deal_manager.WorkerClaimed)
    assert claimed.provenEpochs == 1


def test_answered_proof_can_be_challenged_again(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    first = env.challenge_sample(proven)
    env.answer(first.challengeId, proven, first.leafIndex)

    second = env.challenge_receipt(proven, proven.calls[2])
    env.answer(second.challengeId, proven, 2)

    assert second.challengeId == first.challengeId + 1
    assert env.challenge_manager.challengeCount() == 2
    assert env.status(second.challengeId) == ChallengeStatus.ANSWERED
    assert env.proven(worker.worker_id, proven.epoch)


# ---------------------------------------------------- unanswered challenges


def test_unanswered_challenge_upheld_after_deadline(env, worker, developer):
    proven = prove_now(env, worker)
    epoch = proven.epoch
    env.goto_window(epoch)
    cm, flt, market = env.challenge_manager, env.flt, env.market
    challenger_flt = flt.balanceOf(env.challenger)
    stake = stake_of(env, worker.provider)
    treasury = market.treasuryBalance()
    opened = env.challenge_sample(proven)
    challenge_id = opened.challengeId

    with reverts_with(cm.ChallengeDeadlineNotReached, challengeId=challenge_id, deadline=opened.deadline):
        cm.resolveUnanswered(challenge_id, sender=developer)

    env.pass_deadline(opened.deadline)
    # Anyone may resolve, not only the challenger.
    tx = cm.resolveUnanswered(challenge_id, sender=developer)

    [upheld] = events(tx, cm.ChallengeUpheld)
    assert (upheld.challengeId, upheld.workerId, upheld.epoch) == (challenge_id, worker.worker_id, epoch)
    assert (upheld["provider"], upheld.fault) == (worker.provider, Fault.UNANSWERED)
    [slashed] = events(tx, market.ProviderSlashed)
    assert (slashed.reporter, slashed.amount, slashed.reporterShare) == (
        env.challenger.address,
        SLASH_AMOUNT,
        REPORTER_SHARE,
    )
    assert env.status(challenge_id) == ChallengeStatus.UPHELD
    assert stake_of(env, worker.provider) == stake - SLASH_AMOUNT
    assert flt.balanceOf(env.challenger) == challenger_flt
    assert market.slashRewards(env.challenger) == REPORTER_SHARE
    assert market.treasuryBalance() == treasury + SLASH_AMOUNT - REPORTER_SHARE
    assert flt.balanceOf(cm) == 0
    assert not env.proven(worker.worker_id, epoch)

    with reverts_with(cm.ChallengeNotOpen, challengeId=challenge_id, status=ChallengeStatus.UPHELD):
        cm.resolveUnanswered(challenge_id, sender=developer)

    market.withdrawSlashReward(sender=env.challenger)
    assert flt.balanceOf(env.challenger) == challenger_flt + REPORTER_SHARE

    env.clock.goto_epoch(env.claims_epoch(epoch))
    claim = env.deal_manager.claim(worker.worker_id, epoch + 1, sender=worker.provider)
    [claimed] = events(claim, env.deal_manager.WorkerClaimed)
    rate = env.deal_manager.workerEpochRate(worker.worker_id)
    assert (claimed.provenEpochs, claimed.paid, claimed.returned) == (0, 0, rate)


def test_open_challenge_epoch_not_paid_at_claim(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)

    # No one resolves the challenge before claims open: the epoch stays forfeited.
    env.clock.goto_epoch(env.claims_epoch(proven.epoch))
    claim = env.deal_manager.claim(worker.worker_id, proven.epoch + 1, sender=worker.provider)

    [claimed] = events(claim, env.deal_manager.WorkerClaimed)
    assert (claimed.provenEpochs, claimed.paid) == (0, 0)
    assert env.status(opened.challengeId) == ChallengeStatus.OPEN
    env.challenge_manager.resolveUnanswered(opened.challengeId, sender=env.challenger)
    assert env.status(opened.challengeId) == ChallengeStatus.UPHELD


# ------------------------------------------------------ faults in answers


@dataclass
class BadProof:
    """A proof that contains one bad receipt, and the answer that opens it."""

    calls: list
    index: int  # the bad call, which the challenge names
    prove_options: dict
    answer: tuple | None = None  # (leaf, next) openings when the tree is not a ReceiptMerkleTree


def _bad_caller_signature(signature):
    def build(env, worker, epoch):
        call = env.call(worker, epoch)
        request = call.request.model_copy(update={"signature": signature})
        return BadProof([env.pair(request, call.receipt)], 0, {})

    return build


def _bad_call(sign_bad):
    """Build a one-call proof of the call that `sign_bad(env, worker, epoch)` signs."""

    def build(env, worker, epoch):
        return BadProof([sign_bad(env, worker, epoch)], 0, {})

    return build


def _usage_off_by(delta):
    def build(env, worker, epoch):
        calls = env.calls(worker, epoch, [100, 200, 300])
        return BadProof(calls, 2, {"usage": 600 + delta})

    return build


def _fuel_gap(env, worker, epoch):
    # The tree commits 150 fuel for the first call, which used 100, so its
    # running total ends at 100 but the second leaf starts at 150.
    calls = env.calls(worker, epoch, [100, 200])
    return BadProof(calls, 0, {"tree": env.tree(calls, fuels=[150, 200])})


def _first_leaf_not_at_zero(env, worker, epoch):
    # A one-leaf tree whose only leaf claims 5 fuel before it. Its running
    # total ends at the proof's usage, so only the start is wrong.
    call = env.call(worker, epoch, fuel=40)
    opening = LeafOpening(call.digest, 0, 5, ())
    options = {"root": leaf_hash(call.digest, 0, 5), "usage": 45}
    return BadProof([call], 0, options, answer=(opening.as_tuple(), NO_OPENING.as_tuple()))


FAULT_CASES = {
    "caller-signature-high-s": (Fault.BAD_CALLER_SIGNATURE, _bad_caller_signature(b"\xff" * 65)),
    "caller-signature-zero": (Fault.BAD_CALLER_SIGNATURE, _bad_caller_signature(bytes(65))),
    "caller-signature-bad-v": (Fault.BAD_CALLER_SIGNATURE, _bad_caller_signature(b"\x01" * 64 + b"\x1d")),
    "other-worker": (
        Fault.WRONG_WORKER,
        _bad_call(lambda env, worker, epoch: env.call(worker, epoch, worker_id=worker.worker_id + 1)),
    ),
    "other-epoch": (
        Fault.WRONG_EPOCH,
        _bad_call(lambda env, worker, epoch: env.call(worker, epoch + 1)),
    ),
    "other-deal": (
        Fault.WRONG_DEAL,
        _bad_call(lambda env, worker, epoch: env.call(worker, epoch, deal_id=worker.deal_id + 1)),
    ),
    "expired-request": (
        Fault.EXPIRED_REQUEST,
        # The request expired a second before the receipt's epoch started.
        _bad_call(
            lambda env, worker, epoch: env.call(worker, epoch, deadline=env.epoch_start(epoch) - 1)
        ),
    ),
    "usage-above-total": (Fault.USAGE_MISMATCH, _usage_off_by(1)),
    "usage-below-total": (Fault.USAGE_MISMATCH, _usage_off_by(-1)),
    "fuel-gap-to-next-leaf": (Fault.USAGE_MISMATCH, _fuel_gap),
    "first-leaf-not-at-zero": (Fault.USAGE_MISMATCH, _first_leaf_not_at_zero),
}


@pytest.mark.parametrize("case", list(FAULT_CASES))
def test_answer_with_bad_receipt_upheld(env, worker, case):
    fault, build = FAULT_CASES[case]
    epoch = env.clock.epoch()
    bad = build(env, worker, epoch)
    env.clock.advance(1)
    proven = env.prove(worker, epoch, bad.calls, **bad.prove_options)
    env.goto_window(epoch)
    stake = stake_of(env, worker.provider)
    challenger_flt = env.flt.balanceOf(env.challenger)
    # A RECEIPT challenge names only receipts of the proof's worker and epoch,
    # so one-leaf trees are challenged with SAMPLE, which must pick leaf 0.
    if len(bad.calls) == 1:
        opened = env.challenge_sample(proven)
        assert opened.leafIndex == 0
    else:
        opened = env.challenge_receipt(proven, bad.calls[bad.index])
    cm = env.challenge_manager

    if bad.answer is None:
        tx = env.answer(opened.challengeId, proven, bad.index)
    else:
        tx = cm.answerChallenge(opened.challengeId, bad.calls[bad.index].signed_call(), *bad.answer, sender=worker.signer)

    [upheld] = events(tx, cm.ChallengeUpheld)
    assert upheld.fault == fault
    assert events(tx, cm.ChallengeAnswered) == []
    assert env.status(opened.challengeId) == ChallengeStatus.UPHELD
    assert not env.proven(worker.worker_id, epoch)
    assert stake_of(env, worker.provider) == stake - SLASH_AMOUNT
    assert env.flt.balanceOf(env.challenger) == challenger_flt
    assert env.market.slashRewards(env.challenger) == REPORTER_SHARE


# -------------------------------------------------- structural answer errors


def test_answer_wrong_leaf_index_reverts(env, worker):
    proven = prove_now(env, worker, fuels=(1, 2, 3, 4))
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)
    challenge_id = opened.challengeId
    other = (opened.leafIndex + 1) % 4

    with reverts_with(
        env.challenge_manager.ChallengeWrongLeaf,
        challengeId=challenge_id,
        receiptDigest=proven.calls[other].digest,
        index=other,
    ):
        env.answer(challenge_id, proven, other)

    # A reverted answer changes nothing, so the right one still lands.
    env.answer(challenge_id, proven, opened.leafIndex)
    assert env.status(challenge_id) == ChallengeStatus.ANSWERED


def test_answer_other_receipt_than_named_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_receipt(proven, proven.calls[0])

    with reverts_with(
        env.challenge_manager.ChallengeWrongLeaf,
        challengeId=opened.challengeId,
        receiptDigest=proven.calls[1].digest,
        index=1,
    ):
        env.answer(opened.challengeId, proven, 1)


def test_answer_opening_of_other_digest_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_receipt(proven, proven.calls[0])
    _, leaf, next_leaf = proven.answer(0)
    # The opening names the second receipt's digest while the call carries the first receipt.
    other_digest_leaf = (proven.calls[1].digest, *leaf[1:])

    with reverts_with(
        env.challenge_manager.ChallengeWrongLeaf,
        challengeId=opened.challengeId,
        receiptDigest=proven.calls[0].digest,
        index=0,
    ):
        env.challenge_manager.answerChallenge(
            opened.challengeId, proven.calls[0].signed_call(), other_digest_leaf, next_leaf, sender=worker.signer
        )


def test_answer_leaf_beyond_call_count_reverts(env, worker):
    # The proof counts 2 calls of a 3-leaf tree, so the third receipt is hidden from SAMPLE challenges.
    epoch = env.clock.epoch()
    calls = env.calls(worker, epoch, [1, 2, 3])
    env.clock.advance(1)
    proven = env.prove(worker, epoch, calls, count=2)
    env.goto_window(epoch)
    opened = env.challenge_receipt(proven, calls[2])

    with reverts_with(
        env.challenge_manager.ChallengeWrongLeaf, challengeId=opened.challengeId, receiptDigest=calls[2].digest, index=2
    ):
        env.answer(opened.challengeId, proven, 2)


def test_answer_path_not_in_root_reverts(env, worker):
    proven = prove_now(env, worker, fuels=(1, 2, 3, 4))
    env.goto_window(proven.epoch)
    opened = env.challenge_receipt(proven, proven.calls[1])
    call, leaf, next_leaf = proven.answer(1)
    digest, index, fuel_before, path = leaf
    tampered_path = [bytes(32)] + path[1:]
    cm = env.challenge_manager

    for bad_leaf in [(digest, index, fuel_before, tampered_path), (digest, index, fuel_before + 1, path)]:
        with reverts_with(cm.ChallengeLeafNotInRoot, challengeId=opened.challengeId, index=1):
            cm.answerChallenge(opened.challengeId, call, bad_leaf, next_leaf, sender=worker.signer)


def test_answer_next_leaf_checked(env, worker):
    proven = prove_now(env, worker, fuels=(1, 2, 3, 4))
    env.goto_window(proven.epoch)
    opened = env.challenge_receipt(proven, proven.calls[1])
    call, leaf, next_leaf = proven.answer(1)
    skipping = proven.tree.opening(3).as_tuple()
    next_digest, next_index, next_fuel, next_path = next_leaf
    cm = env.challenge_manager

    with reverts_with(cm.ChallengeWrongLeaf, challengeId=opened.challengeId, receiptDigest=proven.calls[3].digest, index=3):
        cm.answerChallenge(opened.challengeId, call, leaf, skipping, sender=worker.signer)
    with reverts_with(cm.ChallengeLeafNotInRoot, challengeId=opened.challengeId, index=2):
        cm.answerChallenge(
            opened.challengeId, call, leaf, (next_digest, next_index, next_fuel, [bytes(32)]), sender=worker.signer
        )


def test_answer_receipt_not_signed_by_peer_reverts(env, worker):
    epoch = env.clock.epoch()
    forged = env.call(worker, epoch, signer_key=OTHER_KEY)
    env.clock.advance(1)
    proven = env.prove(worker, epoch, [forged])
    env.goto_window(epoch)
    opened = env.challenge_sample(proven)

    with reverts_with(
        env.challenge_manager.ChallengeBadReceiptSignature,
        signer=Account.from_key(OTHER_KEY).address,
        expectedSigner=worker.signer.address,
    ):
        env.answer(opened.challengeId, proven, 0)


def test_answer_request_not_of_receipt_reverts(env, worker, receipt_domain):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_receipt(proven, proven.calls[0])
    _, leaf, next_leaf = proven.answer(0)
    other_request = env.request(worker.deal_id)
    call = env.pair(other_request, proven.calls[0].receipt)

    with reverts_with(
        env.challenge_manager.ChallengeRequestMismatch,
        requestHash=other_request.digest(receipt_domain),
        receiptRequestHash=proven.calls[0].receipt.request_hash,
    ):
        env.challenge_manager.answerChallenge(opened.challengeId, call.signed_call(), leaf, next_leaf, sender=worker.signer)


def test_answer_after_deadline_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)
    env.pass_deadline(opened.deadline)

    with reverts_with(
        env.challenge_manager.ChallengeDeadlinePassed, challengeId=opened.challengeId, deadline=opened.deadline
    ):
        env.answer(opened.challengeId, proven, opened.leafIndex)


def test_answer_by_other_account_reverts(env, worker):
    other = env.matched_worker(provider_index=1)
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)

    for caller in (env.challenger, env.developer, env.admin, other.provider, other.signer):
        with reverts_with(env.challenge_manager.ChallengeNotAnswerer, challengeId=opened.challengeId, caller=caller.address):
            env.answer(opened.challengeId, proven, opened.leafIndex, sender=caller)


def test_answer_closed_or_unknown_challenge_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)
    env.answer(opened.challengeId, proven, opened.leafIndex)
    cm = env.challenge_manager

    with reverts_with(cm.ChallengeNotOpen, challengeId=opened.challengeId, status=ChallengeStatus.ANSWERED):
        env.answer(opened.challengeId, proven, opened.leafIndex)
    with reverts_with(cm.ChallengeNotOpen, challengeId=99, status=ChallengeStatus.NONE):
        env.answer(99, proven, opened.leafIndex)
    with reverts_with(cm.ChallengeNotOpen, challengeId=opened.challengeId, status=ChallengeStatus.ANSWERED):
        cm.resolveUnanswered(opened.challengeId, sender=env.challenger)


# ------------------------------------------------ structural challenge errors


def test_challenge_before_proof_window_closes_reverts(env, worker):
    proven = prove_now(env, worker)
    epoch = proven.epoch
    env.clock.goto_epoch(epoch + 2)

    with reverts_with(
        env.challenge_manager.ChallengeOutsideWindow,
        workerId=worker.worker_id,
        epoch=epoch,
        opensAt=env.opens_at(epoch),
        closesAt=env.closes_at(epoch),
    ):
        env.challenge_sample(proven)


def test_challenge_after_window_closes_reverts(env, worker):
    proven = prove_now(env, worker)
    epoch = proven.epoch
    env.chain.mine(timestamp=env.closes_at(epoch) + 1)

    with reverts_with(
        env.challenge_manager.ChallengeOutsideWindow,
        workerId=worker.worker_id,
        epoch=epoch,
        opensAt=env.opens_at(epoch),
        closesAt=env.closes_at(epoch),
    ):
        env.challenge_receipt(proven, proven.calls[0])


def test_challenge_late_in_window_answered_before_claims(env, worker):
    proven = prove_now(env, worker)
    epoch = proven.epoch
    env.chain.mine(timestamp=env.closes_at(epoch) - 20)

    opened = env.challenge_sample(proven)

    # The deadline of the last possible challenge still falls before claims open.
    assert opened.deadline <= env.epoch_start(env.claims_epoch(epoch))
    env.answer(opened.challengeId, proven, opened.leafIndex)
    assert env.proven(worker.worker_id, epoch)


def test_challenge_unknown_batch_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    worker_id, epoch, _, calls, usage = proven.entry
    forged = [(worker_id, epoch, b"\x42" * 32, calls, usage)]

    with reverts_with(env.challenge_manager.ChallengeUnknownBatch, batchHash=proof_batch_hash(forged)):
        env.challenge_manager.challengeSample(forged, 0, sender=env.challenger)


def test_challenge_entry_out_of_range_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)

    with reverts_with(env.challenge_manager.ChallengeEntryOutOfRange, entryIndex=1, entries=1):
        env.challenge_manager.challengeSample(proven.batch, 1, sender=env.challenger)


def test_challenge_entry_of_batch_of_two(env, worker):
    epoch = env.clock.epoch()
    first = env.calls(worker, epoch, [5])
    second = env.calls(worker, epoch + 1, [6, 7])
    env.clock.advance(2)
    first_tree, second_tree = env.tree(first), env.tree(second)
    batch = [
        (worker.worker_id, epoch, first_tree.root, 1, 5),
        (worker.worker_id, epoch + 1, second_tree.root, 2, 13),
    ]
    env.deal_manager.submitEpochProofs(batch, sender=worker.signer)
    env.goto_window(epoch + 1)

    tx = env.challenge_manager.challengeSample(batch, 1, sender=env.challenger)

    [opened] = events(tx, env.challenge_manager.ChallengeOpened)
    assert opened.epoch == epoch + 1
    assert env.proven(worker.worker_id, epoch)
    assert not env.proven(worker.worker_id, epoch + 1)


def test_sample_of_zero_call_proof_reverts(env, worker):
    proven = prove_now(env, worker, fuels=())
    env.goto_window(proven.epoch)

    assert proven.entry[2] == EMPTY_ROOT
    with reverts_with(env.challenge_manager.ChallengeNothingToSample, workerId=worker.worker_id, epoch=proven.epoch):
        env.challenge_sample(proven)


def test_receipt_challenge_of_empty_proof_upheld(env, worker):
    # The peer signed a receipt for the epoch but proved it with no calls.
    epoch = env.clock.epoch()
    hidden = env.call(worker, epoch)
    env.clock.advance(1)
    proven = env.prove(worker, epoch, [])
    env.goto_window(epoch)
    opened = env.challenge_receipt(proven, hidden)
    cm = env.challenge_manager

    with reverts_with(cm.ChallengeWrongLeaf, challengeId=opened.challengeId, receiptDigest=hidden.digest, index=0):
        cm.answerChallenge(
            opened.challengeId, hidden.signed_call(), (hidden.digest, 0, 0, []), NO_OPENING.as_tuple(), sender=worker.signer
        )

    env.pass_deadline(opened.deadline)
    tx = cm.resolveUnanswered(opened.challengeId, sender=env.challenger)
    [upheld] = events(tx, cm.ChallengeUpheld)
    assert upheld.fault == Fault.UNANSWERED


def test_second_challenge_of_open_or_upheld_proof_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)
    cm = env.challenge_manager

    with reverts_with(cm.ChallengeProofNotStanding, workerId=worker.worker_id, epoch=proven.epoch):
        env.challenge_receipt(proven, proven.calls[0])

    env.pass_deadline(opened.deadline)
    cm.resolveUnanswered(opened.challengeId, sender=env.challenger)

    with reverts_with(cm.ChallengeProofNotStanding, workerId=worker.worker_id, epoch=proven.epoch):
        env.challenge_sample(proven)


def test_challenge_receipt_not_from_worker_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    forged = env.call(worker, proven.epoch, signer_key=OTHER_KEY)

    with reverts_with(
        env.challenge_manager.ChallengeReceiptNotFromWorker,
        workerId=worker.worker_id,
        epoch=proven.epoch,
        signer=Account.from_key(OTHER_KEY).address,
        expectedSigner=worker.signer.address,
    ):
        env.challenge_receipt(proven, forged)


def test_challenge_without_bond_approval_reverts(env, worker):
    proven = prove_now(env, worker)
    env.goto_window(proven.epoch)
    cm = env.challenge_manager
    assert env.flt.balanceOf(env.developer) >= CHALLENGE_BOND

    with reverts_with(env.flt.ERC20InsufficientAllowance, spender=cm.address, allowance=0, needed=CHALLENGE_BOND):
        env.challenge_sample(proven, sender=env.developer)

    assert cm.challengeCount() == 0
    assert env.proven(worker.worker_id, proven.epoch)


# ------------------------------------------------------------- properties


@property_settings
@given(fuels=fuel_lists)
def test_sample_of_honest_tree_always_answered(env, worker, fuels):
    with isolated(env.chain):
        proven = prove_now(env, worker, fuels=fuels)
        env.goto_window(proven.epoch)

        opened = env.challenge_sample(proven)

        assert opened.leafIndex < len(fuels)
        env.answer(opened.challengeId, proven, opened.leafIndex)
        assert env.status(opened.challengeId) == ChallengeStatus.ANSWERED
        assert env.proven(worker.worker_id, proven.epoch)


@property_settings
@given(fuels=fuel_lists, usage=st.integers(min_value=0, max_value=13 * 10**9))
def test_tampered_usage_upheld_at_last_leaf(env, worker, fuels, usage):
    assume(usage != sum(fuels))
    with isolated(env.chain):
        proven = prove_now(env, worker, fuels=fuels, usage=usage)
        last = len(fuels) - 1
        env.goto_window(proven.epoch)
        opened = env.challenge_receipt(proven, proven.calls[last])

        tx = env.answer(opened.challengeId, proven, last)

        [upheld] = events(tx, env.challenge_manager.ChallengeUpheld)
        assert upheld.fault == Fault.USAGE_MISMATCH
        assert env.status(opened.challengeId) == ChallengeStatus.UPHELD


# ---------------------------------------------------------------- settings


def test_replication_defaults_to_one(env, worker):
    assert env.challenge_manager.replicationOf(worker.deal_id) == 1
    assert env.challenge_manager.replicationOf(12_345) == 1
    assert env.challenge_manager.MAX_REPLICATION() == 5


@pytest.mark.parametrize("replication", [1, 3, 5])
def test_set_replication_by_owner(env, worker, replication):
    tx = env.challenge_manager.setReplication(worker.deal_id, replication, sender=env.developer)

    [log] = events(tx, env.challenge_manager.ReplicationSet)
    assert (log.dealId, log.replication) == (worker.deal_id, replication)
    assert env.challenge_manager.replicationOf(worker.deal_id) == replication


@pytest.mark.parametrize("replication", [0, 6, 255])
def test_set_replication_out_of_range_reverts(env, worker, replication):
    with reverts_with(
        env.challenge_manager.ChallengeReplicationOutOfRange,
        dealId=worker.deal_id,
        replication=replication,
        maxReplication=5,
    ):
        env.challenge_manager.setReplication(worker.deal_id, replication, sender=env.developer)


def test_set_replication_by_other_account_reverts(env, worker):
    for caller in (env.challenger, worker.provider, env.admin):
        with reverts_with(env.challenge_manager.ChallengeNotDealOwner, dealId=worker.deal_id, caller=caller.address):
            env.challenge_manager.setReplication(worker.deal_id, 2, sender=caller)


def test_set_caller_allowed_keeps_count(env, worker):
    cm = env.challenge_manager
    deal_id = worker.deal_id
    caller = Account.from_key(CALLER_KEY).address
    other = Account.from_key(OTHER_KEY).address
    # Without allowed callers, every key may sign requests.
    assert cm.allowedCallerCount(deal_id) == 0
    assert cm.isCallerAllowed(deal_id, other)
    now = env.clock.epoch()

    tx = cm.setCallerAllowed(deal_id, caller, True, sender=env.developer)

    [log] = events(tx, cm.CallerAllowed)
    delay = cm.CALLER_CHANGE_DELAY_EPOCHS()
    assert (log.dealId, log.caller, log.allowed, log.effectiveEpoch) == (deal_id, caller, True, now + delay)
    assert cm.allowedCallerCount(deal_id) == 1
    assert cm.callersRestrictedFrom(deal_id) == now + delay
    # Receipts already signed, or signed before the restriction applies, keep counting.
    assert cm.isCallerAllowed(deal_id, other)
    assert cm.isCallerAllowedAt(deal_id, other, now + delay - 1)
    assert not cm.isCallerAllowedAt(deal_id, other, now + delay)
    assert cm.isCallerAllowedAt(deal_id, caller, now + delay)

    repeated = cm.setCallerAllowed(deal_id, caller, True, sender=env.developer)
    assert events(repeated, cm.CallerAllowed) == []
    assert cm.allowedCallerCount(deal_id) == 1

    env.clock.advance(delay)
    assert not cm.isCallerAllowed(deal_id, other)
    removal_epoch = env.clock.epoch()
    cm.setCallerAllowed(deal_id, caller, False, sender=env.developer)
    assert cm.allowedCallerCount(deal_id) == 0
    # A removal applies after the same delay, and the deal stays restricted.
    assert cm.isCallerAllowedAt(deal_id, caller, removal_epoch + delay - 1)
    assert not cm.isCallerAllowedAt(deal_id, caller, removal_epoch + delay)
    assert not cm.isCallerAllowed(deal_id, other)


def test_restriction_spares_earlier_receipts(env, worker):
    # The requests are signed with CALLER_KEY. Allowing only another key after
    # the calls must not turn their receipts bad.
    proven = prove_now(env, worker, fuels=(10,))
    env.challenge_manager.setCallerAllowed(worker.deal_id, Account.from_key(OTHER_KEY).address, True, sender=env.developer)
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)

    env.answer(opened.challengeId, proven, 0)

    assert env.status(opened.challengeId) == ChallengeStatus.ANSWERED


def test_set_caller_allowed_rejects_zero_address(env, worker):
    with reverts_with(env.challenge_manager.ChallengeInvalidParameters, field="caller"):
        env.challenge_manager.setCallerAllowed(worker.deal_id, ZERO_ADDRESS, True, sender=env.developer)


@pytest.mark.parametrize("allowed_key", ["caller", "other"])
def test_answer_checks_allowed_callers(env, worker, allowed_key):
    key = CALLER_KEY if allowed_key == "caller" else OTHER_KEY
    env.challenge_manager.setCallerAllowed(worker.deal_id, Account.from_key(key).address, True, sender=env.developer)
    env.clock.advance(env.challenge_manager.CALLER_CHANGE_DELAY_EPOCHS())
    proven = prove_now(env, worker, fuels=(10,))
    env.goto_window(proven.epoch)
    opened = env.challenge_sample(proven)

    tx = env.answer(opened.challengeId, proven, 0)

    # The requests are signed with CALLER_KEY, so only its own allow-list lets the proof stand.
    if allowed_key == "caller":
        assert env.status(opened.challengeId) == ChallengeStatus.ANSWERED
    else:
        [upheld] = events(tx, env.challenge_manager.ChallengeUpheld)
        assert upheld.fault == Fault.BAD_CALLER_SIGNATURE


def test_parameters_as_deployed(env):
    cm = env.challenge_manager

    assert tuple(cm.parameters()) == (CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD)
    assert (cm.dealManager(), cm.market(), cm.receipts(), cm.flt()) == (
        env.deal_manager.address,
        env.market.address,
        env.receipts.address,
        env.flt.address,
    )
    assert cm.owner() == env.admin
    assert env.deal_manager.challengeManager() == cm.address
    assert env.market.isSlasher(cm)


def test_set_parameters_stores_and_emits(env):
    window = CHALLENGE_WINDOW_EPOCHS * EPOCH_SECONDS
    parameters = (1, 2, 3, window - 1)

    tx = env.challenge_manager.setParameters(parameters, sender=env.admin)

    [log] = events(tx, env.challenge_manager.ParametersSet)
    assert (log.challengeBond, log.slashAmount, log.missedProofSlashAmount, log.answerPeriod) == parameters
    assert tuple(env.challenge_manager.parameters()) == parameters


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ((0, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD), "challengeBond"),
        ((CHALLENGE_BOND, 0, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD), "slashAmount"),
        ((CHALLENGE_BOND, SLASH_AMOUNT, 0, ANSWER_PERIOD), "missedProofSlashAmount"),
        ((CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, 0), "answerPeriod"),
        ((CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, CHALLENGE_WINDOW_EPOCHS * EPOCH_SECONDS), "answerPeriod"),
    ],
    ids=["zero-bond", "zero-slash", "zero-missed-proof-slash", "zero-answer-period", "answer-period-fills-window"],
)
def test_set_parameters_rejects_invalid(env, parameters, field):
    with reverts_with(env.challenge_manager.ChallengeInvalidParameters, field=field):
        env.challenge_manager.setParameters(parameters, sender=env.admin)


@pytest.mark.parametrize("field", ["dealManager", "market", "receipts", "flt"])
def test_constructor_rejects_zero_address(project, env, field):
    addresses = {
        "dealManager": env.deal_manager.address,
        "market": env.market.address,
        "receipts": env.receipts.address,
        "flt": env.flt.address,
    }
    addresses[field] = ZERO_ADDRESS
    parameters = (CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD)
    arguments = [*addresses.values(), env.admin.address, parameters]

    assert_deploy_reverts(project.ChallengeManager, arguments, project.ChallengeManager.ChallengeInvalidParameters, field=field)


def test_constructor_without_challenge_window_takes_any_answer_period(project, deal_manager, market, env):
    # The first DealManager has no challenge window, so no answer period is too long for it.
    parameters = (CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, 10 * EPOCH_SECONDS)

    deployed = project.ChallengeManager.deploy(
        deal_manager, market, env.receipts, env.flt, env.admin, parameters, sender=env.admin
    )

    assert deployed.parameters().answerPeriod == 10 * EPOCH_SECONDS


@pytest.mark.parametrize("field", ["epoch", "worker"])
def test_challenge_receipt_of_other_entry_reverts(env, worker, field):
    # An honest peer signed this receipt, but for another epoch or worker, so
    # the challenged proof need not contain it.
    proven = prove_now(env, worker)
    if field == "epoch":
        named = env.call(worker, proven.epoch - 1)
    else:
        other = env.worker_on(worker.provider, worker.signer, worker.peer_id)
        named = env.call(other, proven.epoch)
    env.goto_window(proven.epoch)

    with reverts_with(
        env.challenge_manager.ChallengeReceiptNotOfEntry,
        workerId=worker.worker_id,
        epoch=proven.epoch,
        receiptWorkerId=named.receipt.worker_id,
        receiptEpoch=named.receipt.epoch,
    ):
        env.challenge_receipt(proven, named)
