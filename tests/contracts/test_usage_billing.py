"""USAGE billing: a base rate plus metered fuel at the deal's usage price, capped per worker and epoch."""

import ape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract_helpers import MIN_DEPOSITED_EPOCHS, PROOF_WINDOW_EPOCHS, USDC, events

USAGE = 1
USAGE_PRICE = 40_000  # base units per 10**6 fuel
USAGE_CAP = 2_500_000  # fuel per worker and epoch
USAGE_RESERVE = USAGE_CAP * USAGE_PRICE // 1_000_000  # 100,000 base units, 0.1 USDC
BASE_PRICE = 3
CUS = 2
ROOT = b"\x21" * 32


def usage_deal(build, provider, price=BASE_PRICE, **overrides):
    """Create a USAGE deal with one worker on a new peer; return (deal id, worker id)."""
    terms = dict(
        billingMode=USAGE,
        maxPricePerCuPerEpoch=price,
        cuPerWorker=CUS,
        targetWorkers=1,
        maxWorkersPerProvider=1,
        usagePricePerMegafuel=USAGE_PRICE,
        maxUsagePerWorkerEpoch=USAGE_CAP,
        deposit=10 * USDC,
    )
    terms.update(overrides)
    deal_id, worker_id, _ = build.matched_deal(provider, price=price, **terms)
    return deal_id, worker_id


def charge(fuel: int) -> int:
    return min(fuel, USAGE_CAP) * USAGE_PRICE // 1_000_000


def test_usage_deal_reserves_base_rate_and_usage_cap(build, deal_manager, provider):
    deal_id, worker_id = usage_deal(build, provider)

    deal = deal_manager.getDeal(deal_id)
    assert (deal.billingMode, deal.usagePricePerMegafuel, deal.maxUsagePerWorkerEpoch) == (
        USAGE,
        USAGE_PRICE,
        USAGE_CAP,
    )
    assert deal_manager.workerEpochRate(worker_id) == BASE_PRICE * CUS + USAGE_RESERVE
    assert deal.ratePerEpoch == BASE_PRICE * CUS + USAGE_RESERVE
    assert deal_manager.reserveOf(deal_id) == (BASE_PRICE * CUS + USAGE_RESERVE) * MIN_DEPOSITED_EPOCHS


def test_usage_deal_accepts_zero_base_price(build, deal_manager, provider, clock, signers):
    deal_id, worker_id = usage_deal(build, provider, price=0)
    joined = clock.epoch()
    clock.advance(1)
    deal_manager.submitEpochProof(worker_id, joined, ROOT, 1, 1_000_000, sender=signers[0])
    clock.advance(PROOF_WINDOW_EPOCHS)

    receipt = deal_manager.claim(worker_id, joined + 1, sender=provider)

    [log] = events(receipt, deal_manager.WorkerClaimed)
    assert (log.paid, log.returned) == (charge(1_000_000), USAGE_RESERVE - charge(1_000_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fuel=st.lists(st.integers(min_value=0, max_value=2 * USAGE_CAP), min_size=2, max_size=2))
def test_usage_claim_pays_base_plus_capped_fuel(chain, build, deal_manager, provider, clock, signers, fuel):
    """Each proven epoch pays the base rate plus min(fuel, cap) at the usage price; the rest goes back."""
    snapshot = chain.snapshot()
    # The chain is restored after each example, so the first signer is free again.
    build.next_signer = 0
    try:
        _, worker_id = usage_deal(build, provider)
        joined = clock.epoch()
        # Both epochs are still inside the proof window of PROOF_WINDOW_EPOCHS (2).
        clock.advance(2)
        entries = [(worker_id, joined + i, ROOT, 1, used) for i, used in enumerate(fuel)]
        deal_manager.submitEpochProofs(entries, sender=signers[0])
        for i, used in enumerate(fuel):
            assert deal_manager.getEpochProof(worker_id, joined + i).usage == used
        clock.advance(PROOF_WINDOW_EPOCHS)

        receipt = deal_manager.claim(worker_id, joined + 2, sender=provider)

        [log] = events(receipt, deal_manager.WorkerClaimed)
        expected = 2 * BASE_PRICE * CUS + sum(charge(used) for used in fuel)
        assert log.paid == expected
        assert log.paid + log.returned == 2 * (BASE_PRICE * CUS + USAGE_RESERVE)
        assert deal_manager.earnings(provider, build.usdc) == expected
    finally:
        chain.restore(snapshot)


def test_usage_claim_of_unproven_epoch_returns_everything(build, deal_manager, provider, clock):
    deal_id, worker_id = usage_deal(build, provider)
    joined = clock.epoch()
    clock.advance(1 + PROOF_WINDOW_EPOCHS)
    balance = deal_manager.dealBalance(deal_id)

    receipt = deal_manager.claim(worker_id, joined + 1, sender=provider)

    [log] = events(receipt, deal_manager.WorkerClaimed)
    assert (log.provenEpochs, log.paid, log.returned) == (0, 0, BASE_PRICE * CUS + USAGE_RESERVE)
    assert deal_manager.dealBalance(deal_id) == balance + BASE_PRICE * CUS + USAGE_RESERVE


def test_subscription_proof_does_not_store_usage(build, deal_manager, provider, clock, signers):
    _, worker_id, _ = build.matched_deal(provider)
    joined = clock.epoch()
    clock.advance(1)

    deal_manager.submitEpochProof(worker_id, joined, ROOT, 1, 777, sender=signers[0])

    proof = deal_manager.getEpochProof(worker_id, joined)
    assert (proof.proven, proof.usage) == (True, 0)


def test_usage_deal_rejects_missing_usage_terms(build, deal_manager, developer):
    with ape.reverts(deal_manager.DealInvalidParams, field="usagePricePerMegafuel"):
        build.deal(billingMode=USAGE, usagePricePerMegafuel=0, maxUsagePerWorkerEpoch=USAGE_CAP)
    with ape.reverts(deal_manager.DealInvalidParams, field="maxUsagePerWorkerEpoch"):
        build.deal(billingMode=USAGE, usagePricePerMegafuel=USAGE_PRICE, maxUsagePerWorkerEpoch=0)


def test_subscription_deal_rejects_usage_terms(build, deal_manager):
    with ape.reverts(deal_manager.DealInvalidParams, field="usagePricePerMegafuel"):
        build.deal(usagePricePerMegafuel=USAGE_PRICE)
    with ape.reverts(deal_manager.DealInvalidParams, field="maxUsagePerWorkerEpoch"):
        build.deal(maxUsagePerWorkerEpoch=USAGE_CAP)


def test_usage_deal_deposit_must_cover_usage_reserve(build, deal_manager):
    reserve = (BASE_PRICE * 2 + USAGE_RESERVE) * 2 * MIN_DEPOSITED_EPOCHS

    with ape.reverts(deal_manager.DealDepositBelowReserve, deposit=reserve - 1, reserve=reserve):
        build.deal(
            billingMode=USAGE,
            maxPricePerCuPerEpoch=BASE_PRICE,
            cuPerWorker=2,
            targetWorkers=2,
            usagePricePerMegafuel=USAGE_PRICE,
            maxUsagePerWorkerEpoch=USAGE_CAP,
            deposit=reserve - 1,
        )
