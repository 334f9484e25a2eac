"""`cloudless faucet ...`: test FLT and test USDC from the deployment's Faucet."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import cast

import click
from eth_utils import to_checksum_address

from cloudless.chain.session import Session
from cloudless.cli.common import check_address, check_recipient, handle_errors, key_options, open_session, rpc_option
from cloudless.exceptions import ContractRevertError

__all__ = ["faucet"]


def _describe_time(session: Session, unix_time: int) -> str:
    """Format a block-time instant as UTC with the seconds left from the latest block."""
    now = int(session.client.w3.eth.get_block("latest")["timestamp"])
    when = datetime.fromtimestamp(unix_time, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    wait = max(0, unix_time - now)
    return f"{when} (unix {unix_time}, in {wait} s of chain time)"


@click.group()
def faucet() -> None:
    """Get test FLT and test USDC from the faucet (local and test networks)."""


@faucet.command("drip")
@rpc_option
@key_options(default_index=5)
@click.option("--to", "recipient", callback=check_recipient, default=None, help="Address that receives the tokens.  [default: the signer]")
@handle_errors
def drip(rpc_url: str, account_index: int | None, recipient: str | None) -> None:
    """Request one drip of FLT and test USDC; the signer pays the gas."""
    session = open_session(rpc_url, account_index)
    target = recipient or session.address
    try:
        result = session.faucet.drip(target)
    except ContractRevertError as error:
        raise click.ClickException(_explain_revert(session, error)) from error

    click.echo(
        f"received {session.flt.format(result.flt_amount)} FLT and {session.usdc.format(result.usdc_amount)} USDC "
        f"at {result.recipient} (tx {result.tx_hash})"
    )
    click.echo(f"next drip allowed at {_describe_time(session, result.next_drip_at)}")


@faucet.command("status")
@rpc_option
@key_options(default_index=5)
@click.option("--to", "recipient", callback=check_address, default=None, help="Address whose cool-down to show.  [default: the signer]")
@handle_errors
def status(rpc_url: str, account_index: int | None, recipient: str | None) -> None:
    """Show the faucet's drip amounts, cool-down, balances and the next drip time of an address."""
    session = open_session(rpc_url, account_index)
    target = recipient or session.address
    faucet_client = session.faucet
    settings = faucet_client.settings()
    flt, usdc = session.flt, session.usdc
    click.echo(f"faucet {faucet_client.address} (owner {faucet_client.owner()})")
    click.echo(
        f"  drip {flt.format(settings.flt_amount)} FLT and {usdc.format(settings.usdc_amount)} USDC, "
        f"cool-down {settings.cooldown} s"
    )
    click.echo(
        f"  holds {flt.format(flt.balance_of(faucet_client.address))} FLT and "
        f"{usdc.format(usdc.balance_of(faucet_client.address))} USDC"
    )
    next_at = faucet_client.next_drip_at(target)
    if next_at == 0:
        click.echo(f"  {target} never got a drip; it may get one now")
    else:
        click.echo(f"  {target} may get its next drip at {_describe_time(session, next_at)}")


def _explain_revert(session: Session, error: ContractRevertError) -> str:
    """Turn the faucet's custom errors into a sentence with the fix; other errors keep their message."""
    args = error.error_args
    if error.error_name == "FaucetCooldownActive":
        return (
            f"the faucet cool-down for {to_checksum_address(str(args['recipient']))} is not over: retry at "
            f"{_describe_time(session, cast(int, args['nextDripAt']))}, or pass --to with another address"
        )
    if error.error_name == "FaucetEmpty":
        token = session.flt if str(args["token"]).lower() == session.flt.address.lower() else session.usdc
        return (
            f"the faucet at {session.faucet.address} holds {token.format(cast(int, args['balance']))} {token.symbol}, "
            f"less than the {token.format(cast(int, args['amount']))} {token.symbol} of one drip: its owner "
            f"({session.faucet.owner()}) must transfer or mint {token.symbol} to the faucet"
        )
    return str(error)
