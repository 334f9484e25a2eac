"""Market: providers, stake, unbonding, offers, peers and the DealManager callbacks."""

import ape
import pytest

from contract_helpers import (
    COLLATERAL_PER_CU,
    FLT,
    PRICE,
    REGION,
    UNBONDING_SECONDS,
    events,
)
from revert_checks import assert_call_reverts, assert_deploy_reverts

ZERO_ADDRESS = "0x" + "00" * 20


def _terms(token, price=PRICE, region=REGION, tier=3, sla=9_990):
    return (token, price, region, tier, sla, 2, 2_048)


@pytest.fixture
def newcomer(flt, market, admin, stranger):
    """An account with FLT that approved the Market but is not registered."""
    flt.mint(stranger, 1_000 * FLT, sender=admin)
    flt.approve(market, 2**256 - 1, sender=stranger)
    return stranger


@pytest.fixture
def bare_market(project, admin, flt, stranger, provider):
    """A second Market whose DealManager is an EOA, so tests can call the callbacks directly."""
    deployed = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)
    deployed.setDealManager(stranger, sender=admin)
    flt.approve(deployed, 2**256 - 1, sender=provider)
    return deployed


# ----------------------------------------------------------------- constructor


def test_constructor_stores_parameters(market, flt, admin):
    assert market.flt() == flt
    assert market.collateralPerCu() == COLLATERAL_PER_CU
    assert market.unbondingPeriod() == UNBONDING_SECONDS
    assert market.owner() == admin
    assert market.offerCount() == 0
    assert market.peerCount() == 0


def test_constructor_rejects_zero_flt(project, admin):
    arguments = [ZERO_ADDRESS, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin.address]

    assert_deploy_reverts(project.Market, arguments, project.Market.MarketZeroAddress, field="flt")


# ------------------------------------------------------------------- providers


def test_register_provider_stores_name(market, newcomer):
    receipt = market.registerProvider("acme", sender=newcomer)

    stored = market.getProvider(newcomer)
    assert stored.registered
    assert stored.name == "acme"
    assert stored.stake == 0
    assert stored.totalCus == 0
    [log] = events(receipt, market.ProviderRegistered)
    assert log["provider"] == newcomer
    assert log.name == "acme"


def test_register_provider_rejects_second_call(market, provider):
    with ape.reverts(market.MarketProviderAlreadyRegistered, provider=provider.address):
        market.registerProvider("again", sender=provider)


def test_stake_pulls_flt(market, flt, provider):
    before_wallet = flt.balanceOf(provider)
    before_stake = market.getProvider(provider).stake

    receipt = market.stake(5 * FLT, sender=provider)

    assert flt.balanceOf(provider) == before_wallet - 5 * FLT
    assert market.getProvider(provider).stake == before_stake + 5 * FLT
    [log] = events(receipt, market.Staked)
    assert log.amount == 5 * FLT
    assert log.totalStake == before_stake + 5 * FLT


def test_stake_rejects_unregistered(market, newcomer):
    with ape.reverts(market.MarketProviderNotRegistered, provider=newcomer.address):
        market.stake(FLT, sender=newcomer)


def test_stake_rejects_zero(market, provider):
    with ape.reverts(market.MarketZeroAmount):
        market.stake(0, sender=provider)


def test_request_unstake_moves_stake_to_unbonding(chain, market, provider):
    stake = market.getProvider(provider).stake

    receipt = market.requestUnstake(3 * FLT, sender=provider)

    stored = market.getProvider(provider)
    assert stored.stake == stake - 3 * FLT
    assert stored.unbonding == 3 * FLT
    assert stored.unbondingEnd == receipt.timestamp + UNBONDING_SECONDS
    [log] = events(receipt, market.UnstakeRequested)
    assert log.amount == 3 * FLT
    assert log.unbondingEnd == stored.unbondingEnd


