"""`cloudless deal ...`: create and manage deals, and set how many workers run each call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from decimal import Decimal

import click
from eth_utils import is_address
from rich.console import Console
from rich.table import Table

from cloudless.chain.session import Session
from cloudless.chain.tokens import TokenClient
from cloudless.chain.types import (
    MAX_PROVIDERS,
    MAX_REGIONS,
    MAX_TARGET_WORKERS,
    OPEN_ENDED_EPOCH,
    AccessMode,
    BillingMode,
    Deal,
    DealParams,
)
from cloudless.cid import cid_from_bytes
from cloudless.cli.deal_callers import allow_callers, callers_command, check_callers
from cloudless.cli.common import USDC_DECIMALS, check_app_cid, handle_errors, key_options, open_session, rpc_option, token_amount
from cloudless.exceptions import (
    ChainError,
    ConfigError,
    ContractRevertError,
    DepositBelowReserveError,
    InsufficientBalanceError,
)
from cloudless.formatting import format_count

__all__ = [
    "MAX_REPLICATION",
    "BillingTerms",
    "billing_terms",
    "check_replication",
    "check_worker_counts",
    "create_deal_for_flags",
    "deal",
    "deal_params_for_flags",
]

# soft_wrap: long lines (addresses, CIDs) stay whole instead of wrapping at the terminal width.
console = Console(soft_wrap=True)

MAX_UINT64 = 2**64 - 1

# Largest replication a deal may ask for: `ChallengeManager.MAX_REPLICATION`.
MAX_REPLICATION = 5


@dataclass(frozen=True)
class BillingTerms:
    """Billing options of `deal create`, checked against each other."""

    mode: BillingMode
    max_price: Decimal  # USDC per CU per epoch
    usage_price: Decimal  # USDC per million fuel; 0 for SUBSCRIPTION
    max_usage: int  # fuel per worker and epoch; 0 for SUBSCRIPTION


def billing_terms(billing: str, max_price: Decimal | None, usage_price: Decimal | None, max_usage: int | None) -> BillingTerms:
    """Check --billing, --max-price, --usage-price and --max-usage together as `createDeal` does, and raise click.UsageError on a conflict."""
    if billing == "subscription":
        for flag, value in (("--usage-price", usage_price), ("--max-usage", max_usage)):
            if value is not None:
                raise click.UsageError(f"{flag} applies to usage-billed deals only: add --billing usage, or drop {flag}")
        if max_price is None:
            raise click.UsageError(
                "missing --max-price: a subscription deal needs a price cap in USDC per CU per epoch, e.g. --max-price 0.5"
            )
        if max_price == 0:
            raise click.UsageError(
                "invalid --max-price 0: a subscription deal pays only the CU price, so its cap must be above 0 "
                "(e.g. --max-price 0.5); for a deal that pays for fuel alone, use --billing usage"
            )
        return BillingTerms(BillingMode.SUBSCRIPTION, max_price, Decimal(0), 0)

    if usage_price is None:
        raise click.UsageError(
            "missing --usage-price: a usage-billed deal needs a price in USDC per million fuel, e.g. --usage-price 0.002"
        )
    if usage_price == 0:
        raise click.UsageError("invalid --usage-price 0: a usage-billed deal needs a price above 0, e.g. --usage-price 0.002")
    if max_usage is None:
        raise click.UsageError(
            "missing --max-usage: a usage-billed deal needs the maximum fuel billed per worker and epoch, e.g. --max-usage 100000000"
        )
    cap = max_price if max_price is not None else Decimal(0)
    # The contract charges floor(fuel x base units per 10**6 fuel / 10**6); with
    # USDC's 6 decimals that is floor(max_usage x usage_price) base units.
    if cap == 0 and int(max_usage * usage_price) == 0:
        raise click.UsageError(
            f"--max-usage {max_usage} fuel at --usage-price {usage_price} USDC per million fuel pays less than "
            "0.000001 USDC per worker and epoch, so workers would earn nothing: raise --max-usage or --usage-price, "
            "or set --max-price"
        )
    return BillingTerms(BillingMode.USAGE, cap, usage_price, max_usage)


def check_replication(context: click.Context, parameter: click.Parameter, value: int | None) -> int | None:
    """Click callback: raise click.BadParameter unless a replication is 1 to MAX_REPLICATION."""
    if value is None or 1 <= value <= MAX_REPLICATION:
        return value
    raise click.BadParameter(
        f"invalid replication {value}: each call runs on 1 to {MAX_REPLICATION} workers of different providers, "
        f"so pass a number from 1 to {MAX_REPLICATION}"
    )


def _check_replication_fits(replication: int, workers: int, max_per_provider: int) -> None:
    """Raise click.UsageError when the deal cannot have `replication` workers on different providers."""
    if replication > workers:
        raise click.UsageError(
            f"--replication {replication} needs {replication} workers on different providers, but --workers is "
            f"{workers}: pass --workers {replication} or more, or a lower --replication"
        )
    # With at most M workers per provider, W workers span at least ceil(W / M) providers.
    guaranteed = -(-workers // max_per_provider)
    if guaranteed < replication:
        console.print(
            f"[yellow]note:[/yellow] --workers {workers} with --max-per-provider {max_per_provider} lets the matcher "
            f"place the workers on as few as {format_count(guaranteed, 'provider')}, but calls need workers on "
            f"{replication} providers; pass --max-per-provider 1 to avoid that"
        )


def _set_replication(session: Session, deal_id: int, replication: int) -> None:
    """Call setReplication, and name the deal and the retry command when it fails."""
    try:
        session.challenges.set_replication(deal_id, replication)
    except (ChainError, ConfigError) as error:
        raise click.ClickException(
            f"deal {deal_id} was created, but setting its replication to {replication} failed: {error}; "
            f"retry with `cloudless deal replication {deal_id} {replication}`"
        ) from error


def check_worker_counts(workers: int, min_workers: int | None) -> None:
    """Raise click.UsageError when --min-workers exceeds --workers."""
    if min_workers is not None and min_workers > workers:
        raise click.UsageError(f"--min-workers {min_workers} exceeds --workers {workers}: use --min-workers {workers} or raise --workers")


def deal_params_for_flags(
    usdc: TokenClient,
    terms: BillingTerms,
    *,
    app_cid: bytes,
    deposit: Decimal,
    workers: int,
    min_workers: int | None,
    cu_per_worker: int,
    max_per_provider: int,
    duration: int,
    **placement: Any,
) -> DealParams:
    """Build the `createDeal` arguments from the deal flags, with USDC amounts in base units.

    `placement` takes the optional DealParams fields regions, min_tier,
    min_sla_bps, access_mode and providers.
    """
    return DealParams(
        app_cid=app_cid,
        payment_token=usdc.address,
        max_price_per_cu_per_epoch=usdc.parse(terms.max_price),
        deposit=usdc.parse(deposit),
        cu_per_worker=cu_per_worker,
        min_workers=min_workers or workers,
        target_workers=workers,
        max_workers_per_provider=max_per_provider,
        duration_epochs=duration,
        billing_mode=terms.mode,
        usage_price_per_megafuel=usdc.parse(terms.usage_price),
        max_usage_per_worker_epoch=terms.max_usage,
        **placement,
    )


def create_deal_for_flags(session: Session, params: DealParams) -> int:
    """Create the deal with `Session.create_deal`, and reword its deposit checks around the --deposit flag."""
    usdc = session.usdc
    try:
        return session.create_deal(params)
    except DepositBelowReserveError as error:
        epochs = params.reserve_epochs(session.deployment.epoch.min_deposited_epochs)
        raise click.ClickException(
            f"--deposit {usdc.format(error.deposit)} USDC is below the reserve of {usdc.format(error.reserve)} USDC "
            f"for these settings ({format_count(epochs, 'epoch')} x {format_count(params.target_workers, 'worker')} x "
            f"{usdc.format(params.max_worker_rate)} USDC per worker and epoch): pass --deposit {usdc.format(error.reserve)} or more"
        ) from error
    except InsufficientBalanceError as error:
        raise click.ClickException(
            f"--deposit {usdc.format(error.required)} USDC exceeds the {usdc.format(error.balance)} USDC balance of "
            f"{session.address}: get test USDC with `cloudless faucet drip` or `cloudless onramp buy`, "
            "or pass a smaller --deposit"
        ) from error


@click.group()
def deal() -> None:
    """Create and manage deals."""


@deal.command("create")
@rpc_option
@key_options(default_index=5)
@click.option("--app-cid", required=True, callback=check_app_cid, help="CIDv1 of the function package (bafkrei...); `cloudless package build` prints it.")
@click.option("--workers", type=click.IntRange(1, MAX_TARGET_WORKERS), default=1, show_default=True, help="Target number of workers.")
@click.option("--min-workers", type=click.IntRange(1, MAX_TARGET_WORKERS), default=None, help="Workers needed for ACTIVE status.  [default: --workers]")
@click.option(
    "--billing",
    type=click.Choice(["subscription", "usage"]),
    default="subscription",
    show_default=True,
    help="subscription: workers earn the matched price per CU per epoch. "
    "usage: they also earn the fuel their calls burn, at --usage-price, up to --max-usage per epoch.",
)
@click.option(
    "--max-price",
    callback=token_amount(USDC_DECIMALS),
    metavar="USDC",
    default=None,
    help="Price cap in USDC per CU per epoch, e.g. 1.5. Required for subscription deals.  [default for usage deals: 0]",
)
@click.option("--usage-price", callback=token_amount(USDC_DECIMALS), metavar="USDC", default=None, help="Usage deals only: USDC per million fuel, e.g. 0.002.")
@click.option("--max-usage", type=click.IntRange(1, MAX_UINT64), metavar="FUEL", default=None, help="Usage deals only: maximum fuel billed per worker and epoch, e.g. 100000000.")
@click.option("--cu-per-worker", type=click.IntRange(1, 1024), default=1, show_default=True, help="Compute units per worker.")
@click.option("--max-per-provider", type=click.IntRange(1, MAX_TARGET_WORKERS), default=1, show_default=True, help="Workers one provider may host.")
@click.option("--duration", type=click.IntRange(0, MAX_UINT64 - 1), default=0, show_default=True, help="Epochs to run; 0 = until the money runs out or `deal stop`.")
@click.option("--region", "regions", type=click.IntRange(0, 65535), multiple=True, help=f"Allowed region code; repeat for up to {MAX_REGIONS}.  [default: any]")
@click.option("--min-tier", type=click.IntRange(0, 4), default=0, show_default=True, help="Lowest datacenter tier.")
@click.option("--min-sla-bps", type=click.IntRange(0, 10000), default=0, show_default=True, help="Lowest SLA in basis points.")
@click.option("--allow", "allow", multiple=True, help=f"Only these provider addresses; repeat for up to {MAX_PROVIDERS}.")
@click.option("--deny", "deny", multiple=True, help=f"Never these provider addresses; repeat for up to {MAX_PROVIDERS}.")
@click.option("--deposit", required=True, callback=token_amount(USDC_DECIMALS), metavar="USDC", help="USDC to escrow; must cover the reserve.")
@click.option(
    "--replication",
    type=int,
    default=1,
    show_default=True,
    callback=check_replication,
    metavar="K",
    help=f"Run each call on K workers of different providers (1 to {MAX_REPLICATION}); "
    "the gateway returns only an output that they agree on. A second transaction sets it after the deal is created.",
)
@click.option(
    "--caller",
    "callers",
    multiple=True,
    callback=check_callers,
    metavar="ADDRESS",
    help="Count only requests signed by this key (for example the gateway's); repeat for more.  [default: any key]",
)
@handle_errors
def create_deal(
    rpc_url: str,
    account_index: int | None,
    app_cid: bytes,
    workers: int,
    min_workers: int | None,
    billing: str,
    max_price: Decimal | None,
    usage_price: Decimal | None,
    max_usage: int | None,
    cu_per_worker: int,
    max_per_provider: int,
    duration: int,
    regions: tuple[int, ...],
    min_tier: int,
    min_sla_bps: int,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    deposit: Decimal,
    replication: int,
    callers: tuple[str, ...],
) -> None:
    """Create a deal and escrow its deposit.

    With --replication K above 1, a second transaction sets the deal's
    replication, as `cloudless deal replication DEAL_ID K` does, so that
    gateways run each call on K workers of different providers. Each
    --caller is allowed with one more transaction, as `cloudless deal
    callers DEAL_ID --allow ADDRESS` does.
    """
    if allow and deny:
        raise click.UsageError("pass either --allow or --deny, not both: e.g. `cloudless deal create ... --allow 0xPROVIDER`")
    for address in allow + deny:
        if not is_address(address):
            raise click.UsageError(f"invalid provider address {address!r}: use a 0x-prefixed 20-byte hex address")
    if len(allow + deny) > MAX_PROVIDERS:
        raise click.UsageError(
            f"too many --allow or --deny addresses ({len(allow + deny)}): a deal lists at most {MAX_PROVIDERS} providers"
        )
    if len(regions) > MAX_REGIONS:
        raise click.UsageError(f"too many --region options ({len(regions)}): a deal allows at most {MAX_REGIONS} regions")
    check_worker_counts(workers, min_workers)
    terms = billing_terms(billing, max_price, usage_price, max_usage)
    _check_replication_fits(replication, workers, max_per_provider)

    session = open_session(rpc_url, account_index)
    access_mode = AccessMode.NONE
    if allow:
        access_mode = AccessMode.ALLOW_LIST
    elif deny:
        access_mode = AccessMode.DENY_LIST
    params = deal_params_for_flags(
        session.usdc,
        terms,
        app_cid=app_cid,
        deposit=deposit,
        workers=workers,
        min_workers=min_workers,
        cu_per_worker=cu_per_worker,
        max_per_provider=max_per_provider,
        duration=duration,
        regions=regions,
        min_tier=min_tier,
        min_sla_bps=min_sla_bps,
        access_mode=access_mode,
        providers=allow or deny,
    )
    deal_id = create_deal_for_flags(session, params)
    if replication > 1:
        _set_replication(session, deal_id, replication)
    allow_callers(session, deal_id, callers)
    status = session.deals.deal_status(deal_id)
    console.print(f"deal [bold]{deal_id}[/bold] created by {session.address}: status {status.name}, replication {replication}")


def _describe_billing(info: Deal, usdc: TokenClient) -> str:
    """Describe a deal's billing mode and, for USAGE deals, its usage price and cap."""
    if info.billing_mode != BillingMode.USAGE:
        return f"billing {info.billing_mode.name}"
    return (
        f"billing USAGE: {usdc.format(info.usage_price_per_megafuel)} USDC per million fuel, at most "
        f"{info.max_usage_per_worker_epoch} fuel per worker and epoch "
        f"(up to {usdc.format(info.usage_reserve_per_worker)} USDC per worker and epoch on top of the CU price)"
    )


