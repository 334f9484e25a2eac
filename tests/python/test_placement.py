"""Matcher placement: feasibility checks and cheapest-first choice."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudless.chain.types import AccessMode, BillingMode, Deal, SkipReason, Worker
from cloudless.matcher.placement import PeerSlot, check_candidate, plan_placement

USDC = "0x" + "11" * 20
OTHER_TOKEN = "0x" + "22" * 20
PROVIDERS = ["0x" + f"{index:040x}" for index in range(1, 5)]


def make_deal(**changes: object) -> Deal:
    fields: dict[str, object] = dict(
        deal_id=1,
        owner="0x" + "aa" * 20,
        app_cid=b"\x01\x55\x12\x20" + bytes(32),
        payment_token=USDC,
        max_price_per_cu_per_epoch=100,
        cu_per_worker=1,
        min_workers=1,
        target_workers=2,
        max_workers_per_provider=1,
        regions=(),
        min_tier=0,
        min_sla_bps=0,
        access_mode=AccessMode.NONE,
        providers=(),
        billing_mode=BillingMode.SUBSCRIPTION,
        usage_price_per_megafuel=0,
        max_usage_per_worker_epoch=0,
        start_epoch=0,
        end_epoch=2**64 - 1,
        settled_epoch=0,
        stopped=False,
        active_workers=0,
        rate_per_epoch=0,
        balance=10**12,
        pending=0,
    )
    fields.update(changes)
    return Deal(**fields)  # type: ignore[arg-type]


def make_peer(peer_id: int, provider: str = PROVIDERS[0], price: int = 50, **changes: object) -> PeerSlot:
    fields: dict[str, object] = dict(
        peer_id=peer_id,
        offer_id=peer_id,
        provider=provider,
        signer="0x" + f"{peer_id + 100:040x}",
        free_cus=4,
        price_per_cu_per_epoch=price,
        payment_token=USDC,
        region=276,
        tier=3,
        sla_bps=9990,
        paused=False,
        stake_ok=True,
    )
    fields.update(changes)
    return PeerSlot(**fields)  # type: ignore[arg-type]


def make_worker(peer: PeerSlot, cus: int = 1) -> Worker:
    return Worker(
        worker_id=peer.peer_id,
        deal_id=1,
        peer_id=peer.peer_id,
        provider=peer.provider,
        price_per_cu_per_epoch=peer.price_per_cu_per_epoch,
        cus=cus,
        joined_epoch=0,
        left_epoch=2**64 - 1,
        claimed_until_epoch=0,
        active=True,
    )


CHECK_CASES = [
    ("price_above_cap", make_deal(max_price_per_cu_per_epoch=10), make_peer(1, price=11), SkipReason.PRICE_ABOVE_CAP),
    ("token_mismatch", make_deal(), make_peer(1, payment_token=OTHER_TOKEN), SkipReason.TOKEN_MISMATCH),
    ("paused", make_deal(), make_peer(1, paused=True), SkipReason.OFFER_PAUSED),
    ("region", make_deal(regions=(250,)), make_peer(1), SkipReason.REGION_NOT_ALLOWED),
    ("tier", make_deal(min_tier=4), make_peer(1), SkipReason.TIER_TOO_LOW),
    ("sla", make_deal(min_sla_bps=9999), make_peer(1), SkipReason.SLA_TOO_LOW),
    ("allow_list", make_deal(access_mode=AccessMode.ALLOW_LIST, providers=(PROVIDERS[1],)), make_peer(1), SkipReason.PROVIDER_NOT_ALLOWED),
    ("deny_list", make_deal(access_mode=AccessMode.DENY_LIST, providers=(PROVIDERS[0],)), make_peer(1), SkipReason.PROVIDER_NOT_ALLOWED),
    ("cus", make_deal(cu_per_worker=8), make_peer(1), SkipReason.NOT_ENOUGH_CUS),
    ("stake", make_deal(), make_peer(1, stake_ok=False), SkipReason.INSUFFICIENT_STAKE),
    ("fits", make_deal(), make_peer(1), SkipReason.NONE),
]


def test_check_candidate_reasons() -> None:
    for label, deal, peer, expected in CHECK_CASES:
        assert check_candidate(deal, peer, [], balance=10**12) == expected, label


def test_check_candidate_peer_already_in_deal() -> None:
    peer = make_peer(1)
    assert check_candidate(make_deal(), peer, [make_worker(peer)], balance=10**12) == SkipReason.PEER_ALREADY_IN_DEAL


def test_check_candidate_provider_limit() -> None:
    first, second = make_peer(1), make_peer(2)
    assert check_candidate(make_deal(), second, [make_worker(first)], balance=10**12) == SkipReason.PROVIDER_LIMIT


def test_check_candidate_no_free_slot() -> None:
    first, second = make_peer(1, PROVIDERS[0]), make_peer(2, PROVIDERS[1])
    deal = make_deal(target_workers=1)
    assert check_candidate(deal, second, [make_worker(first)], balance=10**12) == SkipReason.NO_FREE_SLOT


def test_check_candidate_insufficient_funds() -> None:
    peer = make_peer(1, price=50)
    assert check_candidate(make_deal(), peer, [], balance=49) == SkipReason.INSUFFICIENT_FUNDS


def test_plan_cap_below_every_offer_is_empty() -> None:
    peers = [make_peer(index, PROVIDERS[index % 4], price=20 + index) for index in range(1, 6)]
    assert plan_placement(make_deal(max_price_per_cu_per_epoch=5), [], peers, balance=10**12) == []


def test_plan_picks_cheapest_per_provider() -> None:
    peers = [
        make_peer(1, PROVIDERS[0], price=30),
        make_peer(2, PROVIDERS[0], price=10),
        make_peer(3, PROVIDERS[1], price=20),
        make_peer(4, PROVIDERS[2], price=15),
    ]
    # One worker per provider: the cheapest peer of provider 0, then provider 2's.
    assert plan_placement(make_deal(target_workers=2), [], peers, balance=10**12) == [2, 4]


peer_strategy = st.builds(
    lambda peer_id, provider, price, free_cus, region: make_peer(peer_id, PROVIDERS[provider], price, free_cus=free_cus, region=region),
    peer_id=st.integers(1, 10_000),
    provider=st.integers(0, 3),
    price=st.integers(1, 200),
    free_cus=st.integers(0, 4),
    region=st.sampled_from([250, 276, 840]),
)


@settings(max_examples=200, deadline=None)
@given(
    peers=st.lists(peer_strategy, max_size=8, unique_by=lambda peer: peer.peer_id),
    target=st.integers(1, 5),
    per_provider=st.integers(1, 3),
    cap=st.integers(1, 200),
    cu_per_worker=st.integers(1, 3),
)
def test_plan_is_feasible_and_cheapest(
    peers: list[PeerSlot], target: int, per_provider: int, cap: int, cu_per_worker: int
) -> None:
    deal = make_deal(
        target_workers=target,
        max_workers_per_provider=per_provider,
        max_price_per_cu_per_epoch=cap,
        cu_per_worker=cu_per_worker,
    )
    plan = plan_placement(deal, [], peers, balance=10**12)
    chosen = [next(peer for peer in peers if peer.peer_id == peer_id) for peer_id in plan]

    assert len(plan) == len(set(plan))
    assert len(plan) <= target
    assert all(peer.price_per_cu_per_epoch <= cap and peer.free_cus >= cu_per_worker for peer in chosen)
    assert max(Counter(peer.provider for peer in chosen).values(), default=0) <= per_provider

    # Brute force: no feasible set places more workers, or as many for less.
    feasible = [peer for peer in peers if peer.price_per_cu_per_epoch <= cap and peer.free_cus >= cu_per_worker]
    best_count, best_cost = 0, 0
    for size in range(min(target, len(feasible)), 0, -1):
        costs = [
            sum(peer.price_per_cu_per_epoch for peer in combo)
            for combo in itertools.combinations(feasible, size)
            if max(Counter(peer.provider for peer in combo).values()) <= per_provider
        ]
        if costs:
            best_count, best_cost = size, min(costs)
            break
    assert len(plan) == best_count
    assert sum(peer.price_per_cu_per_epoch for peer in chosen) == best_cost
