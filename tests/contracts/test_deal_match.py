"""DealManager.matchDeal: placing workers and every candidate skip reason."""

import ape

from contract_helpers import (
    PRICE,
    UINT64_MAX,
    USDC,
    Access,
    Skip,
    Status,
    events,
    skip_reasons,
)


def test_match_deal_places_worker(build, deal_manager, market, provider, clock):
    epoch = clock.advance(1)
    _, [peer_id] = build.offer(provider, cus=(8,))
    deal_id = build.deal(cuPerWorker=3)

    receipt, [worker_id] = build.match(deal_id, [peer_id])

    worker = deal_manager.getWorker(worker_id)
    assert (worker.dealId, worker.peerId, worker.provider) == (deal_id, peer_id, provider)
    assert (worker.pricePerCuPerEpoch, worker.cus) == (PRICE, 3)
    assert (worker.joinedEpoch, worker.leftEpoch, worker.claimedUntilEpoch) == (epoch, UINT64_MAX, epoch)
    assert worker.active
    assert deal_manager.workerEpochRate(worker_id) == 3 * PRICE
    deal = deal_manager.getDeal(deal_id)
    assert deal.activeWorkers == 1
    assert deal.ratePerEpoch == 3 * PRICE
    assert list(deal_manager.dealWorkerIds(deal_id)) == [worker_id]
    assert market.getPeer(peer_id).freeCus == 5
    [joined] = events(receipt, deal_manager.WorkerJoined)
    assert (joined.dealId, joined.workerId, joined.peerId) == (deal_id, worker_id, peer_id)
    assert (joined.pricePerCuPerEpoch, joined.cus, joined.joinedEpoch) == (PRICE, 3, epoch)
    [allocated] = events(receipt, market.CusAllocated)
    assert (allocated.peerId, allocated.cus, allocated.freeCus) == (peer_id, 3, 5)
    assert deal_manager.dealStatus(deal_id) == Status.ACTIVE


