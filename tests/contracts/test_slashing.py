"""Slashing accounting in the Market: stake first, then unbonding FLT; a share for the reporter; the rest to the treasury."""

import ape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract_helpers import FLT, events

REASON = b"missed-challenge".ljust(32, b"\0")
STAKE = 10_000 * FLT  # what conftest stakes for each provider
ZERO_ADDRESS = "0x" + "00" * 20


def flt_in_market(market, flt, providers, reporter):
    stored = [market.getProvider(account) for account in providers]
    return sum(p.stake + p.unbonding for p in stored) + market.slashRewards(reporter) + market.treasuryBalance()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    unbond=st.integers(min_value=0, max_value=5_000),
    amount=st.integers(min_value=1, max_value=20_000),
    share_bps=st.integers(min_value=0, max_value=10_000),
)
def test_slash_takes_stake_then_unbonding_and_splits(
    chain, market, flt, admin, provider, providers, stranger, unbond, amount, share_bps
):
    snapshot = chain.snapshot()
    try:
        market.setSlasher(admin, True, sender=admin)
        market.setSlashReporterShareBps(share_bps, sender=admin)
        if unbond:
            market.requestUnstake(unbond * FLT, sender=provider)
        stake, unbonding = STAKE - unbond * FLT, unbond * FLT
        slashed = min(amount * FLT, stake + unbonding)

        receipt = market.slash(provider, amount * FLT, stranger, REASON, sender=admin)

        share = slashed * share_bps // 10_000
        [log] = events(receipt, market.ProviderSlashed)
        # `log.provider` is Ape's network provider, so the argument is read by key.
        assert (log["provider"], log.reporter, log.amount, log.reporterShare, log.reason) == (
            provider.address,
            stranger.address,
            slashed,
            share,
            REASON,
        )
        stored = market.getProvider(provider)
        assert stored.stake == max(stake - amount * FLT, 0)
        assert stored.stake + stored.unbonding == stake + unbonding - slashed
        assert market.slashRewards(stranger) == share
        assert market.treasuryBalance() == slashed - share
        assert flt.balanceOf(market) == flt_in_market(market, flt, providers, stranger)
    finally:
        chain.restore(snapshot)


def test_slash_without_reporter_sends_everything_to_treasury(market, admin, provider):
    market.setSlasher(admin, True, sender=admin)

    market.slash(provider, 100 * FLT, ZERO_ADDRESS, REASON, sender=admin)

    assert market.treasuryBalance() == 100 * FLT
    assert market.slashRewards(ZERO_ADDRESS) == 0


def test_slashed_provider_below_collateral_gets_no_new_workers(build, market, admin, provider, deal_manager):
    _, peer_ids = build.offer(provider, cus=(8,))
    deal_id = build.deal()
    market.setSlasher(admin, True, sender=admin)
    market.slash(provider, STAKE - 7 * 10**18, ZERO_ADDRESS, REASON, sender=admin)  # 7 FLT left for 8 CUs

    with ape.reverts(deal_manager.DealNoWorkerPlaced, dealId=deal_id):
        deal_manager.matchDeal(deal_id, peer_ids, sender=build.developer)
    assert market.peerPlacement(peer_ids[0]).stakeCovered is False


def test_reporter_withdraws_reward_and_owner_withdraws_treasury(market, flt, admin, provider, stranger):
    market.setSlasher(admin, True, sender=admin)
    market.slash(provider, 1_000 * FLT, stranger, REASON, sender=admin)
    before = flt.balanceOf(stranger)

    receipt = market.withdrawSlashReward(sender=stranger)

    assert flt.balanceOf(stranger) == before + 500 * FLT
    [log] = events(receipt, market.SlashRewardWithdrawn)
    assert (log.reporter, log.amount) == (stranger.address, 500 * FLT)
    with ape.reverts(market.MarketNoSlashReward, account=stranger.address):
        market.withdrawSlashReward(sender=stranger)

    with ape.reverts(market.MarketTreasuryTooLow, requested=501 * FLT, balance=500 * FLT):
        market.withdrawTreasury(admin, 501 * FLT, sender=admin)
    market.withdrawTreasury(admin, 500 * FLT, sender=admin)
    assert market.treasuryBalance() == 0


def test_slash_needs_slasher_and_amount(market, admin, provider, stranger):
    with ape.reverts(market.MarketNotSlasher, caller=stranger.address):
        market.slash(provider, FLT, stranger, REASON, sender=stranger)

    market.setSlasher(stranger, True, sender=admin)
    with ape.reverts(market.MarketZeroAmount):
        market.slash(provider, 0, stranger, REASON, sender=stranger)
    with ape.reverts(market.MarketProviderNotRegistered, provider=admin.address):
        market.slash(admin, FLT, stranger, REASON, sender=stranger)

    market.setSlasher(stranger, False, sender=admin)
    with ape.reverts(market.MarketNotSlasher, caller=stranger.address):
        market.slash(provider, FLT, stranger, REASON, sender=stranger)


def test_reporter_share_is_bounded(market, admin):
    with ape.reverts(market.MarketInvalidShare, shareBps=10_001):
        market.setSlashReporterShareBps(10_001, sender=admin)
    receipt = market.setSlashReporterShareBps(2_500, sender=admin)
    assert market.slashReporterShareBps() == 2_500
    [log] = events(receipt, market.SlashReporterShareSet)
    assert log.shareBps == 2_500
