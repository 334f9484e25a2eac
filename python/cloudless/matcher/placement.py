"""Cheapest feasible placement of a deal's open slots on peers.

The checks mirror `DealManager.matchDeal`, in the same order, so the matcher
only proposes peers that the contract accepts unless the chain changed in
between (the contract re-checks and skips those with an event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloudless.chain.types import AccessMode, Deal, SkipReason, Worker

__all__ = ["PeerSlot", "check_candidate", "plan_placement"]


@dataclass(frozen=True)
class PeerSlot:
    """One peer in the order book, with its offer's terms."""

    peer_id: int
    offer_id: int
    provider: str
    signer: str
    free_cus: int
    price_per_cu_per_epoch: int
    payment_token: str
    region: int
    tier: int
    sla_bps: int
    paused: bool
    stake_ok: bool  # the provider's stake covers its offered CUs


def check_candidate(deal: Deal, peer: PeerSlot, active_workers: Sequence[Worker], balance: int) -> SkipReason:
    """Return why `peer` cannot take a new worker of `deal` now, or SkipReason.NONE."""
    if len(active_workers) >= deal.target_workers:
        return SkipReason.NO_FREE_SLOT
    if peer.paused:
        return SkipReason.OFFER_PAUSED
    if peer.payment_token.lower() != deal.payment_token.lower():
        return SkipReason.TOKEN_MISMATCH
    if peer.price_per_cu_per_epoch > deal.max_price_per_cu_per_epoch:
        return SkipReason.PRICE_ABOVE_CAP
    if deal.regions and peer.region not in deal.regions:
        return SkipReason.REGION_NOT_ALLOWED
    if peer.tier < deal.min_tier:
        return SkipReason.TIER_TOO_LOW
    if peer.sla_bps < deal.min_sla_bps:
        return SkipReason.SLA_TOO_LOW
    listed = peer.provider.lower() in {provider.lower() for provider in deal.providers}
    if (deal.access_mode == AccessMode.ALLOW_LIST and not listed) or (
        deal.access_mode == AccessMode.DENY_LIST and listed
    ):
        return SkipReason.PROVIDER_NOT_ALLOWED
    if peer.free_cus < deal.cu_per_worker:
        return SkipReason.NOT_ENOUGH_CUS
    if any(worker.peer_id == peer.peer_id for worker in active_workers):
        return SkipReason.PEER_ALREADY_IN_DEAL
    per_provider = sum(1 for worker in active_workers if worker.provider.lower() == peer.provider.lower())
    if per_provider >= deal.max_workers_per_provider:
        return SkipReason.PROVIDER_LIMIT
    if not peer.stake_ok:
        return SkipReason.INSUFFICIENT_STAKE
    # Each worker of a USAGE deal also reserves its usage cap at the usage price.
    reserve = deal.usage_reserve_per_worker
    rate = sum(worker.rate_per_epoch + reserve for worker in active_workers)
    if balance < rate + peer.price_per_cu_per_epoch * deal.cu_per_worker + reserve:
        return SkipReason.INSUFFICIENT_FUNDS
    return SkipReason.NONE


def plan_placement(
    deal: Deal, active_workers: Sequence[Worker], peers: Sequence[PeerSlot], balance: int
) -> list[int]:
    """Return the peer ids to place the deal's open slots on, cheapest first.

    Greedy by (price, peer id): with one worker per peer and a per-provider
    limit, taking the cheapest feasible peer first gives the cheapest total.
    """
    placed: list[Worker] = list(active_workers)
    chosen: list[int] = []

    for peer in sorted(peers, key=lambda slot: (slot.price_per_cu_per_epoch, slot.peer_id)):
        if len(placed) >= deal.target_workers:
            break
        if check_candidate(deal, peer, placed, balance) is not SkipReason.NONE:
            continue

        chosen.append(peer.peer_id)
        # A placeholder worker, so later checks see this slot as taken.
        placed.append(
            Worker(
                worker_id=0,
                deal_id=deal.deal_id,
                peer_id=peer.peer_id,
                provider=peer.provider,
                price_per_cu_per_epoch=peer.price_per_cu_per_epoch,
                cus=deal.cu_per_worker,
                joined_epoch=0,
                left_epoch=0,
                claimed_until_epoch=0,
                active=True,
            )
        )
    return chosen