def test_request_unstake_adds_and_restarts_period(chain, market, provider):
    market.requestUnstake(FLT, sender=provider)
    chain.mine(deltatime=100)

    receipt = market.requestUnstake(2 * FLT, sender=provider)

    stored = market.getProvider(provider)
    assert stored.unbonding == 3 * FLT
    assert stored.unbondingEnd == receipt.timestamp + UNBONDING_SECONDS


def test_request_unstake_keeps_stake_for_offered_cus(build, market, provider):
    build.offer(provider, cus=(8,))
    stake = market.getProvider(provider).stake
    required = market.requiredStake(provider)
    assert required == 8 * COLLATERAL_PER_CU
    free = stake - required

    market.requestUnstake(free, sender=provider)

    with ape.reverts(market.MarketInsufficientStake, provider=provider.address, stake=required, required=required + 1):
        market.requestUnstake(1, sender=provider)


def test_request_unstake_rejects_zero(market, provider):
    with ape.reverts(market.MarketZeroAmount):
        market.requestUnstake(0, sender=provider)


def test_request_unstake_rejects_unregistered(market, newcomer):
    with ape.reverts(market.MarketProviderNotRegistered):
        market.requestUnstake(1, sender=newcomer)


def test_withdraw_unstaked_after_period(chain, market, flt, provider):
    receipt = market.requestUnstake(4 * FLT, sender=provider)
    chain.mine(timestamp=receipt.timestamp + UNBONDING_SECONDS)
    before = flt.balanceOf(provider)

    receipt = market.withdrawUnstaked(sender=provider)

    assert flt.balanceOf(provider) == before + 4 * FLT
    assert market.getProvider(provider).unbonding == 0
    [log] = events(receipt, market.UnstakeWithdrawn)
    assert log.amount == 4 * FLT


def test_withdraw_unstaked_rejects_before_period(market, provider):
    receipt = market.requestUnstake(FLT, sender=provider)
    end = receipt.timestamp + UNBONDING_SECONDS

    with ape.reverts(market.MarketUnbondingNotFinished, provider=provider.address, unbondingEnd=end):
        market.withdrawUnstaked(sender=provider)


def test_withdraw_unstaked_rejects_nothing_unbonding(market, provider):
    with ape.reverts(market.MarketNothingUnbonding, provider=provider.address):
        market.withdrawUnstaked(sender=provider)


def test_set_provider_endpoint_stores_url(market, provider):
    receipt = market.setProviderEndpoint("http://127.0.0.1:8701", sender=provider)

    assert market.providerEndpoint(provider) == "http://127.0.0.1:8701"
    [log] = events(receipt, market.ProviderEndpointSet)
    assert (log["provider"], log.endpoint) == (provider, "http://127.0.0.1:8701")


def test_provider_endpoint_is_empty_until_set(market, provider):
    assert market.providerEndpoint(provider) == ""


@pytest.mark.parametrize("length", [0, 257])
def test_set_provider_endpoint_rejects_invalid_length(market, provider, length):
    with ape.reverts(market.MarketInvalidEndpoint, length=length, maxLength=256):
        market.setProviderEndpoint("h" * length, sender=provider)


def test_set_provider_endpoint_rejects_unregistered(market, newcomer):
    with ape.reverts(market.MarketProviderNotRegistered, provider=newcomer.address):
        market.setProviderEndpoint("http://127.0.0.1:8701", sender=newcomer)


# ---------------------------------------------------------------------- offers


def test_create_offer_stores_terms_and_peers(market, usdc, provider, signers):
    terms = _terms(usdc)
    peers = [(signers[0], 4), (signers[1], 6)]

    receipt = market.createOffer(terms, peers, sender=provider)

    assert market.offerCount() == 1
    offer = market.getOffer(1)
    assert offer.provider == provider
    assert offer.terms.paymentToken == usdc
    assert offer.terms.pricePerCuPerEpoch == PRICE
    assert offer.terms.region == REGION
    assert not offer.paused
    assert list(offer.peerIds) == [1, 2]
    first = market.getPeer(1)
    assert (first.offerId, first.signer, first.totalCus, first.freeCus, first.removed) == (1, signers[0], 4, 4, False)
    assert market.peerIdBySigner(signers[1]) == 2
    assert market.getProvider(provider).totalCus == 10
    assert market.requiredStake(provider) == 10 * COLLATERAL_PER_CU
    [created] = events(receipt, market.OfferCreated)
    assert created.offerId == 1
    assert created["provider"] == provider
    added = events(receipt, market.PeerAdded)
    assert [(log.peerId, log.signer, log.cus) for log in added] == [(1, signers[0], 4), (2, signers[1], 6)]


