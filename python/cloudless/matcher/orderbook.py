"""The matcher's view of the market, built from chain events.

Offer, peer and deal ids come from `OfferCreated`, `PeerAdded` and
`DealCreated` logs, read incrementally by block range. Their current state
(free CUs, prices, balances, workers) is read with view calls on every
refresh, so a restarted matcher works from the chain's current state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cloudless.chain.session import Session
from cloudless.chain.types import Deal, DealStatus, Worker
from cloudless.matcher.placement import PeerSlot

__all__ = ["OpenDeal", "OrderBook"]

logger = logging.getLogger("cloudless.matcher")

# Blocks per eth_getLogs request; public RPC nodes often cap ranges near this.
_LOG_RANGE = 5_000


@dataclass(frozen=True)
class OpenDeal:
    """A deal that is not ENDED, with its active workers and settled-now balance."""

    deal: Deal
    status: DealStatus
    active_workers: tuple[Worker, ...]
    balance: int

    @property
    def open_slots(self) -> int:
        return self.deal.target_workers - len(self.active_workers)


class OrderBook:
    """Offers, peers and open deals of one deployment."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._next_block = session.deployment.start_block
        self._peer_ids: set[int] = set()
        self._deal_ids: set[int] = set()

    def refresh(self) -> None:
        """Read new events up to the latest block."""
        latest = self.session.client.w3.eth.block_number
        contract_market = self.session.market.contract
        contract_deals = self.session.deals.contract
        client = self.session.client

        start = self._next_block
        while start <= latest:
            end = min(start + _LOG_RANGE - 1, latest)
            for event in client.get_logs(contract_market.events.PeerAdded, start, end):
                self._peer_ids.add(int(event.args.peerId))
            for event in client.get_logs(contract_deals.events.DealCreated, start, end):
                self._deal_ids.add(int(event.args.dealId))
            start = end + 1
        self._next_block = latest + 1

    def peers(self) -> list[PeerSlot]:
        """Current state of every live peer."""
        market = self.session.market
        offers = {}
        stake_ok: dict[str, bool] = {}
        slots = []
        for peer_id in sorted(self._peer_ids):
            peer = market.get_peer(peer_id)
            if peer.removed:
                continue
            if peer.offer_id not in offers:
                offers[peer.offer_id] = market.get_offer(peer.offer_id)
            offer = offers[peer.offer_id]
            if offer.provider not in stake_ok:
                provider = market.get_provider(offer.provider)
                stake_ok[offer.provider] = provider.stake >= market.required_stake(offer.provider)
            slots.append(
                PeerSlot(
                    peer_id=peer_id,
                    offer_id=peer.offer_id,
                    provider=offer.provider,
                    signer=peer.signer,
                    free_cus=peer.free_cus,
                    price_per_cu_per_epoch=offer.terms.price_per_cu_per_epoch,
                    payment_token=offer.terms.payment_token,
                    region=offer.terms.region,
                    tier=offer.terms.tier,
                    sla_bps=offer.terms.sla_bps,
                    paused=offer.paused,
                    stake_ok=stake_ok[offer.provider],
                )
            )
        return slots

    def open_deals(self) -> list[OpenDeal]:
        """Return every deal that has not ENDED and was not stopped."""
        deals = self.session.deals
        result = []
        for deal_id in sorted(self._deal_ids):
            status = deals.deal_status(deal_id)
            if status == DealStatus.ENDED:
                continue
            deal = deals.get_deal(deal_id)
            if deal.stopped:
                # A stopped deal takes no workers, even in its last billed epoch.
                continue
            workers = tuple(
                worker
                for worker in (deals.get_worker(worker_id) for worker_id in deals.deal_worker_ids(deal_id))
                if worker.active
            )
            result.append(OpenDeal(deal=deal, status=status, active_workers=workers, balance=deals.deal_balance(deal_id)))
        return result
