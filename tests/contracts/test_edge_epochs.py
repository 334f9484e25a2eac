"""Edge epochs of the billing rules: join and exit in one epoch, the proof
window's boundaries, a balance that runs out, a top-up inside a claim range,
a proof batch with one bad entry, and claimAndWithdraw against claim.

The hypothesis tests run each example between a chain snapshot and a restore,
so the examples do not see each other's deals. Every example sends real
transactions to anvil, so the example counts are small.
"""


import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from contract_helpers import (
    EPOCH_SECONDS,
    MIN_DEPOSITED_EPOCHS,
    PRICE,
    PROOF_WINDOW_EPOCHS,
    USDC,
    Status,
    events,
    isolated,
)
from revert_checks import reverts_with

WINDOW = PROOF_WINDOW_EPOCHS
CUS = 2
"""CUs per worker (the deal's cuPerWorker)."""
BASE_RATE = PRICE * CUS
"""Epoch rate of a SUBSCRIPTION worker at the default offer price."""
ROOT = b"\x44" * 32
ENTRY_TYPE = "(uint256,uint64,bytes32,uint64,uint64)[]"
"""ABI type of IDealManager.EpochProofEntry[], for the batch hash."""

onchain_settings = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)



def _reach(clock, epoch):
    """Move the chain to `epoch` unless the next transaction already lands in it."""
    if clock.epoch() < epoch:
        clock.goto_epoch(epoch)
    assert clock.epoch() == epoch


def _one_worker_deal(build, deal_manager, provider, signer, deposit, **deal_overrides):
    """Create a deal with one worker on a new peer of `provider`, in the current epoch.

    Returns (deal id, worker id, start epoch). The deal starts in the epoch
    in which the worker joins, so every epoch of the deal bills the worker.
    """
    _, [peer_id] = build.offer(provider, cus=(8,), signers=[signer.address])
    deal_id = build.deal(
        maxPricePerCuPerEpoch=PRICE,
        cuPerWorker=CUS,
        minWorkers=1,
        targetWorkers=1,
        maxWorkersPerProvider=1,
        deposit=deposit,
        **deal_overrides,
    )
    _, [worker_id] = build.match(deal_id, [peer_id])
    start = deal_manager.getDeal(deal_id).startEpoch
    assert deal_manager.getWorker(worker_id).joinedEpoch == start, "the worker must join in the deal's first epoch"
    return deal_id, worker_id, start


def _prove(deal_manager, worker_id, epoch, signer, usage=0):
    return deal_manager.submitEpochProof(worker_id, epoch, ROOT, 1, usage, sender=signer)


def _spans(deal_manager, deal_id):
    return [(span.start, span.end) for span in deal_manager.unfundedSpans(deal_id)]


def _batch_hash(entries):
    return keccak(encode([ENTRY_TYPE], [entries]))


# --------------------------------------------------- join and exit in one epoch


@onchain_settings
@given(wait=st.integers(min_value=0, max_value=WINDOW + 2), with_co_worker=st.booleans())
def test_same_epoch_exit_bills_nothing(
    chain, build, deal_manager, usdc, developer, providers, signers, clock, wait, with_co_worker
):
    deposit = 100 * USDC
    with isolated(chain):
        clock.advance(1)
        _, [leaver_peer] = build.offer(providers[0], signers=[signers[0].address])
        peer_ids = [leaver_peer]
        if with_co_worker:
            _, [co_peer] = build.offer(providers[1], signers=[signers[1].address])
            peer_ids.append(co_peer)
        deal_id = build.deal(targetWorkers=2, deposit=deposit)
        _, worker_ids = build.match(deal_id, peer_ids)
        leaver = worker_ids[0]
        joined = deal_manager.getWorker(leaver).joinedEpoch

        deal_manager.exitWorker(leaver, sender=providers[0])

        worker = deal_manager.getWorker(leaver)
        assert worker.leftEpoch == joined, "the exit must land in the join epoch"
        co_rate = deal_manager.workerEpochRate(worker_ids[1]) if with_co_worker else 0
        assert deal_manager.getDeal(deal_id).ratePerEpoch == co_rate

        _reach(clock, joined + wait)
        now = joined + wait
        assert deal_manager.dealBalance(deal_id) == deposit - co_rate * wait
        max_claim = min(joined, max(now - WINDOW, 0))
        assert deal_manager.maxClaimEpoch(leaver) == max_claim

        with reverts_with(
            deal_manager.DealClaimRangeInvalid,
            workerId=leaver,
            fromEpoch=joined,
            toEpoch=joined + 1,
            maxToEpoch=max_claim,
        ):
            deal_manager.claim(leaver, joined + 1, sender=providers[0])
        with reverts_with(deal_manager.DealNothingToClaim, provider=providers[0].address):
            deal_manager.claimAndWithdraw([leaver], sender=providers[0])
        if now > joined:
            with reverts_with(deal_manager.DealEpochNotInWorker, workerId=leaver, epoch=joined):
                _prove(deal_manager, leaver, joined, signers[0])

        # A deposit settles the deal, which charges the co-worker's epochs and nothing else.
        deal_manager.deposit(deal_id, 1, sender=developer)
        deal = deal_manager.getDeal(deal_id)
        assert deal.pending == co_rate * wait
        assert deal.balance == deposit + 1 - co_rate * wait
        assert _spans(deal_manager, deal_id) == []
        assert deal_manager.earnings(providers[0], usdc) == 0


