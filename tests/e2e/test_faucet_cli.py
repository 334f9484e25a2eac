"""`cloudless faucet drip` and `faucet status` against a real anvil with the deployed Faucet."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import private_root, run_cli
from eth_account import Account
from local_chain import LocalChain, local_chain

from cloudless.chain import DeploySettings, load_deployment
from cloudless.chain.deployment import deployment_path
from cloudless.chain.keys import anvil_account_key

SETTINGS = DeploySettings(epoch_duration=60)
DRIP_FLT = SETTINGS.faucet_flt_drip
DRIP_USDC = SETTINGS.faucet_usdc_drip
COOLDOWN = SETTINGS.faucet_cooldown


def address(index: int) -> str:
    return str(Account.from_key(anvil_account_key(index)).address)


def fresh_address(index: int) -> str:
    """An address with no key, no tokens and no drip yet."""
    return str(Account.from_key((0xFA0CE7_0000 + index).to_bytes(32, "big")).address)


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalChain]:
    with local_chain(SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def root(chain: LocalChain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = private_root(tmp_path_factory.mktemp("root"))
    chain.deployment.save(deployment_path(chain.deployment.chain_id, directory=directory / "deployments"))
    return directory


def block_time(chain: LocalChain) -> int:
    return int(chain.session(0).client.w3.eth.get_block("latest")["timestamp"])


def test_deploy_funds_faucet(chain: LocalChain) -> None:
    session = chain.session(0)
    faucet = session.faucet

    assert session.flt.balance_of(faucet.address) == SETTINGS.faucet_flt_funding
    assert session.usdc.balance_of(faucet.address) == SETTINGS.faucet_usdc_funding
    assert faucet.settings().cooldown == COOLDOWN
    assert faucet.owner() == address(0)


def test_drip_to_signer(chain: LocalChain, root: Path) -> None:
    session = chain.session(0)
    signer = address(13)
    flt_before, usdc_before = session.flt.balance_of(signer), session.usdc.balance_of(signer)

    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--account-index", "13")

    assert result.exit_code == 0, result.output
    assert f"received 100 FLT and 50 USDC at {signer}" in result.output
    assert "next drip allowed at" in result.output
    assert session.flt.balance_of(signer) == flt_before + DRIP_FLT
    assert session.usdc.balance_of(signer) == usdc_before + DRIP_USDC


def test_drip_to_named_recipient(chain: LocalChain, root: Path) -> None:
    session = chain.session(0)
    recipient = fresh_address(1)
    signer_usdc = session.usdc.balance_of(address(14))

    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--account-index", "14", "--to", recipient.lower())

    assert result.exit_code == 0, result.output
    assert f"at {recipient}" in result.output
    assert session.flt.balance_of(recipient) == DRIP_FLT
    assert session.usdc.balance_of(recipient) == DRIP_USDC
    assert session.usdc.balance_of(address(14)) == signer_usdc


def test_drip_prints_next_time(chain: LocalChain, root: Path) -> None:
    recipient = fresh_address(2)

    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient)

    assert result.exit_code == 0, result.output
    next_at = chain.session(0).faucet.next_drip_at(recipient)
    assert next_at == block_time(chain) + COOLDOWN
    assert f"unix {next_at}" in result.output


def test_drip_inside_cooldown_fails(chain: LocalChain, root: Path) -> None:
    session = chain.session(0)
    recipient = fresh_address(3)
    assert run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient).exit_code == 0
    retry_at = session.faucet.next_drip_at(recipient)

    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient)

    assert result.exit_code == 1
    assert f"cool-down for {recipient} is not over" in result.output
    assert "retry at" in result.output
    assert f"unix {retry_at}" in result.output
    assert session.usdc.balance_of(recipient) == DRIP_USDC


def test_drip_allowed_after_cooldown(chain: LocalChain, root: Path) -> None:
    session = chain.session(0)
    recipient = fresh_address(4)
    assert run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient).exit_code == 0

    chain.rpc("evm_increaseTime", COOLDOWN)
    chain.rpc("evm_mine")
    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient)

    assert result.exit_code == 0, result.output
    assert session.usdc.balance_of(recipient) == 2 * DRIP_USDC


def test_drip_from_empty_faucet_fails(chain: LocalChain, root: Path) -> None:
    owner = chain.session(0)
    faucet = owner.faucet
    faucet_usdc = owner.usdc.balance_of(faucet.address)
    faucet.withdraw(owner.usdc.address, owner.address, faucet_usdc - 1_000_000)
    recipient = fresh_address(5)
    try:
        result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient)
    finally:
        owner.usdc.transfer(faucet.address, faucet_usdc - 1_000_000)

    assert result.exit_code == 1
    assert "holds 1 USDC, less than the 50 USDC of one drip" in result.output
    assert f"its owner ({owner.address}) must transfer or mint USDC to the faucet" in result.output
    assert owner.flt.balance_of(recipient) == 0
    assert faucet.next_drip_at(recipient) == 0


@pytest.mark.parametrize("bad", ["0x1234", "not-an-address", "0x" + "g" * 40])
def test_drip_rejects_bad_address(chain: LocalChain, root: Path, bad: str) -> None:
    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", bad)

    assert result.exit_code == 2
    assert f"invalid address {bad!r}" in result.output


def test_drip_rejects_bad_checksum(chain: LocalChain, root: Path) -> None:
    recipient = fresh_address(6)
    # Flip the case of the first letter after 0x to break the EIP-55 checksum.
    index = next(i for i, char in enumerate(recipient) if i > 1 and char.isalpha())
    broken = recipient[:index] + recipient[index].swapcase() + recipient[index + 1 :]

    result = run_cli(root, chain.rpc_url, "faucet", "drip", "--to", broken)

    assert result.exit_code == 2
    assert "EIP-55 checksum" in result.output


def test_status_shows_settings_and_next_drip(chain: LocalChain, root: Path) -> None:
    recipient = fresh_address(7)
    assert run_cli(root, chain.rpc_url, "faucet", "drip", "--to", recipient).exit_code == 0
    next_at = chain.session(0).faucet.next_drip_at(recipient)

    result = run_cli(root, chain.rpc_url, "faucet", "status", "--to", recipient)

    assert result.exit_code == 0, result.output
    assert "drip 100 FLT and 50 USDC, cool-down 3600 s" in result.output
    assert f"unix {next_at}" in result.output


def test_old_deployment_without_faucet(chain: LocalChain, tmp_path: Path) -> None:
    root = private_root(tmp_path / "root")
    record = json.loads(chain.deployment.model_dump_json())
    del record["contracts"]["Faucet"]
    path = deployment_path(chain.deployment.chain_id, directory=root / "deployments")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))

    result = run_cli(root, chain.rpc_url, "faucet", "drip")

    assert result.exit_code == 1
    assert re.search(r"deployment of chain \d+ has no Faucet", result.output)
    assert "redeploy" in result.output
    old = load_deployment(chain.deployment.chain_id, directory=root / "deployments")
    assert old.address("DealManager") == chain.deployment.address("DealManager")
