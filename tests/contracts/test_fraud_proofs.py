"""ChallengeManager fraud proofs: equivocation, disagreement of replicas, and missed epoch proofs.

Each slashes the provider once per fraud key, pays the reporter the Market's
reporter share and needs no challenge. Receipts are signed with the Python
`cloudless.receipts` code under the ExecutionReceipts domain.
"""

import pytest
from eth_account import Account

from cloudless.chain.challenges import ChallengeStatus, Fault, request_tuple

from challenge_helpers import OTHER_KEY, fraud_key
from contract_helpers import MISSED_PROOF_SLASH_AMOUNT, PRICE, SLASH_AMOUNT, events
from revert_checks import reverts_with


@pytest.fixture
def env(challenge_env):
    # The first epoch of a session may be 0, so starting one epoch later keeps `epoch - 1` valid.
    challenge_env.clock.advance(1)
    return challenge_env


@pytest.fixture
def worker(env):
    return env.matched_worker()


def stake_of(env, account) -> int:
    return env.market.getProvider(account).stake


# ------------------------------------------------------------- equivocation


def _equivocating_pair(env, worker, epoch, *, second_epoch=None, second_output=b"other output"):
    """Sign two receipts of the worker for one request, which differ in output or epoch."""
    request = env.request(worker.deal_id)
    first = env.receipt(request, worker, epoch)
    second_epoch = epoch if second_epoch is None else second_epoch
    second = env.receipt(request, worker, second_epoch, output=second_output, sequence=1)
    return request, env.pair(request, first), env.pair(request, second)


@pytest.mark.parametrize("kind", ["two-outputs", "replay-in-next-epoch"])
def test_equivocation_slashes_once(env, worker, kind):
    epoch = env.clock.epoch()
    if kind == "two-outputs":
        request, first, second = _equivocating_pair(env, worker, epoch)
    else:
        # The same call, with the same output, counted again in the next epoch.
        request, first, second = _equivocating_pair(env, worker, epoch, second_epoch=epoch + 1, second_output=b"output")
    cm = env.challenge_manager
    stake = stake_of(env, worker.provider)
    key = fraud_key(Fault.EQUIVOCATION, worker.signer.address, first.receipt.request_hash)

    tx = cm.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)

    [log] = events(tx, cm.FraudProven)
    assert (bytes(log.fraudKey), log["provider"], log.workerId, log.epoch) == (
        key,
        worker.provider.address,
        worker.worker_id,
        epoch,
    )
    assert (log.reporter, log.fault, log.slashed) == (env.challenger.address, Fault.EQUIVOCATION, SLASH_AMOUNT)
    assert stake_of(env, worker.provider) == stake - SLASH_AMOUNT
    assert env.market.slashRewards(env.challenger) == SLASH_AMOUNT // 2
    assert cm.fraudSettled(key)

    with reverts_with(cm.FraudAlreadyProven, fraudKey=key):
        cm.proveEquivocation(second.signed_receipt(), first.signed_receipt(), sender=env.developer)
    assert stake_of(env, worker.provider) == stake - SLASH_AMOUNT


def test_equivocation_forfeits_epoch_after_proof_window(env, worker):
    epoch = env.clock.epoch()
    _, first, second = _equivocating_pair(env, worker, epoch)
    env.clock.advance(1)
    env.prove(worker, epoch, [first])
    env.goto_window(epoch)

    tx = env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)

    [changed] = events(tx, env.deal_manager.EpochProofStatusChanged)
    assert (changed.workerId, changed.epoch, changed.proven) == (worker.worker_id, epoch, False)
    assert not env.proven(worker.worker_id, epoch)


def test_equivocation_during_challenge_keeps_epoch_forfeited(env, worker):
    epoch = env.clock.epoch()
    _, first, second = _equivocating_pair(env, worker, epoch)
    env.clock.advance(1)
    proven = env.prove(worker, epoch, [first])
    env.goto_window(epoch)
    opened = env.challenge_sample(proven)
    env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.developer)

    env.answer(opened.challengeId, proven, 0)

    # The answer stands and earns the bond, but the fraud proof's forfeit holds.
    assert env.status(opened.challengeId) == ChallengeStatus.ANSWERED
    assert not env.proven(worker.worker_id, epoch)