@deal.command("status")
@rpc_option
@click.argument("deal_id", type=click.IntRange(1))
@handle_errors
def deal_status(rpc_url: str, deal_id: int) -> None:
    """Show a deal's status, billing, balance and workers."""
    session = open_session(rpc_url, None)
    deals = session.deals
    deal_count = deals.deal_count()
    if deal_id > deal_count:
        raise click.ClickException(f"deal {deal_id} not found: this deployment has {format_count(deal_count, 'deal')}")

    info = deals.get_deal(deal_id)
    usdc = session.usdc
    # `end_epoch` is the first epoch not billed, so the last billed one is end_epoch - 1.
    if info.end_epoch == OPEN_ENDED_EPOCH:
        epochs = f"from epoch {info.start_epoch}, open-ended"
    else:
        epochs = f"epochs {info.start_epoch} to {info.end_epoch - 1} ({format_count(info.end_epoch - info.start_epoch, 'epoch')})"
    console.print(f"deal [bold]{deal_id}[/bold]  status [bold]{deals.deal_status(deal_id).name}[/bold]  epoch {deals.current_epoch()}")
    console.print(f"  owner {info.owner}  app {cid_from_bytes(info.app_cid)}")
    console.print(
        f"  workers {info.active_workers}/{info.target_workers} (min {info.min_workers})  cap "
        f"{usdc.format(info.max_price_per_cu_per_epoch)} USDC/CU/epoch  {epochs}"
    )
    console.print(f"  {_describe_billing(info, usdc)}")
    try:
        console.print(f"  replication {session.challenges.replication_of(deal_id)}")
    except ConfigError:
        # A deployment recorded before the ChallengeManager existed has no replication.
        pass
    # The views settle to the current epoch; what settlement would move out
    # of the stored balance is pending too.
    balance_now = deals.deal_balance(deal_id)
    pending_now = info.pending + info.balance - balance_now
    console.print(
        f"  balance {usdc.format(balance_now)} USDC  pending {usdc.format(pending_now)}  "
        f"withdrawable {usdc.format(deals.withdrawable(deal_id))}"
    )

    worker_ids = deals.deal_worker_ids(deal_id)
    if not worker_ids:
        console.print("  no workers placed yet")
        return
    table = Table("worker", "peer", "provider", "USDC/epoch", "joined", "left", "claimed until", "active")
    for worker_id in worker_ids:
        worker = deals.get_worker(worker_id)
        left = "-" if worker.left_epoch == OPEN_ENDED_EPOCH else str(worker.left_epoch)
        table.add_row(
            str(worker_id),
            str(worker.peer_id),
            worker.provider,
            usdc.format(worker.rate_per_epoch),
            str(worker.joined_epoch),
            left,
            str(worker.claimed_until_epoch),
            "yes" if worker.active else "no",
        )
    console.print(table)


