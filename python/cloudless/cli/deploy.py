"""`cloudless deploy`: deploy the contracts with the binding layer (no Ape needed)."""

from __future__ import annotations

import click

from cloudless.chain.deploy import DeploySettings, deploy_and_record
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.cli.common import handle_errors, rpc_option

__all__ = ["deploy"]


@click.command()
@rpc_option
@click.option("--account-index", type=click.IntRange(0, 999), default=0, show_default=True, help="Local test account that deploys; ignored when $CLOUDLESS_PRIVATE_KEY is set.")
@click.option("--epoch-duration", type=click.IntRange(1), default=60, show_default=True, help="Seconds per epoch.")
@click.option("--proof-window", type=click.IntRange(1), default=2, show_default=True, help="Epochs after an epoch ends during which its proof is accepted.")
@click.option("--challenge-window", type=click.IntRange(0), default=1, show_default=True, help="Epochs after the proof window during which anyone may challenge a proof; claims wait for them. 0 turns challenges off.")
@click.option("--min-deposited-epochs", type=click.IntRange(1), default=2, show_default=True, help="Epochs at the price cap that a running deal keeps in escrow.")
@click.option("--collateral-per-cu", type=click.IntRange(0), default=10, show_default=True, help="FLT of stake per offered CU.")
@click.option("--unbonding-period", type=click.IntRange(0), default=3600, show_default=True, help="Seconds between an unstake request and the withdrawal.")
@handle_errors
def deploy(
    rpc_url: str,
    account_index: int,
    epoch_duration: int,
    proof_window: int,
    challenge_window: int,
    min_deposited_epochs: int,
    collateral_per_cu: int,
    unbonding_period: int,
) -> None:
    """Deploy FLT, test USDC, Market, DealManager and ChallengeManager; write deployments/<chain-id>.json."""
    settings = DeploySettings(
        epoch_duration=epoch_duration,
        proof_window_epochs=proof_window,
        challenge_window_epochs=challenge_window,
        min_deposited_epochs=min_deposited_epochs,
        collateral_per_cu=collateral_per_cu * 10**18,
        unbonding_period=unbonding_period,
    )
    deployment, path = deploy_and_record(rpc_url, private_key_from_env_or_index(account_index), settings)
    click.echo(f"deployed to chain {deployment.chain_id}; wrote {path}")
