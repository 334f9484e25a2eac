"""Deploy FLT, the test USDC, Market and DealManager, and wire them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudless.chain.artifacts import load_artifact
from cloudless.chain.client import ChainClient
from cloudless.chain.deployment import ContractRecord, Deployment, EpochSettings, deployment_path

__all__ = ["DeploySettings", "deploy_all", "deploy_and_record"]

logger = logging.getLogger("cloudless.chain")


@dataclass(frozen=True)
class DeploySettings:
    """Protocol parameters fixed at deployment."""

    epoch_duration: int = 60  # seconds
    proof_window_epochs: int = 2
    min_deposited_epochs: int = 2
    collateral_per_cu: int = 10 * 10**18  # FLT wei of stake per offered CU
    unbonding_period: int = 3600  # seconds
    genesis: int = 0  # unix seconds; 0 = the DealManager's deployment block


def _deploy(client: ChainClient, name: str, *args: Any) -> ContractRecord:
    artifact = load_artifact(name)
    factory = client.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = client.transact(factory.constructor(*args), description=f"deploy {name}")
    record = ContractRecord(address=str(receipt["contractAddress"]), block=int(receipt["blockNumber"]))
    logger.info("deployed %s at %s (block %d)", name, record.address, record.block)
    return record


def deploy_all(client: ChainClient, settings: DeploySettings, *, rpc_url: str) -> Deployment:
    """Deploy every contract from `client`'s account and return the deployment record."""
    owner = client.address
    flt = _deploy(client, "FLT", owner)
    usdc = _deploy(client, "TestUSDC", owner)
    market = _deploy(client, "Market", flt.address, settings.collateral_per_cu, settings.unbonding_period, owner)
    deal_manager = _deploy(
        client,
        "DealManager",
        market.address,
        settings.genesis,
        settings.epoch_duration,
        settings.proof_window_epochs,
        settings.min_deposited_epochs,
        owner,
    )

    market_contract = client.contract("Market", market.address)
    client.transact(market_contract.functions.setDealManager(deal_manager.address))
    deals_contract = client.contract("DealManager", deal_manager.address)
    client.transact(deals_contract.functions.setPaymentToken(usdc.address, True))

    genesis = int(client.call(deals_contract.functions.genesis()))
    return Deployment(
        chain_id=client.w3.eth.chain_id,
        rpc_url=rpc_url,
        deployer=owner,
        contracts={"FLT": flt, "TestUSDC": usdc, "Market": market, "DealManager": deal_manager},
        epoch=EpochSettings(
            genesis=genesis,
            duration=settings.epoch_duration,
            proof_window_epochs=settings.proof_window_epochs,
            min_deposited_epochs=settings.min_deposited_epochs,
        ),
        collateral_per_cu=settings.collateral_per_cu,
        unbonding_period=settings.unbonding_period,
    )


def deploy_and_record(rpc_url: str, private_key: str, settings: DeploySettings) -> tuple[Deployment, Path]:
    """Deploy everything from `private_key`'s account and write `deployments/<chain-id>.json`."""
    client = ChainClient.connect(rpc_url, private_key=private_key)
    deployment = deploy_all(client, settings, rpc_url=rpc_url)
    path = deployment_path(deployment.chain_id)
    deployment.save(path)
    return deployment, path