def test_equivocation_inside_proof_window_keeps_proof(env, worker):
    epoch = env.clock.epoch()
    _, first, second = _equivocating_pair(env, worker, epoch)
    env.clock.advance(1)
    env.prove(worker, epoch, [first])

    tx = env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)

    # The peer could prove the epoch again inside the window, so only the slash applies.
    assert events(tx, env.deal_manager.EpochProofStatusChanged) == []
    assert len(events(tx, env.challenge_manager.FraudProven)) == 1
    assert env.proven(worker.worker_id, epoch)


def test_equivocation_rejects_same_receipt_twice(env, worker):
    _, first, _ = _equivocating_pair(env, worker, env.clock.epoch())

    with reverts_with(env.challenge_manager.FraudNotProven, reason="the two receipts are the same"):
        env.challenge_manager.proveEquivocation(first.signed_receipt(), first.signed_receipt(), sender=env.challenger)


def test_equivocation_rejects_different_signers(env, worker):
    epoch = env.clock.epoch()
    request = env.request(worker.deal_id)
    first = env.pair(request, env.receipt(request, worker, epoch))
    second = env.pair(request, env.receipt(request, worker, epoch, output=b"b", signer_key=OTHER_KEY))

    with reverts_with(env.challenge_manager.FraudNotProven, reason="receipts have different signers"):
        env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)


def test_equivocation_rejects_different_requests(env, worker):
    epoch = env.clock.epoch()
    first = env.call(worker, epoch)
    second = env.call(worker, epoch, output=b"b")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="receipts answer different requests"):
        env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)


def test_equivocation_rejects_signer_not_peer_of_worker(env, worker):
    epoch = env.clock.epoch()
    request = env.request(worker.deal_id)
    first = env.pair(request, env.receipt(request, worker, epoch, signer_key=OTHER_KEY))
    second = env.pair(request, env.receipt(request, worker, epoch, output=b"b", signer_key=OTHER_KEY))

    with reverts_with(
        env.challenge_manager.FraudNotProven, reason="signer is not the peer signer of the first receipt's worker"
    ):
        env.challenge_manager.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=env.challenger)
    assert Account.from_key(OTHER_KEY).address != worker.signer.address


# ------------------------------------------------------------- disagreement


@pytest.fixture
def replicas(env):
    """Four workers of one deal: providers 0, 1, 2 and a second worker of provider 0."""
    return env.replicated_workers()


def _receipts(env, request, workers, epoch, output=b"agreed", fuel=1_000):
    return [env.pair(request, env.receipt(request, worker, epoch, output=output, fuel=fuel)) for worker in workers]


def _prove_disagreement(env, request, majority, minority, sender=None, signature=None):
    return env.challenge_manager.proveDisagreement(
        request_tuple(request),
        request.signature if signature is None else signature,
        [call.signed_receipt() for call in majority],
        minority.signed_receipt(),
        sender=sender or env.challenger,
    )


@pytest.mark.parametrize("difference", ["output", "fuel"])
def test_disagreement_slashes_minority_once(env, replicas, difference):
    minority_worker = replicas[0]
    epoch = env.clock.epoch()
    request = env.request(minority_worker.deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch)
    changes = {"output": b"different"} if difference == "output" else {"fuel": 999}
    [minority] = _receipts(env, request, [minority_worker], epoch, **changes)
    cm = env.challenge_manager
    stakes = {worker.provider.address: stake_of(env, worker.provider) for worker in replicas}
    key = fraud_key(Fault.DISAGREEMENT, minority_worker.worker_id, minority.receipt.request_hash)

    tx = _prove_disagreement(env, request, majority, minority)

    [log] = events(tx, cm.FraudProven)
    assert (bytes(log.fraudKey), log["provider"], log.workerId, log.epoch, log.fault) == (
        key,
        minority_worker.provider.address,
        minority_worker.worker_id,
        epoch,
        Fault.DISAGREEMENT,
    )
    assert log.slashed == SLASH_AMOUNT
    assert stake_of(env, minority_worker.provider) == stakes[minority_worker.provider.address] - SLASH_AMOUNT
    for worker in replicas[1:3]:
        assert stake_of(env, worker.provider) == stakes[worker.provider.address]
    assert env.market.slashRewards(env.challenger) == SLASH_AMOUNT // 2

    with reverts_with(cm.FraudAlreadyProven, fraudKey=key):
        _prove_disagreement(env, request, list(reversed(majority)), minority, sender=env.developer)


