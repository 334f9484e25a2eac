"""Create a deal for a function package.

    ape run create_deal --account-index 5 --app-cid bafkrei... --workers 2 \
        --max-price 1 --deposit 100
    ape run create_deal --app-cid bafkrei... --billing usage --usage-price 0.002 \
        --max-usage 100000000 --deposit 10

The owner needs test USDC (`ape run fund --usdc ...`).
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain import connect
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.types import MAX_TARGET_WORKERS
from cloudless.cli.common import USDC_DECIMALS, check_app_cid, token_amount
from cloudless.cli.deal import MAX_UINT64, billing_terms, check_worker_counts, create_deal_for_flags, deal_params_for_flags
from cloudless.exceptions import CloudlessError


@click.command(cls=ConnectedProviderCommand)
@click.option("--account-index", type=click.IntRange(0, 999), default=5, show_default=True, help="Local test account of the deal owner (ignored when CLOUDLESS_PRIVATE_KEY is set).")
@click.option("--app-cid", required=True, callback=check_app_cid, help="CIDv1 of the function package (bafkrei...); `cloudless package build` prints it.")
@click.option("--workers", type=click.IntRange(1, MAX_TARGET_WORKERS), default=1, show_default=True, help="Target number of workers.")
@click.option("--min-workers", type=click.IntRange(1, MAX_TARGET_WORKERS), default=None, help="Workers needed to be ACTIVE; default: --workers.")
@click.option("--billing", type=click.Choice(["subscription", "usage"]), default="subscription", show_default=True, help="usage: workers also earn the fuel their calls burn.")
@click.option("--max-price", callback=token_amount(USDC_DECIMALS), metavar="USDC", default=None, help="Price cap in USDC per CU per epoch; required for subscription deals, default 0 for usage deals.")
@click.option("--usage-price", callback=token_amount(USDC_DECIMALS), metavar="USDC", default=None, help="Usage deals only: USDC per million fuel, e.g. 0.002.")
@click.option("--max-usage", type=click.IntRange(1, MAX_UINT64), metavar="FUEL", default=None, help="Usage deals only: maximum fuel billed per worker and epoch.")
@click.option("--cu-per-worker", type=click.IntRange(1, 1024), default=1, show_default=True, help="Compute units per worker.")
@click.option("--max-per-provider", type=click.IntRange(1, MAX_TARGET_WORKERS), default=1, show_default=True, help="Workers one provider may host.")
@click.option("--duration", type=click.IntRange(0, MAX_UINT64 - 1), default=0, show_default=True, help="Epochs to run; 0 = until the money runs out.")
@click.option("--deposit", required=True, callback=token_amount(USDC_DECIMALS), metavar="USDC", help="USDC to escrow; must cover the reserve.")
def cli(account_index, app_cid, workers, min_workers, billing, max_price, usage_price, max_usage, cu_per_worker, max_per_provider, duration, deposit):
    """Create a deal and escrow its deposit."""
    check_worker_counts(workers, min_workers)
    terms = billing_terms(billing, max_price, usage_price, max_usage)
    try:
        session = connect(chain.provider.uri, private_key_from_env_or_index(account_index))
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
        )
        deal_id = create_deal_for_flags(session, params)
        status = session.deals.deal_status(deal_id)
    except (CloudlessError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"deal {deal_id} created by {session.address}; status {status.name}")