def _describe_replication(replication: int) -> str:
    if replication == 1:
        return "replication 1: each call runs on one worker"
    return f"replication {replication}: each call runs on {replication} workers of different providers"


@deal.command("replication")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("replication", type=int, required=False, callback=check_replication, metavar="[K]")
@handle_errors
def replication_command(rpc_url: str, account_index: int | None, deal_id: int, replication: int | None) -> None:
    """Show a deal's replication, or set it to K (1 to 5) as the deal's owner.

    With replication K, gateways run each call on K workers of different
    providers at once and return an output only when all K receipts agree
    on the output and the fuel. When they disagree, one more provider breaks
    the tie, and the gateway lists the disagreement in its evidence feed
    (GET /evidence) for verifiers. Calls fail with 503 while the deal's
    workers are on fewer than K providers.
    """
    session = open_session(rpc_url, account_index)
    deals = session.deals
    deal_count = deals.deal_count()
    if deal_id > deal_count:
        raise click.ClickException(f"deal {deal_id} not found: this deployment has {format_count(deal_count, 'deal')}")
    challenges = session.challenges
    if replication is None:
        console.print(f"deal {deal_id}: {_describe_replication(challenges.replication_of(deal_id))}")
        return

    info = deals.get_deal(deal_id)
    owner = info.owner
    if replication > info.target_workers:
        raise click.ClickException(
            f"deal {deal_id} has {format_count(info.target_workers, 'target worker')}, but replication {replication} "
            f"needs {replication} workers on different providers: create a deal with "
            f"`cloudless deal create --workers {replication} --replication {replication} ...`"
        )
    if owner.lower() != session.address.lower():
        raise click.ClickException(
            f"only the owner {owner} of deal {deal_id} can set its replication, not {session.address}: "
            "pass the owner's --account-index or set CLOUDLESS_PRIVATE_KEY to the owner's key"
        )
    challenges.set_replication(deal_id, replication)
    console.print(f"deal {deal_id}: {_describe_replication(challenges.replication_of(deal_id))}")


