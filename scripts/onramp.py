"""Mock fiat on-ramp: simulate a card payment and mint test USDC (local anvil and testnets only).

    ape run onramp --amount 25.00 --currency USD --to 0xABC... [--order-id ORDER]

The same purchase as `cloudless onramp buy`, on the network that Ape connects
to. No real money moves; see docs/faucet.md.
"""


import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain.artifacts import project_root
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.tokens import format_units
from cloudless.exceptions import CloudlessError
from cloudless.onramp import buy
from cloudless.onramp.quote import USDC_DECIMALS, new_order_id, parse_currency, parse_fiat_amount, parse_order_id, parse_recipient


@click.command(cls=ConnectedProviderCommand)
@click.option("--amount", required=True, help="Fiat amount paid, e.g. 25.00.")
@click.option("--currency", default="USD", show_default=True, help="Fiat currency: USD, EUR or GBP.")
@click.option("--to", "recipient", required=True, help="Address that receives the test USDC.")
@click.option("--order-id", default=None, help="Order id; repeating an id never delivers twice. Default: a new random id.")
@click.option("--deployer-index", default=0, show_default=True, help="Local test account that owns TestUSDC (ignored when CLOUDLESS_PRIVATE_KEY is set).")
def cli(amount, currency, recipient, order_id, deployer_index):
    """Buy test USDC with a simulated card payment."""
    try:
        result = buy(
            rpc_url=chain.provider.uri,
            private_key=private_key_from_env_or_index(deployer_index),
            data_dir=project_root() / ".cloudless" / "onramp",
            order_id=parse_order_id(order_id) if order_id else new_order_id(),
            fiat_amount=parse_fiat_amount(amount),
            currency=parse_currency(currency),
            recipient=parse_recipient(recipient),
        )
    except CloudlessError as error:
        raise click.ClickException(str(error)) from error

    order = result.order
    usdc = format_units(order.usdc_amount, USDC_DECIMALS)
    state = "delivered" if result.delivered_now else "already delivered, nothing minted now:"
    click.echo(f"order {order.order_id} {state} {usdc} USDC to {order.recipient} (tx {order.tx_hash}; mock payment)")
