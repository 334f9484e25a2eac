"""ERC-20 calls on FLT and the test USDC, plus unit conversion."""

from __future__ import annotations

import logging
from decimal import Decimal, Inexact, InvalidOperation, localcontext

from web3.types import TxReceipt

from cloudless.chain.client import ChainClient
from cloudless.exceptions import ConfigError

__all__ = ["TokenClient", "format_units", "parse_units"]

logger = logging.getLogger("cloudless.chain")

MAX_UINT256 = 2**256 - 1


def parse_units(amount: str | int | Decimal, decimals: int) -> int:
    """Convert a human amount ("12.5") into base units, rejecting extra precision."""
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation as error:
        raise ConfigError(f"invalid token amount {amount!r}: use a decimal number such as 12.5") from error
    if not value.is_finite():
        raise ConfigError(f"invalid token amount {amount!r}: use a decimal number such as 12.5")
    if value < 0:
        raise ConfigError(f"invalid token amount {amount!r}: it must not be negative")
    # The default context keeps 28 digits, which would round 18-decimal
    # amounts of more than 10 whole tokens; here any rounding raises Inexact.
    with localcontext() as context:
        context.prec = 100
        context.traps[Inexact] = True
        try:
            scaled = value.scaleb(decimals)
        except Inexact as error:
            raise ConfigError(f"invalid token amount {amount!r}: it has too many digits") from error
    if scaled != scaled.to_integral_value():
        raise ConfigError(f"invalid token amount {amount!r}: the token has at most {decimals} decimals")
    if scaled > MAX_UINT256:
        raise ConfigError(f"invalid token amount {amount!r}: it exceeds the largest ERC-20 amount (2**256 - 1 base units)")
    return int(scaled)


def format_units(amount: int, decimals: int) -> str:
    """Format base units as a decimal string without trailing zeros."""
    value = Decimal(amount) / (Decimal(10) ** decimals)
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"


class TokenClient:
    """One ERC-20 token of the deployment ("FLT" or "TestUSDC")."""

    def __init__(self, client: ChainClient, name: str) -> None:
        self.client = client
        self.name = name
        self.contract = client.contract(name)
        self.decimals: int = client.call(self.contract.functions.decimals())
        self.symbol: str = client.call(self.contract.functions.symbol())

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def balance_of(self, account: str) -> int:
        return int(self.client.call(self.contract.functions.balanceOf(account)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.client.call(self.contract.functions.allowance(owner, spender)))

    def approve(self, spender: str, amount: int) -> TxReceipt:
        logger.info("approving %s %s for %s", self.format(amount), self.symbol, spender)
        return self.client.transact(self.contract.functions.approve(spender, amount), description=f"{self.symbol}.approve")

    def ensure_allowance(self, spender: str, amount: int) -> None:
        """Approve `spender` for `amount` unless the allowance already covers it."""
        if self.allowance(self.client.address, spender) < amount:
            self.approve(spender, amount)

    def transfer(self, to: str, amount: int) -> TxReceipt:
        return self.client.transact(self.contract.functions.transfer(to, amount), description=f"{self.symbol}.transfer")

    def mint(self, to: str, amount: int) -> TxReceipt:
        """Mint test tokens; only the token owner (the deployer) may."""
        logger.info("minting %s %s to %s", self.format(amount), self.symbol, to)
        return self.client.transact(self.contract.functions.mint(to, amount), description=f"{self.symbol}.mint")

    def parse(self, amount: str | int | Decimal) -> int:
        return parse_units(amount, self.decimals)

    def format(self, amount: int) -> str:
        return format_units(amount, self.decimals)
