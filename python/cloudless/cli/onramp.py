"""`cloudless onramp buy`: the mock fiat on-ramp, which sells test USDC for a simulated card payment."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import click

from cloudless.chain.artifacts import project_root
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.tokens import format_units
from cloudless.cli.common import handle_errors, rpc_option
from cloudless.exceptions import ConfigError
from cloudless.onramp.delivery import PurchaseResult, buy
from cloudless.onramp.networks import ALLOWED_CHAINS
from cloudless.onramp.quote import (
    FEE_BPS,
    RATES,
    USDC_DECIMALS,
    new_order_id,
    parse_currency,
    parse_fiat_amount,
    parse_order_id,
    parse_recipient,
)

__all__ = ["onramp"]

T = TypeVar("T")


def _checked(parse: Callable[[str], T]) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """Wrap a parse function as a click callback that reports ConfigError as a usage error (exit code 2)."""

    def callback(context: click.Context, parameter: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ConfigError as error:
            raise click.BadParameter(str(error)) from error

    return callback


@click.group()
def onramp() -> None:
    """Mock fiat on-ramp: buy test USDC with a simulated card payment (local and test networks only)."""


_BUY_HELP = (
    "Simulate a card payment and mint test USDC to --to. No real money moves.\n\n"
    f"Rates are fixed, in USDC per unit: {', '.join(f'{code} {rate}' for code, rate in RATES.items())}. "
    f"The fee is {FEE_BPS / 100:g} % of the amount. Runs only on chain ids "
    f"{', '.join(str(chain_id) for chain_id in ALLOWED_CHAINS)} (local anvil and testnets)."
)


@onramp.command("buy", help=_BUY_HELP)
@rpc_option
@click.option(
    "--account-index",
    type=click.IntRange(0, 999),
    default=0,
    show_default=True,
    help="Local test account that owns TestUSDC and mints; ignored when $CLOUDLESS_PRIVATE_KEY is set.",
)
@click.option("--amount", "fiat_amount", required=True, callback=_checked(parse_fiat_amount), help="Fiat amount paid, e.g. 25.00.")
@click.option(
    "--currency",
    default="USD",
    show_default=True,
    callback=_checked(parse_currency),
    help=f"Fiat currency: {', '.join(RATES)}.",
)
@click.option("--to", "recipient", required=True, callback=_checked(parse_recipient), help="Address that receives the test USDC.")
@click.option(
    "--order-id",
    callback=_checked(parse_order_id),
    default=None,
    help="Order id, 1-64 of [A-Za-z0-9_-]; repeating an id never delivers twice.  [default: a new random id]",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: project_root() / ".cloudless" / "onramp",
    show_default=".cloudless/onramp",
    help="Where the order log orders.jsonl is kept.",
)
@handle_errors
def buy_command(
    rpc_url: str,
    account_index: int,
    fiat_amount: Decimal,
    currency: str,
    recipient: str,
    order_id: str | None,
    data_dir: Path,
) -> None:
    result = buy(
        rpc_url=rpc_url,
        private_key=private_key_from_env_or_index(account_index),
        data_dir=data_dir,
        order_id=order_id or new_order_id(),
        fiat_amount=fiat_amount,
        currency=currency,
        recipient=recipient,
    )
    _print_result(result)


def _print_result(result: PurchaseResult) -> None:
    order = result.order
    usdc = format_units(order.usdc_amount, USDC_DECIMALS)
    network = ALLOWED_CHAINS.get(order.chain_id, "unknown chain")
    click.echo(
        f"order {order.order_id}: mock card payment of {order.fiat_amount} {order.currency} "
        f"(reference {order.payment_reference}; no real payment was made)"
    )
    click.echo(
        f"  fee {order.fee} {order.currency} ({FEE_BPS / 100:g} %), rate {order.rate} USDC per {order.currency}, "
        f"delivers {usdc} USDC"
    )
    if result.delivered_now:
        click.echo(f"delivered {usdc} USDC to {order.recipient} on chain {order.chain_id} ({network}) in tx {order.tx_hash}")
    else:
        click.echo(
            f"already delivered: {usdc} USDC went to {order.recipient} on chain {order.chain_id} in tx {order.tx_hash} "
            f"(block {order.block}); nothing was minted now"
        )

