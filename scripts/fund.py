"""Send ETH and mint test USDC and FLT to an account (local and test networks).

    ape run fund --to 0xABC... --eth 1 --usdc 1000 --flt 500
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain import connect
from cloudless.chain.keys import private_key_from_env_or_index


@click.command(cls=ConnectedProviderCommand)
@click.option("--to", "recipient", required=True, help="Address to fund.")
@click.option("--eth", default="1", show_default=True, help="ETH to send, for gas.")
@click.option("--usdc", default="1000", show_default=True, help="Test USDC to mint.")
@click.option("--flt", default="0", show_default=True, help="FLT to mint.")
@click.option("--deployer-index", default=0, show_default=True, help="Local test account that owns the tokens.")
def cli(recipient, eth, usdc, flt, deployer_index):
    """Fund an account with gas money and test tokens."""
    session = connect(chain.provider.uri, private_key_from_env_or_index(deployer_index))
    session.fund(
        recipient,
        eth_wei=int(float(eth) * 10**18),
        usdc=session.usdc.parse(usdc),
        flt=session.flt.parse(flt),
    )
    click.echo(
        f"{recipient}: {session.usdc.format(session.usdc.balance_of(recipient))} USDC, "
        f"{session.flt.format(session.flt.balance_of(recipient))} FLT"
    )
