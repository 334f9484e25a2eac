"""`cloudless deal ...`: create and manage deals."""

from __future__ import annotations

import click
from eth_utils import is_address
from rich.console import Console
from rich.table import Table

from cloudless.chain.types import OPEN_ENDED_EPOCH, AccessMode, DealParams
from cloudless.cid import cid_from_bytes, cid_to_bytes
from cloudless.cli.common import handle_errors, key_options, open_session, rpc_option

__all__ = ["deal"]

console = Console()


@click.group()
def deal() -> None:
    """Create and manage deals."""


@deal.command("create")
@rpc_option
@key_options(default_index=5)
@click.option("--app-cid", required=True, help="CIDv1 of the function package (bafkrei...); `cloudless package build` prints it.")
@click.option("--workers", type=click.IntRange(1, 1000), default=1, show_default=True, help="Target number of workers.")
@click.option("--min-workers", type=click.IntRange(1, 1000), default=None, help="Workers needed for ACTIVE status.  [default: --workers]")
@click.option("--max-price", required=True, help="Price cap in USDC per CU per epoch, e.g. 1.5.")
@click.option("--cu-per-worker", type=click.IntRange(1, 1024), default=1, show_default=True, help="Compute units per worker.")
@click.option("--max-per-provider", type=click.IntRange(1, 1000), default=1, show_default=True, help="Workers one provider may host.")
@click.option("--duration", type=click.IntRange(0), default=0, show_default=True, help="Epochs to run; 0 = until the money runs out or `deal stop`.")
@click.option("--region", "regions", type=click.IntRange(0, 65535), multiple=True, help="Allowed region code; repeat for several.  [default: any]")
@click.option("--min-tier", type=click.IntRange(0, 4), default=0, show_default=True, help="Lowest datacenter tier.")
@click.option("--min-sla-bps", type=click.IntRange(0, 10000), default=0, show_default=True, help="Lowest SLA in basis points.")
@click.option("--allow", "allow", multiple=True, help="Only these provider addresses; repeat for several.")
@click.option("--deny", "deny", multiple=True, help="Never these provider addresses; repeat for several.")
@click.option("--deposit", required=True, help="USDC to escrow; must cover the reserve.")
@handle_errors
def create_deal(
    rpc_url: str,
    account_index: int | None,
    app_cid: str,
    workers: int,
    min_workers: int | None,
    max_price: str,
    cu_per_worker: int,
    max_per_provider: int,
    duration: int,
    regions: tuple[int, ...],
    min_tier: int,
    min_sla_bps: int,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    deposit: str,
) -> None:
    """Create a deal and escrow its deposit."""
    if allow and deny:
        raise click.UsageError("pass either --allow or --deny, not both: e.g. `cloudless deal create ... --allow 0xPROVIDER`")
    for address in allow + deny:
        if not is_address(address):
            raise click.UsageError(f"invalid provider address {address!r}: use a 0x-prefixed 20-byte hex address")
    if min_workers is not None and min_workers > workers:
        raise click.UsageError(f"--min-workers {min_workers} exceeds --workers {workers}: use --min-workers {workers} or raise --workers")

    session = open_session(rpc_url, account_index)
    access_mode = AccessMode.NONE
    if allow:
        access_mode = AccessMode.ALLOW_LIST
    elif deny:
        access_mode = AccessMode.DENY_LIST
    params = DealParams(
        app_cid=cid_to_bytes(app_cid),
        payment_token=session.usdc.address,
        max_price_per_cu_per_epoch=session.usdc.parse(max_price),
        deposit=session.usdc.parse(deposit),
        cu_per_worker=cu_per_worker,
        min_workers=min_workers or workers,
        target_workers=workers,
        max_workers_per_provider=max_per_provider,
        duration_epochs=duration,
        regions=regions,
        min_tier=min_tier,
        min_sla_bps=min_sla_bps,
        access_mode=access_mode,
        providers=allow or deny,
    )
    deal_id = session.create_deal(params)
    status = session.deals.deal_status(deal_id)
    console.print(f"deal [bold]{deal_id}[/bold] created by {session.address}: status {status.name}")


@deal.command("status")
@rpc_option
@click.argument("deal_id", type=click.IntRange(1))
@handle_errors
def deal_status(rpc_url: str, deal_id: int) -> None:
    """Show a deal's status, balance and workers."""
    session = open_session(rpc_url, None)
    deals = session.deals
    if deal_id > deals.deal_count():
        raise click.ClickException(f"deal {deal_id} not found: this deployment has {deals.deal_count()} deals")

    info = deals.get_deal(deal_id)
    usdc = session.usdc
    end = "open-ended" if info.end_epoch == OPEN_ENDED_EPOCH else str(info.end_epoch)
    console.print(f"deal [bold]{deal_id}[/bold]  status [bold]{deals.deal_status(deal_id).name}[/bold]  epoch {deals.current_epoch()}")
    console.print(f"  owner {info.owner}  app {cid_from_bytes(info.app_cid)}")
    console.print(
        f"  workers {info.active_workers}/{info.target_workers} (min {info.min_workers})  cap "
        f"{usdc.format(info.max_price_per_cu_per_epoch)} USDC/CU/epoch  epochs {info.start_epoch}..{end}"
    )
    # The views settle to the current epoch; what settlement would move out
    # of the stored balance is pending too.
    balance_now = deals.deal_balance(deal_id)
    pending_now = info.pending + info.balance - balance_now
    console.print(
        f"  balance {usdc.format(balance_now)} USDC  pending {usdc.format(pending_now)}  "
        f"withdrawable {usdc.format(deals.withdrawable(deal_id))}"
    )

    table = Table("worker", "peer", "provider", "USDC/epoch", "joined", "left", "claimed until", "active")
    for worker_id in deals.deal_worker_ids(deal_id):
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


@deal.command("deposit")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("amount")
@handle_errors
def deposit(rpc_url: str, account_index: int | None, deal_id: int, amount: str) -> None:
    """Top a deal up with AMOUNT USDC."""
    session = open_session(rpc_url, account_index)
    session.deposit(deal_id, session.usdc.parse(amount))
    console.print(f"deal {deal_id}: balance {session.usdc.format(session.deals.deal_balance(deal_id))} USDC")


@deal.command("withdraw")
@rpc_option
@key_options(default_index=5)
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("amount")
@handle_errors
def withdraw(rpc_url: str, account_index: int | None, deal_id: int, amount: str) -> None:
    """Withdraw AMOUNT USDC from a deal, down to its reserve."""
    session = open_session(rpc_url, account_index)
    session.deals.withdraw(deal_id, session.usdc.parse(amount))
    console.print(f"deal {deal_id}: balance {session.usdc.format(session.deals.deal_balance(deal_id))} USDC")


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