# ------------------------------------------------------------ proof window


@onchain_settings
@given(
    proof_offset=st.integers(min_value=0, max_value=3),
    now_offset=st.integers(min_value=0, max_value=3 + WINDOW + 2),
)
@example(proof_offset=0, now_offset=0)  # the current epoch
@example(proof_offset=2, now_offset=1)  # a future epoch
@example(proof_offset=1, now_offset=1 + WINDOW)  # the last epoch of the window
@example(proof_offset=1, now_offset=2 + WINDOW)  # the first epoch after it
def test_proof_accepted_only_inside_window(
    chain, build, deal_manager, providers, signers, clock, proof_offset, now_offset
):
    with isolated(chain):
        clock.advance(1)
        _, worker_id, joined = _one_worker_deal(build, deal_manager, providers[0], signers[0], 10 * USDC)
        epoch = joined + proof_offset
        now = joined + now_offset
        _reach(clock, now)

        if now <= epoch:
            with reverts_with(deal_manager.DealEpochNotEnded, epoch=epoch, currentEpoch=now):
                _prove(deal_manager, worker_id, epoch, signers[0])
        elif now <= epoch + WINDOW:
            _prove(deal_manager, worker_id, epoch, signers[0])
        else:
            with reverts_with(deal_manager.DealProofWindowClosed, workerId=worker_id, epoch=epoch, currentEpoch=now):
                _prove(deal_manager, worker_id, epoch, signers[0])

        accepted = epoch < now <= epoch + WINDOW
        assert deal_manager.getEpochProof(worker_id, epoch).proven == accepted


def test_proof_window_edges_in_one_epoch(chain, build, deal_manager, providers, signers, clock):
    assert WINDOW >= 2, "the oldest and the newest open epoch must differ"
    clock.advance(1)
    _, worker_id, joined = _one_worker_deal(build, deal_manager, providers[0], signers[0], 10 * USDC)
    now = joined + WINDOW + 1
    clock.goto_epoch(now)

    with reverts_with(deal_manager.DealEpochNotEnded, epoch=now, currentEpoch=now):
        _prove(deal_manager, worker_id, now, signers[0])
    closed = now - WINDOW - 1
    with reverts_with(deal_manager.DealProofWindowClosed, workerId=worker_id, epoch=closed, currentEpoch=now):
        _prove(deal_manager, worker_id, closed, signers[0])
    _prove(deal_manager, worker_id, now - WINDOW, signers[0])
    _prove(deal_manager, worker_id, now - 1, signers[0])

    proven = [deal_manager.getEpochProof(worker_id, epoch).proven for epoch in range(closed, now + 1)]
    assert proven == [False, True] + [False] * (WINDOW - 2) + [True, False]


