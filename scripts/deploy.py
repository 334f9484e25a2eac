"""Deploy Cloudless to the connected network and write deployments/<chain-id>.json.

    ape run deploy                      # to the anvil at 127.0.0.1:8545 (start it first)
    ape run deploy --epoch-duration 10  # 10 s epochs
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain.deploy import DeploySettings, deploy_and_record
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.exceptions import CloudlessError


@click.command(cls=ConnectedProviderCommand)
@click.option("--epoch-duration", type=click.IntRange(1), default=60, show_default=True, help="Seconds per epoch.")
@click.option("--proof-window", type=click.IntRange(1), default=2, show_default=True, help="Epochs after an epoch ends during which its proof is accepted.")
@click.option("--challenge-window", type=click.IntRange(0), default=1, show_default=True, help="Epochs after the proof window during which anyone may challenge a proof; claims wait for them. 0 turns challenges off.")
@click.option("--min-deposited-epochs", type=click.IntRange(1), default=2, show_default=True, help="Epochs at the price cap a deal must keep in escrow.")
@click.option("--collateral-per-cu", type=click.IntRange(0), default=10, show_default=True, help="FLT of stake per offered compute unit.")
@click.option("--unbonding-period", type=click.IntRange(0), default=3600, show_default=True, help="Seconds between an unstake request and the withdrawal.")
@click.option("--deployer-index", type=click.IntRange(0, 999), default=0, show_default=True, help="Local test account that deploys (ignored when CLOUDLESS_PRIVATE_KEY is set).")
def cli(epoch_duration, proof_window, challenge_window, min_deposited_epochs, collateral_per_cu, unbonding_period, deployer_index):
    """Deploy FLT, test USDC, Market, DealManager and ChallengeManager."""
    rpc_url = chain.provider.uri
    if getattr(chain.provider, "process", None) is not None:
        # Ape found no node at the configured host and started its own anvil,
        # which stops when this script ends: the deployment would vanish.
        raise click.ClickException(
            f"no chain was listening at {rpc_url}, so Ape started a temporary anvil that stops with this script: "
            "start anvil first (`anvil --block-time 1 --accounts 20`), or point APE_FOUNDRY_HOST at your node"
        )
    settings = DeploySettings(
        epoch_duration=epoch_duration,
        proof_window_epochs=proof_window,
        challenge_window_epochs=challenge_window,
        min_deposited_epochs=min_deposited_epochs,
        collateral_per_cu=collateral_per_cu * 10**18,
        unbonding_period=unbonding_period,
    )
    try:
        deployment, path = deploy_and_record(rpc_url, private_key_from_env_or_index(deployer_index), settings)
    except (CloudlessError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"deployed to chain {deployment.chain_id}; wrote {path}")
    for name, record in deployment.contracts.items():
        click.echo(f"  {name:12} {record.address}")
