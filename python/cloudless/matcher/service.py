"""The matcher loop: refresh the order book, plan, submit `matchDeal` batches."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from cloudless.chain.session import Session
from cloudless.exceptions import ChainError
from cloudless.matcher.orderbook import OrderBook
from cloudless.matcher.placement import plan_placement

__all__ = ["Matcher", "MatchRound"]

logger = logging.getLogger("cloudless.matcher")


@dataclass
class MatchRound:
    """Outcome of one pass over the open deals."""

    placed: dict[int, list[int]] = field(default_factory=dict)  # deal id -> new worker ids
    unmatched: dict[int, str] = field(default_factory=dict)  # deal id -> why no peer fits
    failed: dict[int, str] = field(default_factory=dict)  # deal id -> error message


class Matcher:
    """Places open deal slots on the cheapest feasible peers."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.book = OrderBook(session)
        self._stop = threading.Event()

    def run_once(self) -> MatchRound:
        """Refresh from the chain and submit one `matchDeal` per deal that has open slots."""
        self.book.refresh()
        peers = self.book.peers()
        result = MatchRound()

        for open_deal in self.book.open_deals():
            deal_id = open_deal.deal.deal_id
            if open_deal.open_slots <= 0:
                continue
            plan = plan_placement(open_deal.deal, open_deal.active_workers, peers, open_deal.balance)
            if not plan:
                result.unmatched[deal_id] = (
                    f"no peer fits: cap {open_deal.deal.max_price_per_cu_per_epoch} per CU per epoch, "
                    f"{open_deal.open_slots} open slots, status {open_deal.status.name}"
                )
                continue

            try:
                outcome = self.session.deals.match_deal(deal_id, plan)
            except ChainError as error:
                # The chain changed since the refresh (another matcher, a new
                # price); the next round plans again from fresh state.
                logger.warning("matchDeal for deal %d on peers %s failed: %s", deal_id, plan, error)
                result.failed[deal_id] = str(error)
                continue

            result.placed[deal_id] = list(outcome.worker_ids)
            logger.info("deal %d: placed workers %s on peers %s", deal_id, list(outcome.worker_ids), plan)
            for peer_id, reason in outcome.skipped:
                logger.info("deal %d: chain skipped peer %d: %s", deal_id, peer_id, reason.name)
            # Placed workers took CUs; plan later deals on fresh peer state.
            peers = self.book.peers()

        for deal_id, reason in result.unmatched.items():
            logger.debug("deal %d unmatched: %s", deal_id, reason)
        return result

    def run(self, interval_seconds: float) -> None:
        """Match every `interval_seconds` until `stop()`; errors of one round are logged, not fatal."""
        logger.info("matcher started for DealManager %s", self.session.deals.address)
        reported: dict[int, str] = {}
        while not self._stop.is_set():
            try:
                outcome = self.run_once()
                for deal_id, reason in outcome.unmatched.items():
                    if reported.get(deal_id) != reason:
                        logger.info("deal %d unmatched: %s", deal_id, reason)
                        reported[deal_id] = reason
            except ChainError as error:
                logger.warning("matcher round failed, retrying in %.1f s: %s", interval_seconds, error)
            except OSError as error:
                logger.warning("RPC node unreachable, retrying in %.1f s: %s", interval_seconds, error)
            self._stop.wait(interval_seconds)
        logger.info("matcher stopped")

    def stop(self) -> None:
        self._stop.set()