def test_proof_in_last_second_of_window(chain, build, deal_manager, providers, signers, clock):
    clock.advance(1)
    _, worker_id, joined = _one_worker_deal(build, deal_manager, providers[0], signers[0], 10 * USDC)
    genesis = deal_manager.genesis()

    # The last second of epoch `joined + WINDOW` still accepts a proof of `joined`.
    last_second = genesis + (joined + WINDOW + 1) * EPOCH_SECONDS - 1
    chain.pending_timestamp = last_second
    receipt = _prove(deal_manager, worker_id, joined, signers[0])
    assert receipt.timestamp == last_second
    assert deal_manager.getEpochProof(worker_id, joined).proven

    # Epoch `joined + WINDOW + 2` is the first one after the window of `joined + 1`.
    clock.goto_epoch(joined + WINDOW + 2)
    with reverts_with(
        deal_manager.DealProofWindowClosed, workerId=worker_id, epoch=joined + 1, currentEpoch=joined + WINDOW + 2
    ):
        _prove(deal_manager, worker_id, joined + 1, signers[0])


# ------------------------------------------------------ a balance runs out


@st.composite
def run_out_cases(draw):
    funded = draw(st.integers(min_value=MIN_DEPOSITED_EPOCHS, max_value=4))
    unfunded = draw(st.integers(min_value=1, max_value=3))
    return {
        "funded": funded,
        "unfunded": unfunded,
        "leftover": draw(st.integers(min_value=0, max_value=BASE_RATE - 1)),
        "proofs": draw(st.lists(st.booleans(), min_size=funded + unfunded, max_size=funded + unfunded)),
    }


@onchain_settings
@given(case=run_out_cases())
def test_epochs_after_run_out_unfunded(chain, build, deal_manager, usdc, providers, signers, clock, case):
    funded, proofs, leftover = case["funded"], case["proofs"], case["leftover"]
    total = funded + case["unfunded"]
    deposit = funded * BASE_RATE + leftover

    with isolated(chain):
        clock.advance(1)
        deal_id, worker_id, start = _one_worker_deal(build, deal_manager, providers[0], signers[0], deposit)
        assert deal_manager.workerEpochRate(worker_id) == BASE_RATE
        run_out = start + funded
        assert deal_manager.fundedUntilEpoch(deal_id) == run_out

        # Step through the deal one epoch at a time and prove each ended epoch.
        for epoch in range(start, start + total):
            now = epoch + 1
            clock.goto_epoch(now)
            # The prediction stays until the money runs out, and from then on it is the current epoch.
            assert deal_manager.fundedUntilEpoch(deal_id) == max(run_out, now)
            expected_status = Status.INSUFFICIENT_FUNDS if now >= run_out else Status.ACTIVE
            assert deal_manager.dealStatus(deal_id) == expected_status
            if proofs[epoch - start]:
                _prove(deal_manager, worker_id, epoch, signers[0])

        claim_epoch = start + total + WINDOW
        clock.goto_epoch(claim_epoch)
        receipt = deal_manager.claim(worker_id, start + total, sender=providers[0])

        proven_funded = sum(proofs[:funded])
        [log] = events(receipt, deal_manager.WorkerClaimed)
        assert (log.fromEpoch, log.toEpoch) == (start, start + total)
        assert log.provenEpochs == proven_funded
        assert log.paid == proven_funded * BASE_RATE
        assert log.returned == (funded - proven_funded) * BASE_RATE
        assert deal_manager.earnings(providers[0], usdc) == proven_funded * BASE_RATE

        assert _spans(deal_manager, deal_id) == [(run_out, claim_epoch)]
        deal = deal_manager.getDeal(deal_id)
        assert deal.pending == 0
        assert deal.balance == leftover + log.returned
        # Proofs of unfunded epochs are recorded, but they earned nothing above.
        for epoch in range(run_out, start + total):
            assert deal_manager.getEpochProof(worker_id, epoch).proven == proofs[epoch - start]


# ------------------------------------------------ a claim across a top-up


@st.composite
def top_up_cases(draw):
    funded = draw(st.integers(min_value=MIN_DEPOSITED_EPOCHS, max_value=3))
    gap = draw(st.integers(min_value=1, max_value=3))
    after = draw(st.integers(min_value=1, max_value=3))
    epochs = funded + gap + after
    return {
        "funded": funded,
        "gap": gap,
        "after": after,
        "leftover": draw(st.integers(min_value=0, max_value=BASE_RATE - 1)),
        "proofs": draw(st.lists(st.booleans(), min_size=epochs, max_size=epochs)),
    }