@pytest.mark.parametrize(
    ("terms_change", "field"),
    [
        ({"token": ZERO_ADDRESS}, "paymentToken"),
        ({"tier": 0}, "tier"),
        ({"tier": 5}, "tier"),
        ({"sla": 10_001}, "slaBps"),
    ],
)
def test_create_offer_rejects_invalid_terms(market, usdc, provider, signers, terms_change, field):
    arguments = {"token": usdc.address} | terms_change
    terms = _terms(**arguments)

    with ape.reverts(market.MarketInvalidOfferTerms, field=field):
        market.createOffer(terms, [(signers[0], 4)], sender=provider)


def test_create_offer_accepts_zero_price(market, usdc, provider, signers):
    # A free base rate, for USAGE deals that pay for metered fuel only.
    receipt = market.createOffer(_terms(usdc, price=0), [(signers[0], 4)], sender=provider)

    [created] = events(receipt, market.OfferCreated)
    assert market.getOffer(created.offerId).terms.pricePerCuPerEpoch == 0


def test_create_offer_rejects_no_peers(market, usdc, provider):
    with ape.reverts(market.MarketNoPeers):
        market.createOffer(_terms(usdc), [], sender=provider)


def test_create_offer_rejects_zero_cus(market, usdc, provider, signers):
    with ape.reverts(market.MarketZeroCus, signer=signers[0].address):
        market.createOffer(_terms(usdc), [(signers[0], 0)], sender=provider)


def test_create_offer_rejects_zero_signer(market, usdc, provider):
    with ape.reverts(market.MarketZeroAddress, field="signer"):
        market.createOffer(_terms(usdc), [(ZERO_ADDRESS, 1)], sender=provider)


def test_create_offer_rejects_signer_of_live_peer(build, market, usdc, providers, signers):
    build.offer(providers[0], cus=(2,), signers=[signers[0].address])

    with ape.reverts(market.MarketSignerInUse, signer=signers[0].address, peerId=1):
        market.createOffer(_terms(usdc), [(signers[0], 1)], sender=providers[1])


def test_create_offer_rejects_duplicate_signer_in_list(market, usdc, provider, signers):
    peers = [(signers[0], 1), (signers[0], 2)]

    with ape.reverts(market.MarketSignerInUse, signer=signers[0].address, peerId=1):
        market.createOffer(_terms(usdc), peers, sender=provider)


def test_create_offer_rejects_insufficient_stake(market, usdc, provider, signers):
    stake = market.getProvider(provider).stake
    cus = stake // COLLATERAL_PER_CU + 1

    with ape.reverts(market.MarketInsufficientStake, stake=stake, required=cus * COLLATERAL_PER_CU):
        market.createOffer(_terms(usdc), [(signers[0], cus)], sender=provider)


def test_create_offer_rejects_unregistered(market, usdc, newcomer, signers):
    with ape.reverts(market.MarketProviderNotRegistered, provider=newcomer.address):
        market.createOffer(_terms(usdc), [(signers[0], 1)], sender=newcomer)


def test_set_offer_price_changes_price(build, market, provider):
    offer_id, _ = build.offer(provider)

    receipt = market.setOfferPrice(offer_id, 77, sender=provider)

    assert market.getOffer(offer_id).terms.pricePerCuPerEpoch == 77
    [log] = events(receipt, market.OfferPriceChanged)
    assert (log.offerId, log.pricePerCuPerEpoch) == (offer_id, 77)


