"""Send ETH and mint test USDC and FLT to an account (local and test networks).

    ape run fund --to 0xABC... --eth 1 --usdc 1000 --flt 500
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain import connect
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.tokens import parse_units
from cloudless.cli.common import FLT_DECIMALS, USDC_DECIMALS, check_recipient, token_amount
from cloudless.exceptions import CloudlessError

ETH_DECIMALS = 18


@click.command(cls=ConnectedProviderCommand)
@click.option("--to", "recipient", required=True, callback=check_recipient, help="Address to fund.")
@click.option("--eth", default="1", show_default=True, callback=token_amount(ETH_DECIMALS), metavar="ETH", help="ETH to send, for gas.")
@click.option("--usdc", default="1000", show_default=True, callback=token_amount(USDC_DECIMALS), metavar="USDC", help="Test USDC to mint.")
@click.option("--flt", default="0", show_default=True, callback=token_amount(FLT_DECIMALS), metavar="FLT", help="FLT to mint.")
@click.option("--deployer-index", type=click.IntRange(0, 999), default=0, show_default=True, help="Local test account that owns the tokens (ignored when CLOUDLESS_PRIVATE_KEY is set).")
def cli(recipient, eth, usdc, flt, deployer_index):
    """Fund an account with gas money and test tokens."""
    try:
        session = connect(chain.provider.uri, private_key_from_env_or_index(deployer_index))
        session.fund(
            recipient,
            eth_wei=parse_units(eth, ETH_DECIMALS),
            usdc=session.usdc.parse(usdc),
            flt=session.flt.parse(flt),
        )
        usdc_balance = session.usdc.balance_of(recipient)
        flt_balance = session.flt.balance_of(recipient)
    except (CloudlessError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{recipient}: {session.usdc.format(usdc_balance)} USDC, {session.flt.format(flt_balance)} FLT")
