"""Deploy FLT, the test USDC, Market, DealManager, ChallengeManager and the test token Faucet, and wire them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudless.chain.artifacts import load_artifact
from cloudless.chain.client import ChainClient
from cloudless.chain.deployment import ContractRecord, Deployment, EpochSettings, deployment_path
from cloudless.exceptions import ConfigError
from cloudless.formatting import format_count

__all__ = ["DeploySettings", "challenge_parameters", "deploy_all", "deploy_and_record"]

logger = logging.getLogger("cloudless.chain")


@dataclass(frozen=True)
class DeploySettings:
    """Protocol parameters fixed at deployment."""

    epoch_duration: int = 60  # seconds
    proof_window_epochs: int = 2
    challenge_window_epochs: int = 1  # after the proof window; claims wait for it
    min_deposited_epochs: int = 2
    challenge_bond: int = 10 * 10**18  # FLT wei a challenger puts up
    slash_amount: int = 100 * 10**18  # FLT wei taken per upheld challenge or fraud proof
    missed_proof_slash_amount: int = 10 * 10**18  # FLT wei taken per unproven funded epoch
    # Seconds a peer has to answer a challenge. None: half the challenge window,
    # so a challenge opened in its first half is answered before claims open.
    answer_period: int | None = None
    collateral_per_cu: int = 10 * 10**18  # FLT wei of stake per offered CU
    unbonding_period: int = 3600  # seconds
    genesis: int = 0  # unix seconds; 0 = the DealManager's deployment block
    # One faucet drip covers the stake of 10 CUs at the default collateral rate
    # and a few small deals; the funding lasts 1000 drips.
    faucet_flt_drip: int = 100 * 10**18  # FLT wei per drip
    faucet_usdc_drip: int = 50 * 10**6  # USDC base units per drip
    faucet_cooldown: int = 3600  # seconds between two drips to one recipient
    faucet_flt_funding: int = 100_000 * 10**18  # FLT wei minted to the faucet at deployment
    faucet_usdc_funding: int = 50_000 * 10**6  # USDC base units minted to the faucet at deployment


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
    # Both are checked before the first transaction, so nothing is half deployed.
    check_settings(settings)
    parameters = challenge_parameters(settings)
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
        settings.challenge_window_epochs,
        settings.min_deposited_epochs,
        owner,
    )

    # The EIP-712 domain of call requests and receipts.
    receipts = _deploy(client, "ExecutionReceipts")

    market_contract = client.contract("Market", market.address)
    client.transact(market_contract.functions.setDealManager(deal_manager.address))
    deals_contract = client.contract("DealManager", deal_manager.address)
    client.transact(deals_contract.functions.setPaymentToken(usdc.address, True))

    challenges = _deploy(
        client,
        "ChallengeManager",
        deal_manager.address,
        market.address,
        receipts.address,
        flt.address,
        owner,
        parameters,
    )
    # The challenge manager forfeits epochs in the DealManager and slashes in the Market.
    client.transact(deals_contract.functions.setChallengeManager(challenges.address))
    client.transact(market_contract.functions.setSlasher(challenges.address, True))

    faucet = _deploy_faucet(client, settings, flt_address=flt.address, usdc_address=usdc.address)

    genesis = int(client.call(deals_contract.functions.genesis()))
    return Deployment(
        chain_id=client.w3.eth.chain_id,
        rpc_url=rpc_url,
        deployer=owner,
        contracts={
            "FLT": flt,
            "TestUSDC": usdc,
            "Market": market,
            "DealManager": deal_manager,
            "ExecutionReceipts": receipts,
            "ChallengeManager": challenges,
            "Faucet": faucet,
        },
        epoch=EpochSettings(
            genesis=genesis,
            duration=settings.epoch_duration,
            proof_window_epochs=settings.proof_window_epochs,
            min_deposited_epochs=settings.min_deposited_epochs,
            challenge_window_epochs=settings.challenge_window_epochs,
        ),
        collateral_per_cu=settings.collateral_per_cu,
        unbonding_period=settings.unbonding_period,
    )


_UINT64_MAX = 2**64 - 1
_UINT128_MAX = 2**128 - 1
_UINT256_MAX = 2**256 - 1


def check_settings(settings: DeploySettings) -> None:
    """Raise ConfigError, before any transaction, for a setting that the contracts cannot take."""
    limits = {
        "epoch duration": (settings.epoch_duration, 1, _UINT64_MAX),
        "proof window": (settings.proof_window_epochs, 1, _UINT64_MAX),
        "challenge window": (settings.challenge_window_epochs, 0, _UINT64_MAX),
        "minimum deposited epochs": (settings.min_deposited_epochs, 1, _UINT64_MAX),
        "genesis": (settings.genesis, 0, _UINT64_MAX),
        "unbonding period": (settings.unbonding_period, 0, _UINT64_MAX),
        "collateral per CU": (settings.collateral_per_cu, 0, _UINT256_MAX),
        "challenge bond": (settings.challenge_bond, 1, _UINT128_MAX),
        "slash amount": (settings.slash_amount, 1, _UINT128_MAX),
        "missed-proof slash amount": (settings.missed_proof_slash_amount, 1, _UINT128_MAX),
    }
    for name, (value, low, high) in limits.items():
        if not low <= value <= high:
            raise ConfigError(f"invalid {name} {value}: use a whole number from {low} to {high}")
    # Claims wait for both windows, counted in uint64 epochs on chain.
    if settings.proof_window_epochs + settings.challenge_window_epochs >= _UINT64_MAX:
        raise ConfigError(
            f"proof window {settings.proof_window_epochs} plus challenge window {settings.challenge_window_epochs} "
            f"epochs exceeds {_UINT64_MAX - 1}: shorten one of them"
        )


def challenge_parameters(settings: DeploySettings) -> tuple[int, int, int, int]:
    """The ChallengeManager's `Parameters` tuple: bond, slash amounts and answer period."""
    window = settings.challenge_window_epochs * settings.epoch_duration
    answer_period = settings.answer_period if settings.answer_period is not None else max(window // 2, 1)
    if window and answer_period >= window:
        raise ConfigError(
            f"a challenge window of {window} s ({format_count(settings.challenge_window_epochs, 'epoch')} of "
            f"{settings.epoch_duration} s) leaves no time to answer a challenge within {answer_period} s: "
            "use longer epochs (at least 2 s), a longer challenge window, or a challenge window of 0"
        )
    if not 1 <= answer_period <= _UINT64_MAX:
        raise ConfigError(
            f"an answer period of {answer_period} s (half the challenge window) does not fit in 64 bits: "
            "use shorter epochs or a shorter challenge window"
        )
    return (settings.challenge_bond, settings.slash_amount, settings.missed_proof_slash_amount, answer_period)


def _deploy_faucet(client: ChainClient, settings: DeploySettings, *, flt_address: str, usdc_address: str) -> ContractRecord:
    """Deploy the Faucet and fund it by minting both tokens to it (the deployer owns the tokens)."""
    faucet = _deploy(
        client,
        "Faucet",
        flt_address,
        usdc_address,
        settings.faucet_flt_drip,
        settings.faucet_usdc_drip,
        settings.faucet_cooldown,
        client.address,
    )
    if settings.faucet_flt_funding:
        flt_contract = client.contract("FLT", flt_address)
        client.transact(flt_contract.functions.mint(faucet.address, settings.faucet_flt_funding), description="fund Faucet with FLT")
    if settings.faucet_usdc_funding:
        usdc_contract = client.contract("TestUSDC", usdc_address)
        client.transact(usdc_contract.functions.mint(faucet.address, settings.faucet_usdc_funding), description="fund Faucet with USDC")
    return faucet


def deploy_and_record(rpc_url: str, private_key: str, settings: DeploySettings) -> tuple[Deployment, Path]:
    """Deploy everything from `private_key`'s account and write `deployments/<chain-id>.json`."""
    client = ChainClient.connect(rpc_url, private_key=private_key)
    deployment = deploy_all(client, settings, rpc_url=rpc_url)
    path = deployment_path(deployment.chain_id)
    deployment.save(path)
    return deployment, path
