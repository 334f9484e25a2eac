"""Hypothesis property tests of epoch billing: settlement charges and claim payouts.

Each example runs on the shared chain between a snapshot and a restore, so the
examples do not see each other's deals.
"""

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract_helpers import MIN_DEPOSITED_EPOCHS, PROOF_WINDOW_EPOCHS, events, isolated

onchain_settings = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)



@st.composite
def billing_cases(draw):
    workers = draw(st.integers(min_value=1, max_value=3))
    prices = draw(st.lists(st.integers(min_value=1, max_value=1_000), min_size=workers, max_size=workers))
    cu_per_worker = draw(st.integers(min_value=1, max_value=4))
    cap = max(prices) + draw(st.integers(min_value=0, max_value=50))
    epochs = draw(st.integers(min_value=1, max_value=5))
    rate = sum(prices) * cu_per_worker
    extra_deposit = draw(st.integers(min_value=0, max_value=rate * epochs))
    proofs = draw(
        st.lists(st.lists(st.booleans(), min_size=epochs, max_size=epochs), min_size=workers, max_size=workers)
    )
    return {
        "prices": prices,
        "cu_per_worker": cu_per_worker,
        "cap": cap,
        "epochs": epochs,
        "extra_deposit": extra_deposit,
        "proofs": proofs,
    }


def _place_workers(build, providers, signers, prices, cu_per_worker, cap, deposit):
    peer_ids = []
    for index, price in enumerate(prices):
        _, [peer_id] = build.offer(
            providers[index], cus=(cu_per_worker + index,), price=price, signers=[signers[index].address]
        )
        peer_ids.append(peer_id)
    deal_id = build.deal(
        maxPricePerCuPerEpoch=cap,
        cuPerWorker=cu_per_worker,
        minWorkers=1,
        targetWorkers=len(prices),
        deposit=deposit,
    )
    _, worker_ids = build.match(deal_id, peer_ids)
    return deal_id, worker_ids


@onchain_settings
@given(case=billing_cases())
def test_claims_pay_proven_funded_epochs(chain, build, deal_manager, usdc, providers, signers, clock, case):
    prices, cu_per_worker, epochs = case["prices"], case["cu_per_worker"], case["epochs"]
    reserve = case["cap"] * cu_per_worker * len(prices) * MIN_DEPOSITED_EPOCHS
    deposit = reserve + case["extra_deposit"]
    rate = sum(prices) * cu_per_worker

    with isolated(chain):
        clock.advance(1)
        deal_id, worker_ids = _place_workers(
            build, providers, signers, prices, cu_per_worker, case["cap"], deposit
        )
        joined = clock.epoch()
        assert len(worker_ids) == len(prices)
        for offset in range(epochs):
            clock.goto_epoch(joined + offset + 1)
            for index, worker_id in enumerate(worker_ids):
                if case["proofs"][index][offset]:
                    deal_manager.submitEpochProof(
                        worker_id, joined + offset, b"\x01" * 32, 1, 1, sender=signers[index]
                    )
        clock.goto_epoch(joined + epochs + PROOF_WINDOW_EPOCHS)

        claims = []
        for index, worker_id in enumerate(worker_ids):
            receipt = deal_manager.claim(worker_id, joined + epochs, sender=providers[index])
            claims.extend(events(receipt, deal_manager.WorkerClaimed))

        # Settlement charges whole epochs while the deposit covers the rate.
        # The first claim settles every epoch in one step, so the epochs after
        # the funded ones form a single unfunded span.
        settled = deal_manager.getDeal(deal_id).settledEpoch
        funded = min(settled - joined, deposit // rate)
        charged_total = funded * rate
        assert charged_total <= deposit
        spans = [(span.start, span.end) for span in deal_manager.unfundedSpans(deal_id)]
        assert spans == ([(joined + funded, settled)] if joined + funded < settled else [])

        # A claim covers offsets 0..epochs-1 from the join, and the first `funded` of them are funded.
        funded_in_claim = min(funded, epochs)
        paid_total = 0
        for index, log in enumerate(claims):
            worker_rate = prices[index] * cu_per_worker
            proven = sum(1 for offset in range(funded_in_claim) if case["proofs"][index][offset])
            unproven = funded_in_claim - proven
            assert log.provenEpochs == proven
            assert log.paid == proven * worker_rate
            assert log.returned == unproven * worker_rate
            assert deal_manager.earnings(providers[index], usdc) == log.paid
            paid_total += log.paid

        deal = deal_manager.getDeal(deal_id)
        claimed_epochs_charge = funded_in_claim * rate
        assert deal.pending == charged_total - claimed_epochs_charge
        assert deal.balance == deposit - charged_total + (claimed_epochs_charge - paid_total)
        assert usdc.balanceOf(deal_manager) == deal.balance + deal.pending + paid_total


@st.composite
def settlement_cases(draw):
    prices = draw(st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=3))
    cu_per_worker = draw(st.integers(min_value=1, max_value=3))
    rate = sum(prices) * cu_per_worker
    steps = draw(
        st.lists(
            st.tuples(st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=3 * rate)),
            min_size=1,
            max_size=4,
        )
    )
    return {"prices": prices, "cu_per_worker": cu_per_worker, "steps": steps}


@onchain_settings
@given(case=settlement_cases())
def test_settlement_charges_what_balance_covers(
    chain, build, deal_manager, developer, providers, signers, clock, case
):
    prices, cu_per_worker = case["prices"], case["cu_per_worker"]
    rate = sum(prices) * cu_per_worker
    deposit = max(prices) * cu_per_worker * len(prices) * MIN_DEPOSITED_EPOCHS

    with isolated(chain):
        deal_id, _ = _place_workers(build, providers, signers, prices, cu_per_worker, max(prices), deposit)
        balance = deposit
        pending = 0
        settled = deal_manager.getDeal(deal_id).settledEpoch
        unfunded_epochs = []
        for advance, top_up in case["steps"]:
            if advance:
                clock.advance(advance)
            now = clock.epoch()
            receipt = deal_manager.deposit(deal_id, top_up + 1, sender=developer)

            logs = events(receipt, deal_manager.DealSettled)
            if now > settled:
                [log] = logs
                expected_funded = min(now - settled, balance // rate)
                assert (log.fromEpoch, log.toEpoch, log.fundedEpochs) == (settled, now, expected_funded)
                assert log.charged == expected_funded * rate
                assert log.charged <= balance
                unfunded_epochs.extend(range(settled + expected_funded, now))
                balance -= log.charged
                pending += log.charged
                settled = now
            else:
                assert logs == []
            balance += top_up + 1

            deal = deal_manager.getDeal(deal_id)
            assert (deal.balance, deal.pending, deal.settledEpoch) == (balance, pending, settled)

        spans = [(span.start, span.end) for span in deal_manager.unfundedSpans(deal_id)]
        uncovered = [epoch for span_start, span_end in spans for epoch in range(span_start, span_end)]
        assert uncovered == unfunded_epochs
        # Spans are non-empty, sorted, and never touch, because contiguous ones are merged.
        assert all(span_start < span_end for span_start, span_end in spans)
        assert all(earlier[1] < later[0] for earlier, later in pairwise(spans))