def test_set_offer_price_accepts_zero(build, market, provider):
    offer_id, _ = build.offer(provider)

    receipt = market.setOfferPrice(offer_id, 0, sender=provider)

    assert market.getOffer(offer_id).terms.pricePerCuPerEpoch == 0
    [log] = events(receipt, market.OfferPriceChanged)
    assert (log.offerId, log.pricePerCuPerEpoch) == (offer_id, 0)


def test_set_offer_price_rejects_non_owner(build, market, providers):
    offer_id, _ = build.offer(providers[0])

    with ape.reverts(market.MarketNotOfferOwner, offerId=offer_id, caller=providers[1].address):
        market.setOfferPrice(offer_id, 1, sender=providers[1])


def test_set_offer_price_rejects_unknown_offer(market, provider):
    with ape.reverts(market.MarketOfferNotFound, offerId=9):
        market.setOfferPrice(9, 1, sender=provider)


def test_set_offer_paused_toggles(build, market, provider):
    offer_id, _ = build.offer(provider)

    receipt = market.setOfferPaused(offer_id, True, sender=provider)
    assert market.getOffer(offer_id).paused
    [log] = events(receipt, market.OfferPausedSet)
    assert log.paused

    market.setOfferPaused(offer_id, False, sender=provider)
    assert not market.getOffer(offer_id).paused


def test_set_offer_paused_rejects_non_owner(build, market, providers):
    offer_id, _ = build.offer(providers[0])

    with ape.reverts(market.MarketNotOfferOwner):
        market.setOfferPaused(offer_id, True, sender=providers[1])


# ----------------------------------------------------------------------- peers


def test_add_peer_adds_capacity(build, market, provider, signers):
    offer_id, _ = build.offer(provider, cus=(4,), signers=[signers[0].address])

    receipt = market.addPeer(offer_id, (signers[1], 3), sender=provider)

    [log] = events(receipt, market.PeerAdded)
    assert (log.peerId, log.offerId, log.signer, log.cus) == (2, offer_id, signers[1], 3)
    assert list(market.getOffer(offer_id).peerIds) == [1, 2]
    assert market.getProvider(provider).totalCus == 7
    assert market.peerCount() == 2


def test_add_peer_rejects_signer_in_use(build, market, provider, signers):
    offer_id, _ = build.offer(provider, cus=(4,), signers=[signers[0].address])

    with ape.reverts(market.MarketSignerInUse, signer=signers[0].address, peerId=1):
        market.addPeer(offer_id, (signers[0], 3), sender=provider)


def test_add_peer_rejects_insufficient_stake(build, market, provider, signers):
    offer_id, _ = build.offer(provider, cus=(4,), signers=[signers[0].address])
    stake = market.getProvider(provider).stake
    extra = stake // COLLATERAL_PER_CU - 4 + 1

    with ape.reverts(market.MarketInsufficientStake):
        market.addPeer(offer_id, (signers[1], extra), sender=provider)


def test_add_peer_rejects_non_owner(build, market, providers, signers):
    offer_id, _ = build.offer(providers[0], cus=(4,), signers=[signers[0].address])

    with ape.reverts(market.MarketNotOfferOwner):
        market.addPeer(offer_id, (signers[1], 1), sender=providers[1])


def test_set_peer_capacity_changes_total_and_free(build, market, provider):
    _, [peer_id] = build.offer(provider, cus=(4,))

    receipt = market.setPeerCapacity(peer_id, 9, sender=provider)

    peer = market.getPeer(peer_id)
    assert (peer.totalCus, peer.freeCus) == (9, 9)
    assert market.getProvider(provider).totalCus == 9
    [log] = events(receipt, market.PeerCapacityChanged)
    assert (log.totalCus, log.freeCus) == (9, 9)