@onchain_settings
@given(case=top_up_cases())
def test_claim_across_top_up(chain, build, deal_manager, usdc, developer, providers, signers, clock, case):
    funded, gap, after, proofs, leftover = case["funded"], case["gap"], case["after"], case["proofs"], case["leftover"]
    # Enough to fund every epoch from the top-up to the claim and two more.
    top_up = BASE_RATE * (after + WINDOW + 2)

    with isolated(chain):
        clock.advance(1)
        deal_id, worker_id, start = _one_worker_deal(
            build, deal_manager, providers[0], signers[0], funded * BASE_RATE + leftover
        )
        run_out = start + funded
        top_up_epoch = run_out + gap
        end = top_up_epoch + after

        for epoch in range(start, end):
            now = epoch + 1
            clock.goto_epoch(now)
            if now == top_up_epoch:
                deal_manager.deposit(deal_id, top_up, sender=developer)
                assert deal_manager.fundedUntilEpoch(deal_id) > now
            if proofs[epoch - start]:
                _prove(deal_manager, worker_id, epoch, signers[0])

        clock.goto_epoch(end + WINDOW)
        receipt = deal_manager.claim(worker_id, end, sender=providers[0])

        rate = deal_manager.workerEpochRate(worker_id)
        funded_offsets = list(range(funded)) + list(range(funded + gap, funded + gap + after))
        proven_funded = sum(proofs[offset] for offset in funded_offsets)
        [log] = events(receipt, deal_manager.WorkerClaimed)
        assert (log.fromEpoch, log.toEpoch) == (start, end)
        assert log.provenEpochs == proven_funded
        assert log.paid == proven_funded * rate
        assert log.returned == (len(funded_offsets) - proven_funded) * rate
        assert log.paid + log.returned == len(funded_offsets) * rate
        assert deal_manager.earnings(providers[0], usdc) == log.paid

        assert _spans(deal_manager, deal_id) == [(run_out, top_up_epoch)]
        deal = deal_manager.getDeal(deal_id)
        # The epochs [end, end + WINDOW) are charged but not claimed yet.
        assert deal.pending == WINDOW * rate
        assert deal.balance == leftover + top_up - (after + WINDOW) * rate + log.returned


# --------------------------------------------- a proof batch with a bad entry

VALID_SLOTS = (("first", 1), ("first", 2), ("second", 1), ("second", 2))
"""(worker, epoch after the join) of the valid entries, sent in epoch `joined + WINDOW + 1`.

Both epochs have ended and, for WINDOW >= 2, are inside the proof window.
"""
BAD_KINDS = (
    "current_epoch",
    "future_epoch",
    "window_closed",
    "before_join",
    "other_peer",
    "unknown_worker",
    "duplicate",
)


@st.composite
def bad_batches(draw):
    valid = draw(st.lists(st.sampled_from(range(len(VALID_SLOTS))), min_size=1, max_size=4, unique=True))
    return {
        "valid": [VALID_SLOTS[index] for index in valid],
        "bad_position": draw(st.integers(min_value=0, max_value=len(valid))),
        "duplicate_of": draw(st.integers(min_value=0, max_value=len(valid) - 1)),
    }


def _bad_entry(deal_manager, kind, workers, joined, now, valid_entries, duplicate_of, signers):
    """Return the bad entry of `kind` and the (error, arguments) that the batch must revert with."""
    first, other = workers["first"], workers["other"]
    if kind == "current_epoch":
        return (first, now, ROOT, 1, 0), (deal_manager.DealEpochNotEnded, {"epoch": now, "currentEpoch": now})
    if kind == "future_epoch":
        return (first, now + 2, ROOT, 1, 0), (deal_manager.DealEpochNotEnded, {"epoch": now + 2, "currentEpoch": now})
    if kind == "window_closed":
        error = (deal_manager.DealProofWindowClosed, {"workerId": first, "epoch": joined, "currentEpoch": now})
        return (first, joined, ROOT, 1, 0), error
    if kind == "before_join":
        error = (deal_manager.DealEpochNotInWorker, {"workerId": workers["second"], "epoch": joined - 1})
        return (workers["second"], joined - 1, ROOT, 1, 0), error
    if kind == "other_peer":
        error = (
            deal_manager.DealNotPeerSigner,
            {"workerId": other, "caller": signers[0].address, "signer": signers[1].address},
        )
        return (other, joined + 1, ROOT, 1, 0), error
    if kind == "unknown_worker":
        unknown = deal_manager.workerCount() + 1
        return (unknown, joined + 1, ROOT, 1, 0), (deal_manager.DealWorkerNotFound, {"workerId": unknown})
    assert kind == "duplicate"
    entry = valid_entries[duplicate_of]
    return entry, (deal_manager.DealProofAlreadySubmitted, {"workerId": entry[0], "epoch": entry[1]})


