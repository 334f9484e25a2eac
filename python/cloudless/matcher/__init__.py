"""Off-chain matcher: order book from chain events, cheapest feasible placement."""

from cloudless.matcher.orderbook import OpenDeal, OrderBook
from cloudless.matcher.placement import PeerSlot, check_candidate, plan_placement
from cloudless.matcher.service import Matcher, MatchRound

__all__ = ["Matcher", "MatchRound", "OpenDeal", "OrderBook", "PeerSlot", "check_candidate", "plan_placement"]