def test_set_peer_capacity_keeps_used_cus(build, market, provider):
    deal_id, worker_id, peer_id = build.matched_deal(provider, cus=(8,), cuPerWorker=3)

    market.setPeerCapacity(peer_id, 5, sender=provider)
    peer = market.getPeer(peer_id)
    assert (peer.totalCus, peer.freeCus) == (5, 2)

    with ape.reverts(market.MarketCapacityInUse, peerId=peer_id, usedCus=3, requestedTotal=2):
        market.setPeerCapacity(peer_id, 2, sender=provider)


def test_set_peer_capacity_rejects_zero(build, market, provider, signers):
    _, [peer_id] = build.offer(provider, cus=(4,), signers=[signers[0].address])

    with ape.reverts(market.MarketZeroCus, signer=signers[0].address):
        market.setPeerCapacity(peer_id, 0, sender=provider)


def test_set_peer_capacity_rejects_insufficient_stake(build, market, provider):
    _, [peer_id] = build.offer(provider, cus=(4,))
    too_many = market.getProvider(provider).stake // COLLATERAL_PER_CU + 1

    with ape.reverts(market.MarketInsufficientStake):
        market.setPeerCapacity(peer_id, too_many, sender=provider)


def test_set_peer_capacity_rejects_non_owner(build, market, providers):
    _, [peer_id] = build.offer(providers[0], cus=(4,))

    with ape.reverts(market.MarketNotOfferOwner):
        market.setPeerCapacity(peer_id, 5, sender=providers[1])


def test_remove_peer_frees_signer_and_capacity(build, market, usdc, provider, signers):
    offer_id, [peer_id] = build.offer(provider, cus=(4,), signers=[signers[0].address])

    receipt = market.removePeer(peer_id, sender=provider)

    assert market.getPeer(peer_id).removed
    assert market.peerIdBySigner(signers[0]) == 0
    assert market.getProvider(provider).totalCus == 0
    [log] = events(receipt, market.PeerRemoved)
    assert (log.peerId, log.offerId) == (peer_id, offer_id)
    # The freed signer can back a new peer.
    new_peer_id = market.addPeer(offer_id, (signers[0], 2), sender=provider).events[0].peerId
    assert market.peerIdBySigner(signers[0]) == new_peer_id


def test_remove_peer_rejects_peer_with_workers(build, market, provider):
    _, _, peer_id = build.matched_deal(provider, cus=(8,), cuPerWorker=2)

    with ape.reverts(market.MarketCapacityInUse, peerId=peer_id, usedCus=2, requestedTotal=0):
        market.removePeer(peer_id, sender=provider)


def test_remove_peer_rejects_removed_peer(build, market, provider):
    _, [peer_id] = build.offer(provider, cus=(4,))
    market.removePeer(peer_id, sender=provider)

    with ape.reverts(market.MarketPeerNotFound, peerId=peer_id):
        market.removePeer(peer_id, sender=provider)


def test_remove_peer_rejects_non_owner(build, market, providers):
    _, [peer_id] = build.offer(providers[0], cus=(4,))

    with ape.reverts(market.MarketNotOfferOwner):
        market.removePeer(peer_id, sender=providers[1])


# ------------------------------------------------------ deal manager callbacks


def test_allocate_and_release_cus(build, bare_market, provider, stranger, signers, usdc):
    bare_market.registerProvider("p", sender=provider)
    bare_market.stake(100 * FLT, sender=provider)
    bare_market.createOffer(_terms(usdc), [(signers[0], 5)], sender=provider)

    allocated = bare_market.allocateCus(1, 3, sender=stranger)
    assert bare_market.getPeer(1).freeCus == 2
    [log] = events(allocated, bare_market.CusAllocated)
    assert (log.peerId, log.cus, log.freeCus) == (1, 3, 2)

    released = bare_market.releaseCus(1, 2, sender=stranger)
    assert bare_market.getPeer(1).freeCus == 4
    [log] = events(released, bare_market.CusReleased)
    assert (log.cus, log.freeCus) == (2, 4)