def test_match_deal_places_several_workers(build, deal_manager, providers):
    _, peers_a = build.offer(providers[0], cus=(4,))
    _, peers_b = build.offer(providers[1], cus=(4,), price=PRICE // 2)
    deal_id = build.deal(targetWorkers=2)

    _, worker_ids = build.match(deal_id, peers_a + peers_b)

    assert len(worker_ids) == 2
    assert deal_manager.getDeal(deal_id).ratePerEpoch == 2 * PRICE + 2 * (PRICE // 2)


def test_match_deal_is_open_to_anyone(build, deal_manager, provider, stranger):
    _, [peer_id] = build.offer(provider)
    deal_id = build.deal()

    _, worker_ids = build.match(deal_id, [peer_id], sender=stranger)

    assert len(worker_ids) == 1


def test_match_deal_uses_current_offer_price(build, deal_manager, market, provider):
    offer_id, [peer_id] = build.offer(provider, cus=(8,))
    deal_id = build.deal(targetWorkers=2)
    market.setOfferPrice(offer_id, PRICE // 4, sender=provider)

    _, [worker_id] = build.match(deal_id, [peer_id])
    market.setOfferPrice(offer_id, PRICE, sender=provider)

    assert deal_manager.getWorker(worker_id).pricePerCuPerEpoch == PRICE // 4
    assert deal_manager.getDeal(deal_id).ratePerEpoch == 2 * (PRICE // 4)


def test_match_deal_cap_below_every_offer_places_nothing(build, deal_manager, providers):
    _, peers_a = build.offer(providers[0], price=PRICE + 1)
    _, peers_b = build.offer(providers[1], price=2 * PRICE)
    deal_id = build.deal(maxPricePerCuPerEpoch=PRICE)

    with ape.reverts(deal_manager.DealNoWorkerPlaced, dealId=deal_id):
        deal_manager.matchDeal(deal_id, peers_a + peers_b, sender=providers[0])

    assert deal_manager.getDeal(deal_id).activeWorkers == 0
    assert deal_manager.dealStatus(deal_id) == Status.NOT_ENOUGH_WORKERS


def test_match_deal_rejects_empty_candidate_list(build, deal_manager, developer):
    deal_id = build.deal()

    with ape.reverts(deal_manager.DealNoWorkerPlaced, dealId=deal_id):
        deal_manager.matchDeal(deal_id, [], sender=developer)


def test_match_deal_rejects_unknown_deal(deal_manager, developer):
    with ape.reverts(deal_manager.DealNotFound, dealId=3):
        deal_manager.matchDeal(3, [1], sender=developer)


def test_match_deal_rejects_ended_deal(build, deal_manager, provider, developer, clock):
    _, [peer_id] = build.offer(provider)
    deal_id = build.deal(durationEpochs=1, deposit=10 * USDC)
    clock.advance(1)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.matchDeal(deal_id, [peer_id], sender=developer)


def test_match_deal_rejects_stopped_deal(build, deal_manager, provider, developer):
    _, [peer_id] = build.offer(provider)
    deal_id = build.deal()
    deal_manager.stopDeal(deal_id, sender=developer)

    with ape.reverts(deal_manager.DealEnded, dealId=deal_id):
        deal_manager.matchDeal(deal_id, [peer_id], sender=developer)


# ---------------------------------------------------------------- skip reasons
# Each test lists the bad candidate first and a good one last, so the call
# places a worker and the CandidateSkipped event is kept.


def _good_peer(build, provider):
    _, [peer_id] = build.offer(provider, cus=(8,))
    return peer_id


def test_match_deal_skips_no_free_slot(build, deal_manager, providers):
    first = _good_peer(build, providers[0])
    second = _good_peer(build, providers[1])
    deal_id = build.deal(targetWorkers=1)

    receipt, worker_ids = build.match(deal_id, [first, second])

    assert len(worker_ids) == 1
    assert skip_reasons(receipt, deal_manager) == [(second, Skip.NO_FREE_SLOT)]


def test_match_deal_skips_unknown_and_removed_peers(build, deal_manager, market, providers):
    _, [removed] = build.offer(providers[1], cus=(2,))
    market.removePeer(removed, sender=providers[1])
    good = _good_peer(build, providers[0])
    deal_id = build.deal()

    receipt, _ = build.match(deal_id, [0, 999, removed, good])

    assert skip_reasons(receipt, deal_manager) == [
        (0, Skip.PEER_NOT_FOUND),
        (999, Skip.PEER_NOT_FOUND),
        (removed, Skip.PEER_NOT_FOUND),
    ]


def test_match_deal_skips_offer_paused(build, deal_manager, market, providers):
    offer_id, [paused] = build.offer(providers[1])
    market.setOfferPaused(offer_id, True, sender=providers[1])
    good = _good_peer(build, providers[0])
    deal_id = build.deal()

    receipt, _ = build.match(deal_id, [paused, good])

    assert skip_reasons(receipt, deal_manager) == [(paused, Skip.OFFER_PAUSED)]


def test_match_deal_skips_token_mismatch(build, deal_manager, providers, other_token):
    _, [other] = build.offer(providers[1], token=other_token)
    good = _good_peer(build, providers[0])
    deal_id = build.deal()

    receipt, _ = build.match(deal_id, [other, good])

    assert skip_reasons(receipt, deal_manager) == [(other, Skip.TOKEN_MISMATCH)]


def test_match_deal_skips_price_above_cap(build, deal_manager, providers):
    _, [expensive] = build.offer(providers[1], price=PRICE + 1)
    good = _good_peer(build, providers[0])
    deal_id = build.deal(maxPricePerCuPerEpoch=PRICE)

    receipt, _ = build.match(deal_id, [expensive, good])

    assert skip_reasons(receipt, deal_manager) == [(expensive, Skip.PRICE_ABOVE_CAP)]


def test_match_deal_skips_region_not_allowed(build, deal_manager, providers):
    _, [elsewhere] = build.offer(providers[1], region=840)
    _, [good] = build.offer(providers[0], region=276)
    deal_id = build.deal(regions=[276, 250])

    receipt, _ = build.match(deal_id, [elsewhere, good])

    assert skip_reasons(receipt, deal_manager) == [(elsewhere, Skip.REGION_NOT_ALLOWED)]


def test_match_deal_any_region_without_list(build, deal_manager, providers):
    _, [elsewhere] = build.offer(providers[1], region=840)
    deal_id = build.deal(regions=[])

    receipt, worker_ids = build.match(deal_id, [elsewhere])

    assert len(worker_ids) == 1


def test_match_deal_skips_tier_too_low(build, deal_manager, providers):
    _, [low] = build.offer(providers[1], tier=2)
    _, [good] = build.offer(providers[0], tier=3)
    deal_id = build.deal(minTier=3)

    receipt, _ = build.match(deal_id, [low, good])

    assert skip_reasons(receipt, deal_manager) == [(low, Skip.TIER_TOO_LOW)]


def test_match_deal_skips_sla_too_low(build, deal_manager, providers):
    _, [low] = build.offer(providers[1], sla=9_899)
    _, [good] = build.offer(providers[0], sla=9_900)
    deal_id = build.deal(minSlaBps=9_900)

    receipt, _ = build.match(deal_id, [low, good])

    assert skip_reasons(receipt, deal_manager) == [(low, Skip.SLA_TOO_LOW)]


def test_match_deal_skips_provider_not_on_allow_list(build, deal_manager, providers):
    outsider = _good_peer(build, providers[1])
    good = _good_peer(build, providers[0])
    deal_id = build.deal(accessMode=Access.ALLOW_LIST, providers=[providers[0].address])

    receipt, _ = build.match(deal_id, [outsider, good])

    assert skip_reasons(receipt, deal_manager) == [(outsider, Skip.PROVIDER_NOT_ALLOWED)]


def test_match_deal_skips_provider_on_deny_list(build, deal_manager, providers):
    denied = _good_peer(build, providers[1])
    good = _good_peer(build, providers[0])
    deal_id = build.deal(accessMode=Access.DENY_LIST, providers=[providers[1].address])

    receipt, _ = build.match(deal_id, [denied, good])

    assert skip_reasons(receipt, deal_manager) == [(denied, Skip.PROVIDER_NOT_ALLOWED)]


def test_match_deal_skips_not_enough_cus(build, deal_manager, providers):
    _, [small] = build.offer(providers[1], cus=(1,))
    good = _good_peer(build, providers[0])
    deal_id = build.deal(cuPerWorker=2)

    receipt, _ = build.match(deal_id, [small, good])

    assert skip_reasons(receipt, deal_manager) == [(small, Skip.NOT_ENOUGH_CUS)]


def test_match_deal_skips_peer_already_in_deal(build, deal_manager, provider):
    peer_id = _good_peer(build, provider)
    deal_id = build.deal(targetWorkers=2, cuPerWorker=2)

    receipt, worker_ids = build.match(deal_id, [peer_id, peer_id])

    assert len(worker_ids) == 1
    assert skip_reasons(receipt, deal_manager) == [(peer_id, Skip.PEER_ALREADY_IN_DEAL)]


def test_match_deal_skips_provider_limit(build, deal_manager, providers):
    _, [first, second] = build.offer(providers[0], cus=(4, 4))
    other = _good_peer(build, providers[1])
    deal_id = build.deal(targetWorkers=3, maxWorkersPerProvider=1)

    receipt, worker_ids = build.match(deal_id, [first, second, other])

    assert len(worker_ids) == 2
    assert skip_reasons(receipt, deal_manager) == [(second, Skip.PROVIDER_LIMIT)]


def test_match_deal_skips_insufficient_stake(build, deal_manager, market, admin, providers):
    _, [under_staked] = build.offer(providers[1], cus=(8,))
    good = _good_peer(build, providers[0])
    # Raise the collateral so that only providers[0] still covers its CUs.
    stake = market.getProvider(providers[0]).stake
    market.stake(stake, sender=providers[0])
    market.setCollateralPerCu(2 * stake // 8, sender=admin)
    assert market.getProvider(providers[1]).stake < market.requiredStake(providers[1])
    assert market.getProvider(providers[0]).stake >= market.requiredStake(providers[0])
    deal_id = build.deal()

    receipt, _ = build.match(deal_id, [under_staked, good])

    assert skip_reasons(receipt, deal_manager) == [(under_staked, Skip.INSUFFICIENT_STAKE)]


def test_match_deal_skips_insufficient_funds(build, deal_manager, providers, developer, clock):
    # With cap 100, 1 CU per worker and 3 target workers, the reserve is 100 x 3 x 2 epochs = 600.
    _, [first] = build.offer(providers[0], cus=(4,), price=100)
    _, [expensive] = build.offer(providers[1], cus=(4,), price=100)
    _, [cheap] = build.offer(providers[2], cus=(4,), price=1)
    deal_id = build.deal(maxPricePerCuPerEpoch=100, cuPerWorker=1, targetWorkers=3, deposit=600)
    build.match(deal_id, [first])
    clock.advance(5)
    # Five epochs at 100 leave 100, and the top-up makes it 150. The rate of
    # 100 plus 100 for the expensive peer does not fit, but plus 1 for the cheap peer does.
    deal_manager.deposit(deal_id, 50, sender=developer)

    receipt, worker_ids = build.match(deal_id, [expensive, cheap])

    assert deal_manager.getDeal(deal_id).balance == 150
    assert len(worker_ids) == 1
    assert deal_manager.getWorker(worker_ids[0]).pricePerCuPerEpoch == 1
    assert skip_reasons(receipt, deal_manager) == [(expensive, Skip.INSUFFICIENT_FUNDS)]


def test_match_deal_reports_first_failing_check(build, deal_manager, market, providers):
    # The peer is paused, in the wrong region and too expensive. OFFER_PAUSED is checked first.
    offer_id, [peer_id] = build.offer(providers[1], price=2 * PRICE, region=840)
    market.setOfferPaused(offer_id, True, sender=providers[1])
    good = _good_peer(build, providers[0])
    deal_id = build.deal(regions=[276])

    receipt, _ = build.match(deal_id, [peer_id, good])

    assert skip_reasons(receipt, deal_manager) == [(peer_id, Skip.OFFER_PAUSED)]


def test_match_deal_settles_before_placing(build, deal_manager, providers, clock):
    first = _good_peer(build, providers[0])
    second = _good_peer(build, providers[1])
    deal_id = build.deal(targetWorkers=2)
    build.match(deal_id, [first])
    start = deal_manager.getDeal(deal_id).settledEpoch
    clock.advance(2)

    receipt, _ = build.match(deal_id, [second])

    [settled] = events(receipt, deal_manager.DealSettled)
    assert (settled.fromEpoch, settled.toEpoch, settled.fundedEpochs) == (start, start + 2, 2)
    assert settled.charged == 2 * 2 * PRICE