@deal.command("deposit")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("amount", callback=token_amount(USDC_DECIMALS, above_zero=True), metavar="AMOUNT")
@handle_errors
def deposit(rpc_url: str, account_index: int | None, deal_id: int, amount: Decimal) -> None:
    """Top a deal up with AMOUNT USDC."""
    session = open_session(rpc_url, account_index)
    session.deposit(deal_id, session.usdc.parse(amount))
    console.print(f"deal {deal_id}: balance {session.usdc.format(session.deals.deal_balance(deal_id))} USDC")


def _withdraw_limit_message(usdc: TokenClient, deal_id: int, amount: int, withdrawable: int) -> str:
    return (
        f"cannot withdraw {usdc.format(amount)} USDC from deal {deal_id}: at most {usdc.format(withdrawable)} USDC "
        "can be withdrawn now; the rest is the reserve"
    )


@deal.command("withdraw")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("amount", callback=token_amount(USDC_DECIMALS, above_zero=True), metavar="AMOUNT")
@handle_errors
def withdraw(rpc_url: str, account_index: int | None, deal_id: int, amount: Decimal) -> None:
    """Withdraw AMOUNT USDC from a deal, down to its reserve."""
    session = open_session(rpc_url, account_index)
    usdc = session.usdc
    base_units = usdc.parse(amount)
    withdrawable = session.deals.withdrawable(deal_id)
    if base_units > withdrawable:
        raise click.ClickException(_withdraw_limit_message(usdc, deal_id, base_units, withdrawable))
    try:
        session.deals.withdraw(deal_id, base_units)
    except ContractRevertError as error:
        # An epoch can end between the check and the transaction, and its settlement lowers what can be withdrawn.
        if error.error_name != "DealWithdrawBelowReserve":
            raise
        limit = int(error.error_args["withdrawable"])  # type: ignore[call-overload]
        raise click.ClickException(_withdraw_limit_message(usdc, deal_id, base_units, limit)) from error
    console.print(f"deal {deal_id}: balance {usdc.format(session.deals.deal_balance(deal_id))} USDC")


@deal.command("stop")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@handle_errors
def stop(rpc_url: str, account_index: int | None, deal_id: int) -> None:
    """Stop a deal; the current epoch is the last one billed."""
    session = open_session(rpc_url, account_index)
    session.deals.stop_deal(deal_id)
    console.print(f"deal {deal_id} stopped; withdrawable after the current epoch: {session.usdc.format(session.deals.withdrawable(deal_id))} USDC")


deal.add_command(callers_command)
