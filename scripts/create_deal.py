"""Create a deal for a function package.

    ape run create_deal --account-index 5 --app-cid bafkrei... --workers 2 \
        --max-price 1 --deposit 100

The owner needs test USDC (`ape run fund --usdc ...`).
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain import connect
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.types import DealParams
from cloudless.cid import cid_to_bytes


@click.command(cls=ConnectedProviderCommand)
@click.option("--account-index", default=5, show_default=True, help="Local test account of the deal owner (ignored when CLOUDLESS_PRIVATE_KEY is set).")
@click.option("--app-cid", required=True, help="CIDv1 of the function package (bafkrei...).")
@click.option("--workers", default=1, show_default=True, help="Target number of workers.")
@click.option("--min-workers", default=None, type=int, help="Workers needed to be ACTIVE; default: --workers.")
@click.option("--max-price", required=True, help="Price cap in USDC per CU per epoch.")
@click.option("--cu-per-worker", default=1, show_default=True, help="Compute units per worker.")
@click.option("--max-per-provider", default=1, show_default=True, help="Workers one provider may host.")
@click.option("--duration", default=0, show_default=True, help="Epochs to run; 0 = until the money runs out.")
@click.option("--deposit", required=True, help="USDC to escrow.")
def cli(account_index, app_cid, workers, min_workers, max_price, cu_per_worker, max_per_provider, duration, deposit):
    """Create a subscription deal and escrow its deposit."""
    session = connect(chain.provider.uri, private_key_from_env_or_index(account_index))
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
    )
    deal_id = session.create_deal(params)
    click.echo(f"deal {deal_id} created by {session.address}; status {session.deals.deal_status(deal_id).name}")
