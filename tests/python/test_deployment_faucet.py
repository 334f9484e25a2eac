"""Deployment records written before the Faucet existed still load; only faucet use fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from cloudless.chain.client import ChainClient
from cloudless.chain.deployment import ContractRecord, Deployment, EpochSettings, load_deployment
from cloudless.chain.faucet import FaucetClient
from cloudless.exceptions import ConfigError

CONTRACTS = {
    "FLT": ContractRecord(address="0x5FbDB2315678afecb367f032d93F642f64180aa3", block=1),
    "TestUSDC": ContractRecord(address="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", block=2),
    "Market": ContractRecord(address="0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0", block=3),
    "DealManager": ContractRecord(address="0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9", block=4),
}


def _deployment(contracts: dict[str, ContractRecord]) -> Deployment:
    return Deployment(
        chain_id=31337,
        rpc_url="http://127.0.0.1:8545",
        deployer="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        contracts=contracts,
        epoch=EpochSettings(genesis=0, duration=60, proof_window_epochs=2, min_deposited_epochs=2),
        collateral_per_cu=10 * 10**18,
        unbonding_period=3600,
    )


def test_record_without_faucet_loads(tmp_path: Path) -> None:
    _deployment(CONTRACTS).save(tmp_path / "31337.json")

    loaded = load_deployment(31337, directory=tmp_path)

    assert loaded.address("DealManager") == CONTRACTS["DealManager"].address
    assert "Faucet" not in loaded.contracts


def test_missing_contract_lookup_names_fix() -> None:
    with pytest.raises(ConfigError) as raised:
        _deployment(CONTRACTS).address("Faucet")

    message = str(raised.value)
    assert "contract 'Faucet' is not in the deployment of chain 31337" in message
    assert "recorded: DealManager, FLT, Market, TestUSDC" in message
    assert "cloudless deploy" in message


def test_faucet_client_rejects_record_without_faucet() -> None:
    client = ChainClient(Web3(), _deployment(CONTRACTS))

    with pytest.raises(ConfigError) as raised:
        FaucetClient(client)

    assert "the deployment of chain 31337 has no Faucet" in str(raised.value)
    assert "redeploy" in str(raised.value)


def test_faucet_client_uses_recorded_address() -> None:
    faucet = ContractRecord(address="0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9", block=5)
    client = ChainClient(Web3(), _deployment({**CONTRACTS, "Faucet": faucet}))

    assert FaucetClient(client).address == faucet.address
