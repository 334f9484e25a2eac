"""`cloudless deal callers`: the keys whose signed requests count for a deal."""

from __future__ import annotations

import click
from eth_utils import is_address, is_checksum_address, to_checksum_address
from rich.console import Console

from cloudless.chain.session import Session
from cloudless.cli.common import handle_errors, key_options, open_session, rpc_option
from cloudless.exceptions import CloudlessError
from cloudless.formatting import format_count

__all__ = ["allow_callers", "callers_command", "check_callers"]

console = Console()


def check_callers(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Click callback: checksum every address, or raise click.BadParameter naming the bad one."""
    checked = []
    for value in values:
        if not is_address(value):
            raise click.BadParameter(f"invalid caller address {value!r}: use a 0x-prefixed 20-byte hex address")
        # Mixed case means an EIP-55 checksum, and a wrong one means a typo.
        digits = value.removeprefix("0x")
        if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
            raise click.BadParameter(
                f"caller address {value} has a wrong EIP-55 checksum (did you mean {to_checksum_address(value)}?): "
                "check it for a typo, or pass it in lower case"
            )
        if int(digits, 16) == 0:
            raise click.BadParameter("the zero address cannot sign requests: pass the caller's own address")
        checked.append(to_checksum_address(value))
    return tuple(checked)


def allow_callers(session: Session, deal_id: int, callers: tuple[str, ...]) -> None:
    """Allow each caller on a new deal; raise click.ClickException naming the retry command on failure."""
    for caller in callers:
        try:
            session.challenges.set_caller_allowed(deal_id, caller, True)
        except CloudlessError as error:
            raise click.ClickException(
                f"deal {deal_id} was created, but allowing caller {caller} failed: {error}; "
                f"retry with `cloudless deal callers {deal_id} --allow {caller}`"
            ) from error


@click.command("callers")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.option("--allow", "allowed", multiple=True, callback=check_callers, metavar="ADDRESS", help="Allow this caller's key; repeat for more.")
@click.option("--remove", "removed", multiple=True, callback=check_callers, metavar="ADDRESS", help="Remove this caller's key; repeat for more.")
@click.option("--check", "checked", multiple=True, callback=check_callers, metavar="ADDRESS", help="Show whether this key may call the deal.")
@handle_errors
def callers_command(
    rpc_url: str,
    account_index: int | None,
    deal_id: int,
    allowed: tuple[str, ...],
    removed: tuple[str, ...],
    checked: tuple[str, ...],
) -> None:
    """Show or change which keys may sign requests for a deal.

    A deal without allowed callers counts requests signed by any key. Once
    the owner allows one or more callers (for example the gateway's key),
    provider nodes reject requests that other keys sign, and a receipt for
    such a request in an epoch proof loses a challenge. The first caller
    and every removal apply two epochs after the current one, so receipts
    already signed keep counting; further callers count at once. Changes
    need the deal owner's key.
    """
    session = open_session(rpc_url, account_index)
    deals = session.deals
    deal_count = deals.deal_count()
    if deal_id > deal_count:
        raise click.ClickException(f"deal {deal_id} not found: this deployment has {format_count(deal_count, 'deal')}")
    challenges = session.challenges

    if allowed or removed:
        owner = deals.get_deal(deal_id).owner
        if owner.lower() != session.address.lower():
            raise click.ClickException(
                f"only the owner {owner} of deal {deal_id} can change its callers, not {session.address}: "
                "pass the owner's --account-index or set CLOUDLESS_PRIVATE_KEY to the owner's key"
            )
        for caller in allowed:
            challenges.set_caller_allowed(deal_id, caller, True)
        for caller in removed:
            challenges.set_caller_allowed(deal_id, caller, False)

    count = challenges.allowed_caller_count(deal_id)
    restricted_from = challenges.callers_restricted_from(deal_id)
    if restricted_from == 0:
        console.print(f"deal {deal_id}: any key may sign requests")
    else:
        console.print(
            f"deal {deal_id}: {format_count(count, 'allowed caller')}; only allowed callers count from epoch {restricted_from}"
        )
    for caller in checked:
        verdict = "allowed" if challenges.is_caller_allowed(deal_id, caller) else "not allowed"
        console.print(f"  {caller}: {verdict}")
