"""Input checks and the fixed price list of the mock on-ramp: fiat amount, fee and exchange rate to test USDC.

The rates and the fee are fixed constants, not market data: the mock only
has to give the same, predictable result on every run.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from cloudless.chain.addresses import parse_address
from cloudless.exceptions import ConfigError

__all__ = [
    "FEE_BPS",
    "MAX_FIAT_AMOUNT",
    "MIN_FIAT_AMOUNT",
    "RATES",
    "USDC_DECIMALS",
    "Quote",
    "new_order_id",
    "parse_currency",
    "parse_fiat_amount",
    "parse_order_id",
    "parse_recipient",
    "quote",
]

# Test USDC per unit of fiat. Fixed on purpose; they are not market rates.
RATES: dict[str, Decimal] = {
    "USD": Decimal("1.00"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
}
FEE_BPS = 150
"""Card fee in basis points of the fiat amount (1.5 %), rounded half up to the cent."""
MIN_FIAT_AMOUNT = Decimal("1.00")
MAX_FIAT_AMOUNT = Decimal("10000.00")
"""Limits per order in the order's currency, as a card gateway has; the maximum also catches typos."""
USDC_DECIMALS = 6

_CENT = Decimal("0.01")
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Quote:
    """Price of one order: fiat amount, fee, rate and the test USDC it delivers."""

    currency: str
    fiat_amount: Decimal  # in `currency`, whole cents
    fee: Decimal  # in `currency`, whole cents
    rate: Decimal  # test USDC per unit of `currency`
    usdc_amount: int  # USDC base units (10**-6 USDC) delivered

    @property
    def net_fiat(self) -> Decimal:
        return self.fiat_amount - self.fee


def parse_fiat_amount(text: str) -> Decimal:
    """Parse a fiat amount such as "25.00": positive, whole cents, inside the per-order limits."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation as error:
        raise ConfigError(f"invalid amount {text!r}: use a decimal number such as 25.00") from error
    if not amount.is_finite():
        raise ConfigError(f"invalid amount {text!r}: use a decimal number such as 25.00")
    if amount <= 0:
        raise ConfigError(f"invalid amount {text!r}: it must be above 0, e.g. 25.00")
    # The range check comes first because quantize() raises for amounts
    # with more digits than the decimal context's precision (28).
    if not MIN_FIAT_AMOUNT <= amount <= MAX_FIAT_AMOUNT:
        raise ConfigError(
            f"invalid amount {text!r}: one order must be between {MIN_FIAT_AMOUNT} and {MAX_FIAT_AMOUNT}; "
            "split larger purchases into several orders"
        )
    if amount != amount.quantize(_CENT, rounding=ROUND_DOWN):
        raise ConfigError(f"invalid amount {text!r}: fiat amounts have at most 2 decimals (cents), e.g. 25.00")
    return amount.quantize(_CENT)


def parse_currency(text: str) -> str:
    """Return the ISO 4217 code in upper case, or raise ConfigError for a currency without a fixed rate."""
    code = text.strip().upper()
    if code not in RATES:
        raise ConfigError(f"unsupported currency {text!r}: use one of {', '.join(RATES)}")
    return code


def parse_recipient(text: str) -> str:
    """Return the checksummed address, or raise ConfigError for a malformed one or the zero address."""
    address = parse_address(text)
    if int(address, 16) == 0:
        raise ConfigError(f"invalid address {text!r}: tokens minted to the zero address are lost; use the buyer's address")
    return address


def parse_order_id(text: str) -> str:
    """Return `text` if it is 1 to 64 letters, digits, '-' or '_'."""
    if not _ORDER_ID.match(text):
        raise ConfigError(f"invalid order id {text!r}: use 1 to 64 letters, digits, '-' or '_'")
    return text


def new_order_id() -> str:
    """Return a random order id for a purchase that does not name one."""
    return f"order-{uuid.uuid4().hex}"


def quote(fiat_amount: Decimal, currency: str) -> Quote:
    """Price an order: fee = FEE_BPS of the amount, the rest converted at the fixed rate and rounded down to base units."""
    rate = RATES[currency]
    fee = (fiat_amount * FEE_BPS / 10_000).quantize(_CENT, rounding=ROUND_HALF_UP)
    usdc = ((fiat_amount - fee) * rate).quantize(Decimal(1).scaleb(-USDC_DECIMALS), rounding=ROUND_DOWN)
    return Quote(
        currency=currency,
        fiat_amount=fiat_amount,
        fee=fee,
        rate=rate,
        usdc_amount=int(usdc.scaleb(USDC_DECIMALS)),
    )