def test_allocate_cus_rejects_more_than_free(bare_market, provider, stranger, signers, usdc):
    bare_market.registerProvider("p", sender=provider)
    bare_market.stake(100 * FLT, sender=provider)
    bare_market.createOffer(_terms(usdc), [(signers[0], 5)], sender=provider)

    with ape.reverts(bare_market.MarketNotEnoughFreeCus, peerId=1, freeCus=5, requested=6):
        bare_market.allocateCus(1, 6, sender=stranger)


def test_release_cus_rejects_more_than_used(bare_market, provider, stranger, signers, usdc):
    bare_market.registerProvider("p", sender=provider)
    bare_market.stake(100 * FLT, sender=provider)
    bare_market.createOffer(_terms(usdc), [(signers[0], 5)], sender=provider)
    bare_market.allocateCus(1, 2, sender=stranger)

    with ape.reverts(bare_market.MarketReleaseExceedsUsed, peerId=1, usedCus=2, requested=3):
        bare_market.releaseCus(1, 3, sender=stranger)


def test_allocate_cus_rejects_unknown_peer(bare_market, stranger):
    with ape.reverts(bare_market.MarketPeerNotFound, peerId=1):
        bare_market.allocateCus(1, 1, sender=stranger)


@pytest.mark.parametrize("callback", ["allocateCus", "releaseCus"])
def test_callbacks_reject_other_callers(build, market, provider, callback):
    _, [peer_id] = build.offer(provider, cus=(4,))

    with ape.reverts(market.MarketNotDealManager, caller=provider.address):
        getattr(market, callback)(peer_id, 1, sender=provider)


def test_set_deal_manager_rejects_second_call(market, deal_manager, admin, stranger):
    assert market.dealManager() == deal_manager

    with ape.reverts(market.MarketDealManagerAlreadySet, dealManager=deal_manager.address):
        market.setDealManager(stranger, sender=admin)


def test_set_deal_manager_rejects_zero(project, flt, admin):
    fresh = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)

    with ape.reverts(fresh.MarketZeroAddress, field="dealManager"):
        fresh.setDealManager(ZERO_ADDRESS, sender=admin)


def test_set_deal_manager_rejects_non_owner(project, flt, admin, stranger):
    fresh = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)

    with ape.reverts(fresh.OwnableUnauthorizedAccount, account=stranger.address):
        fresh.setDealManager(stranger, sender=stranger)


def test_set_deal_manager_emits(project, flt, admin, stranger):
    fresh = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)

    receipt = fresh.setDealManager(stranger, sender=admin)

    assert fresh.dealManager() == stranger
    [log] = events(receipt, fresh.DealManagerSet)
    assert log.dealManager == stranger


# ----------------------------------------------------------------------- admin


def test_set_collateral_per_cu_raises_required_stake(build, market, admin, provider):
    build.offer(provider, cus=(4,))

    receipt = market.setCollateralPerCu(3 * COLLATERAL_PER_CU, sender=admin)

    assert market.collateralPerCu() == 3 * COLLATERAL_PER_CU
    assert market.requiredStake(provider) == 12 * COLLATERAL_PER_CU
    [log] = events(receipt, market.CollateralPerCuSet)
    assert log.collateralPerCu == 3 * COLLATERAL_PER_CU


def test_set_collateral_per_cu_rejects_non_owner(market, stranger):
    with ape.reverts(market.OwnableUnauthorizedAccount, account=stranger.address):
        market.setCollateralPerCu(1, sender=stranger)


# ----------------------------------------------------------------------- views


def test_get_offer_rejects_unknown_id(market):
    assert_call_reverts(market, "getOffer", [0], market.MarketOfferNotFound, offerId=0)


def test_get_peer_rejects_unknown_id(market):
    assert_call_reverts(market, "getPeer", [1], market.MarketPeerNotFound, peerId=1)


def test_peer_id_by_signer_is_zero_for_unknown(market, stranger):
    assert market.peerIdBySigner(stranger) == 0