def test_disagreement_of_three_against_one(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, replicas[:3], epoch)
    [minority] = _receipts(env, request, [replicas[3]], epoch, output=b"different")

    # Provider 0 runs both a majority worker and the minority worker.
    with reverts_with(env.challenge_manager.FraudNotProven, reason="majority includes the minority's provider"):
        _prove_disagreement(env, request, majority, minority)

    tx = _prove_disagreement(env, request, majority[1:], minority)
    [log] = events(tx, env.challenge_manager.FraudProven)
    assert log.workerId == replicas[3].worker_id


DISAGREEMENT_REJECTIONS = {
    # case: (majority worker indexes, minority worker index, reason)
    "majority-shares-provider": ((0, 3), 1, "majority receipts share a provider"),
    "majority-has-minority-provider": ((1, 3), 0, "majority includes the minority's provider"),
    "majority-of-one": ((1,), 0, "majority needs 2 to MAX_REPLICATION receipts"),
}


@pytest.mark.parametrize("case", list(DISAGREEMENT_REJECTIONS))
def test_disagreement_rejects_bad_majority(env, replicas, case):
    majority_indexes, minority_index, reason = DISAGREEMENT_REJECTIONS[case]
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, [replicas[i] for i in majority_indexes], epoch)
    [minority] = _receipts(env, request, [replicas[minority_index]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason=reason):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_majority_above_max_replication(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch) * 3
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="majority needs 2 to MAX_REPLICATION receipts"):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_agreeing_minority(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch)
    # Same output and fuel. Only the sequence number differs, which replicas need not agree on.
    minority = env.pair(request, env.receipt(request, replicas[0], epoch, output=b"agreed", sequence=7))

    with reverts_with(env.challenge_manager.FraudNotProven, reason="minority agrees with the majority"):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_majority_that_disagrees(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, [replicas[1]], epoch) + _receipts(
        env, request, [replicas[2]], epoch, output=b"third"
    )
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="majority receipts disagree"):
        _prove_disagreement(env, request, majority, minority)


@pytest.mark.parametrize("signature", [b"\xff" * 65, bytes(65)], ids=["high-s", "zero"])
def test_disagreement_rejects_bad_request_signature(env, replicas, signature):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch)
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="request signature does not verify"):
        _prove_disagreement(env, request, majority, minority, signature=signature)


def test_disagreement_rejects_caller_not_allowed(env, replicas):
    deal_id = replicas[0].deal_id
    env.challenge_manager.setCallerAllowed(deal_id, Account.from_key(OTHER_KEY).address, True, sender=env.developer)
    env.clock.advance(env.challenge_manager.CALLER_CHANGE_DELAY_EPOCHS())
    epoch = env.clock.epoch()
    request = env.request(deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch)
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="request signer is not an allowed caller"):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_worker_of_other_deal(env, replicas):
    epoch = env.clock.epoch()
    provider, signer = replicas[2].provider, replicas[2].signer
    outsider = env.worker_on(provider, signer, replicas[2].peer_id)
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, [replicas[1], outsider], epoch)
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    assert outsider.deal_id != replicas[0].deal_id
    with reverts_with(env.challenge_manager.FraudNotProven, reason="receipt is from a worker of another deal"):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_receipt_of_other_request(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    other_request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, [replicas[1]], epoch) + _receipts(env, other_request, [replicas[2]], epoch)
    [minority] = _receipts(env, request, [replicas[0]], epoch, output=b"different")

    with reverts_with(env.challenge_manager.FraudNotProven, reason="receipt is for another request"):
        _prove_disagreement(env, request, majority, minority)


def test_disagreement_rejects_receipt_not_signed_by_its_peer(env, replicas):
    epoch = env.clock.epoch()
    request = env.request(replicas[0].deal_id)
    majority = _receipts(env, request, replicas[1:3], epoch)
    minority = env.pair(request, env.receipt(request, replicas[0], epoch, output=b"different", signer_key=OTHER_KEY))

    with reverts_with(env.challenge_manager.FraudNotProven, reason="receipt is not signed by its worker's peer signer"):
        _prove_disagreement(env, request, majority, minority)


# ------------------------------------------------------------- missed proofs


def _reject_missed(env, worker_id, epoch, reason):
    cm = env.challenge_manager
    with reverts_with(cm.MissedProofNotReportable, workerId=worker_id, epoch=epoch, reason=reason):
        cm.reportMissedProof(worker_id, epoch, sender=env.challenger)