@pytest.mark.parametrize("bad_kind", BAD_KINDS)
@settings(onchain_settings, max_examples=3)
@given(case=bad_batches())
def test_bad_batch_entry_records_nothing(
    chain, build, deal_manager, providers, signers, clock, bad_kind, case
):
    with isolated(chain):
        clock.advance(1)
        # Two deals on one peer of signers[0], so one signer proves two workers,
        # and a worker of the first deal on a peer of signers[1].
        _, [own_peer] = build.offer(providers[0], signers=[signers[0].address])
        _, [other_peer] = build.offer(providers[1], signers=[signers[1].address])
        first_deal = build.deal(targetWorkers=2)
        _, [first, other] = build.match(first_deal, [own_peer, other_peer])
        second_deal = build.deal(targetWorkers=1)
        _, [second] = build.match(second_deal, [own_peer])
        workers = {"first": first, "second": second, "other": other}
        joined = deal_manager.getWorker(first).joinedEpoch
        assert deal_manager.getWorker(second).joinedEpoch == joined
        now = joined + WINDOW + 1
        clock.goto_epoch(now)

        valid_entries = [(workers[name], joined + offset, ROOT, 1, 0) for name, offset in case["valid"]]
        bad_entry, (error_type, error_inputs) = _bad_entry(
            deal_manager, bad_kind, workers, joined, now, valid_entries, case["duplicate_of"], signers
        )
        entries = list(valid_entries)
        entries.insert(case["bad_position"], bad_entry)

        with reverts_with(error_type, **error_inputs):
            deal_manager.submitEpochProofs(entries, sender=signers[0])

        for worker_id, epoch, *_ in valid_entries:
            assert not deal_manager.getEpochProof(worker_id, epoch).proven
        assert deal_manager.proofBatchSubmittedAt(_batch_hash(entries)) == 0

        # Without the bad entry the same batch goes through, so the bad entry alone caused the revert.
        receipt = deal_manager.submitEpochProofs(valid_entries, sender=signers[0])
        for worker_id, epoch, *_ in valid_entries:
            assert deal_manager.getEpochProof(worker_id, epoch).proven
        [log] = events(receipt, deal_manager.EpochProofsSubmitted)
        assert log.batchHash == _batch_hash(valid_entries)
        assert deal_manager.proofBatchSubmittedAt(_batch_hash(valid_entries)) == receipt.timestamp


# ------------------------------------------ claimAndWithdraw against claim


@st.composite
def twin_cases(draw):
    epochs = draw(st.integers(min_value=1, max_value=4))
    usage_billing = draw(st.booleans())
    usage_cap = draw(st.integers(min_value=1, max_value=5_000_000)) if usage_billing else 0
    usage_price = draw(st.integers(min_value=1, max_value=3 * USDC)) if usage_billing else 0
    rate = BASE_RATE + usage_cap * usage_price // 10**6
    return {
        "epochs": epochs,
        "usage_billing": usage_billing,
        "usage_price": usage_price,
        "usage_cap": usage_cap,
        "funded": draw(st.integers(min_value=MIN_DEPOSITED_EPOCHS, max_value=epochs + 1)),
        "leftover": draw(st.integers(min_value=0, max_value=rate - 1)),
        "proofs": draw(st.lists(st.booleans(), min_size=epochs, max_size=epochs)),
        "usage": draw(st.lists(st.integers(min_value=0, max_value=2 * usage_cap), min_size=epochs, max_size=epochs)),
    }


