"""A mock fiat on-ramp for local and test networks.

It is a stand-in for a card payment gateway that sells USDC. It records an
order, simulates the card payment (no money moves) and mints test USDC to the
buyer with the TestUSDC owner's key. It runs only on the chains in
`networks.ALLOWED_CHAINS`. See docs/faucet.md.
"""

from __future__ import annotations

from cloudless.onramp.delivery import PurchaseResult, buy
from cloudless.onramp.networks import ALLOWED_CHAINS, check_chain_allowed
from cloudless.onramp.orders import OrderRecord, OrderStatus, OrderStore
from cloudless.onramp.quote import FEE_BPS, RATES, Quote, quote

__all__ = [
    "ALLOWED_CHAINS",
    "FEE_BPS",
    "RATES",
    "OrderRecord",
    "OrderStatus",
    "OrderStore",
    "PurchaseResult",
    "Quote",
    "buy",
    "check_chain_allowed",
    "quote",
]