def test_missed_proof_slashes_once_in_challenge_window(env, worker):
    epoch = env.deal_manager.getWorker(worker.worker_id).joinedEpoch
    cm = env.challenge_manager
    stake = stake_of(env, worker.provider)
    key = fraud_key(Fault.MISSED_PROOF, worker.worker_id, epoch)

    env.clock.goto_epoch(epoch + 2)
    _reject_missed(env, worker.worker_id, epoch, "outside the epoch's challenge window")

    env.goto_window(epoch)
    tx = cm.reportMissedProof(worker.worker_id, epoch, sender=env.challenger)

    [log] = events(tx, cm.FraudProven)
    assert (bytes(log.fraudKey), log["provider"], log.workerId, log.epoch, log.reporter, log.fault) == (
        key,
        worker.provider.address,
        worker.worker_id,
        epoch,
        env.challenger.address,
        Fault.MISSED_PROOF,
    )
    assert log.slashed == MISSED_PROOF_SLASH_AMOUNT
    assert stake_of(env, worker.provider) == stake - MISSED_PROOF_SLASH_AMOUNT
    assert env.market.slashRewards(env.challenger) == MISSED_PROOF_SLASH_AMOUNT // 2

    with reverts_with(cm.FraudAlreadyProven, fraudKey=key):
        cm.reportMissedProof(worker.worker_id, epoch, sender=env.developer)

    # The next epoch is still reportable, until its claims open.
    env.clock.goto_epoch(env.claims_epoch(epoch + 1))
    _reject_missed(env, worker.worker_id, epoch + 1, "outside the epoch's challenge window")


def test_missed_proof_rejects_proven_epoch(env, worker):
    epoch = env.clock.epoch()
    env.clock.advance(1)
    env.prove(worker, epoch, [])
    env.goto_window(epoch)

    _reject_missed(env, worker.worker_id, epoch, "proven")


def test_missed_proof_rejects_epoch_before_join(env, worker):
    joined = env.deal_manager.getWorker(worker.worker_id).joinedEpoch
    env.goto_window(joined - 1)

    _reject_missed(env, worker.worker_id, joined - 1, "worker was not in the deal")


def test_missed_proof_rejects_epoch_after_exit(env, worker):
    env.clock.advance(1)
    env.deal_manager.exitWorker(worker.worker_id, sender=worker.provider)
    left = env.deal_manager.getWorker(worker.worker_id).leftEpoch
    env.goto_window(left)

    _reject_missed(env, worker.worker_id, left, "worker was not in the deal")
    env.challenge_manager.reportMissedProof(worker.worker_id, left - 1, sender=env.challenger)


def test_missed_proof_rejects_unfunded_epoch(env):
    # The deposit is the minimum reserve, two epochs at the worker's rate, so
    # the join epoch and the next one are funded and the third is not.
    worker = env.matched_worker(targetWorkers=1, deposit=PRICE * 2 * 2)
    joined = env.deal_manager.getWorker(worker.worker_id).joinedEpoch
    unfunded = joined + 2

    env.goto_window(unfunded)
    _reject_missed(env, worker.worker_id, unfunded, "deal did not pay for the epoch")

    # Settling the deal records the unfunded span, and the report reverts the same way.
    env.deal_manager.deposit(worker.deal_id, PRICE, sender=env.developer)
    assert env.deal_manager.unfundedSpans(worker.deal_id)[0].start == unfunded
    _reject_missed(env, worker.worker_id, unfunded, "deal did not pay for the epoch")

    env.challenge_manager.reportMissedProof(worker.worker_id, joined + 1, sender=env.challenger)


def test_missed_proof_rejects_epoch_under_open_challenge(env, worker):
    # The open challenge clears the proven bit, but the peer did prove the epoch.
    epoch = env.clock.epoch()
    calls = env.calls(worker, epoch, [10])
    env.clock.advance(1)
    proven = env.prove(worker, epoch, calls)
    env.goto_window(epoch)
    opened = env.challenge_sample(proven)
    stake = stake_of(env, worker.provider)

    _reject_missed(env, worker.worker_id, epoch, "proven")

    env.answer(opened.challengeId, proven, 0)
    assert stake_of(env, worker.provider) == stake


def test_missed_proof_rejects_epoch_of_upheld_challenge(env, worker):
    epoch = env.clock.epoch()
    env.clock.advance(1)
    proven = env.prove(worker, epoch, env.calls(worker, epoch, [10]))
    env.goto_window(epoch)
    opened = env.challenge_sample(proven)
    env.pass_deadline(opened.deadline)
    env.challenge_manager.resolveUnanswered(opened.challengeId, sender=env.challenger)

    # The upheld challenge already slashed for this epoch.
    _reject_missed(env, worker.worker_id, epoch, "proven")