@onchain_settings
@given(case=twin_cases())
# USAGE billing with a usage above the cap and a run-out before the last proven epoch.
@example(
    case={
        "epochs": 3,
        "usage_billing": True,
        "usage_price": 1_500_000,
        "usage_cap": 1_000_000,
        "funded": 2,
        "leftover": 7,
        "proofs": [True, True, True],
        "usage": [500_000, 2_000_000, 999_999],
    }
)
# Nothing proven: claimAndWithdraw claims the worker but sends nothing.
@example(
    case={
        "epochs": 2,
        "usage_billing": False,
        "usage_price": 0,
        "usage_cap": 0,
        "funded": 3,
        "leftover": 0,
        "proofs": [False, False],
        "usage": [0, 0],
    }
)
def test_claim_and_withdraw_matches_claim(
    chain, build, deal_manager, usdc, providers, signers, clock, case
):
    provider = providers[0]
    epochs, funded, proofs, usage = case["epochs"], case["funded"], case["proofs"], case["usage"]
    usage_price, usage_cap = case["usage_price"], case["usage_cap"]
    rate = BASE_RATE + usage_cap * usage_price // 10**6
    deposit = funded * rate + case["leftover"]
    terms = {
        "billingMode": 1 if case["usage_billing"] else 0,
        "usagePricePerMegafuel": usage_price,
        "maxUsagePerWorkerEpoch": usage_cap,
    }

    with isolated(chain):
        clock.advance(1)
        # Twin deals: same terms and deposit, one worker each on two peers of one provider.
        _, peer_ids = build.offer(provider, cus=(8, 8), signers=[signers[0].address, signers[1].address])
        twins = []
        for peer_id in peer_ids:
            deal_id = build.deal(
                maxPricePerCuPerEpoch=PRICE,
                cuPerWorker=CUS,
                targetWorkers=1,
                maxWorkersPerProvider=1,
                deposit=deposit,
                **terms,
            )
            _, [worker_id] = build.match(deal_id, [peer_id])
            twins.append((deal_id, worker_id))
        (deal_a, worker_a), (deal_b, worker_b) = twins
        start = deal_manager.getWorker(worker_a).joinedEpoch
        assert deal_manager.getDeal(deal_a).startEpoch == start
        assert deal_manager.getWorker(worker_b).joinedEpoch == start
        assert deal_manager.workerEpochRate(worker_a) == rate

        for epoch in range(start, start + epochs):
            clock.goto_epoch(epoch + 1)
            if proofs[epoch - start]:
                for worker_id, signer in ((worker_a, signers[0]), (worker_b, signers[1])):
                    _prove(deal_manager, worker_id, epoch, signer, usage=usage[epoch - start])
        clock.goto_epoch(start + epochs + WINDOW)

        expected_paid = 0
        for offset in range(min(epochs, funded)):
            if proofs[offset]:
                expected_paid += BASE_RATE + min(usage[offset], usage_cap) * usage_price // 10**6

        claim_receipt = deal_manager.claim(worker_a, deal_manager.maxClaimEpoch(worker_a), sender=provider)
        credited = deal_manager.earnings(provider, usdc)
        preview = deal_manager.claimAndWithdraw.call([worker_b], sender=provider)
        balance_before = usdc.balanceOf(provider)
        withdraw_receipt = deal_manager.claimAndWithdraw([worker_b], sender=provider)
        paid = usdc.balanceOf(provider) - balance_before

        assert credited == expected_paid
        assert paid == expected_paid
        assert preview == expected_paid
        # Earnings credited by claim stay for withdrawEarnings.
        assert deal_manager.earnings(provider, usdc) == credited

        [log_a] = events(claim_receipt, deal_manager.WorkerClaimed)
        [log_b] = events(withdraw_receipt, deal_manager.WorkerClaimed)
        fields = ("fromEpoch", "toEpoch", "provenEpochs", "paid", "returned")
        assert [getattr(log_b, name) for name in fields] == [getattr(log_a, name) for name in fields]
        withdrawn = events(withdraw_receipt, deal_manager.EarningsWithdrawn)
        if expected_paid > 0:
            # `log.provider` is ape's chain provider, so the event field is read by key.
            assert [(log["provider"], log["token"], log["amount"]) for log in withdrawn] == [
                (provider.address, usdc.address, expected_paid)
            ]
        else:
            assert withdrawn == []

        deal_a_after, deal_b_after = deal_manager.getDeal(deal_a), deal_manager.getDeal(deal_b)
        assert (deal_b_after.balance, deal_b_after.pending) == (deal_a_after.balance, deal_a_after.pending)
