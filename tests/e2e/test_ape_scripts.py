"""The Ape scripts against an anvil that the user started, as the README shows."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_chain import free_port, running_anvil

from cloudless.chain import load_deployment
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import connect
from cloudless.chain.types import BillingMode, DealStatus

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = 1
DEVELOPER = 5
SIGNERS = (10, 11)


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    with running_anvil() as url:
        yield url


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose deployments/ folder is private to this test (CLOUDLESS_ROOT)."""
    root = tmp_path_factory.mktemp("root")
    (root / ".build").symlink_to(ROOT / ".build")
    return root


def ape_run(anvil_url: str, project_root: Path, *args: str) -> str:
    env = {**os.environ, "APE_FOUNDRY_HOST": anvil_url, "CLOUDLESS_ROOT": str(project_root)}
    env.pop("CLOUDLESS_PRIVATE_KEY", None)
    completed = subprocess.run(["ape", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, f"ape run {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


def address(index: int) -> str:
    from eth_account import Account

    return Account.from_key(anvil_account_key(index)).address


def test_ape_scripts_deploy_fund_register_create(anvil_url: str, project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = ape_run(anvil_url, project_copy, "deploy", "--epoch-duration", "30", "--proof-window", "1")
    assert "deployed to chain 31337" in output
    monkeypatch.setenv("CLOUDLESS_ROOT", str(project_copy))
    deployment = load_deployment(31337)
    assert deployment.epoch.duration == 30
    assert deployment.epoch.proof_window_epochs == 1

    ape_run(anvil_url, project_copy, "fund", "--to", address(PROVIDER), "--flt", "40", "--usdc", "0")
    ape_run(anvil_url, project_copy, "fund", "--to", address(DEVELOPER), "--usdc", "25")
    session = connect(anvil_url, deployment=deployment)
    assert session.flt.balance_of(address(PROVIDER)) == 40 * 10**18
    assert session.usdc.balance_of(address(DEVELOPER)) == 25 * 10**6

    peers = [f"--peer={address(index)}:2" for index in SIGNERS]
    output = ape_run(anvil_url, project_copy, "register_provider", "--account-index", str(PROVIDER), "--price", "0.25", *peers)
    offer_id = int(re.search(r"offer (\d+)", output).group(1))  # type: ignore[union-attr]
    offer = session.market.get_offer(offer_id)
    assert offer.provider == address(PROVIDER)
    assert offer.terms.price_per_cu_per_epoch == 250_000
    assert [session.market.get_peer(peer_id).signer for peer_id in offer.peer_ids] == [address(index) for index in SIGNERS]

    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    output = ape_run(
        anvil_url, project_copy, "create_deal",
        "--account-index", str(DEVELOPER), "--app-cid", cid, "--workers", "2", "--max-price", "0.5", "--deposit", "20",
    )
    deal_id = int(re.search(r"deal (\d+) created", output).group(1))  # type: ignore[union-attr]
    deal = session.deals.get_deal(deal_id)
    assert deal.owner == address(DEVELOPER)
    assert deal.target_workers == 2
    assert deal.balance == 20 * 10**6
    assert session.deals.deal_status(deal_id) == DealStatus.NOT_ENOUGH_WORKERS


def test_ape_script_rejects_bad_peer(anvil_url: str, project_copy: Path) -> None:
    env = {**os.environ, "APE_FOUNDRY_HOST": anvil_url, "CLOUDLESS_ROOT": str(project_copy)}
    completed = subprocess.run(
        ["ape", "run", "register_provider", "--price", "0.25", "--peer", "not-an-address"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert completed.returncode != 0
    assert "SIGNER_ADDRESS:CUS" in completed.stdout + completed.stderr


def test_ape_deploy_rejects_temporary_chain(project_copy: Path) -> None:
    # Nothing listens on this port, so Ape would start a throwaway anvil.
    env = {**os.environ, "APE_FOUNDRY_HOST": f"http://127.0.0.1:{free_port()}", "CLOUDLESS_ROOT": str(project_copy)}
    env.pop("CLOUDLESS_PRIVATE_KEY", None)
    before = sorted((project_copy / "deployments").glob("*.json")) if (project_copy / "deployments").exists() else []

    completed = subprocess.run(["ape", "run", "deploy"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

    assert completed.returncode != 0
    assert "start anvil first" in completed.stdout + completed.stderr
    after = sorted((project_copy / "deployments").glob("*.json")) if (project_copy / "deployments").exists() else []
    assert after == before


def ape_fail(anvil_url: str, project_root: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "APE_FOUNDRY_HOST": anvil_url, "CLOUDLESS_ROOT": str(project_root)}
    env.pop("CLOUDLESS_PRIVATE_KEY", None)
    completed = subprocess.run(["ape", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode != 0, f"ape run {' '.join(args)} succeeded:\n{completed.stdout}"
    return completed.returncode, completed.stdout + completed.stderr


CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
DAG_PB_CID = "bafybeibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe"


@pytest.mark.parametrize(
    "args, message",
    [
        (("create_deal", "--app-cid", "notacid", "--max-price", "1", "--deposit", "1"), "invalid CID 'notacid'"),
        (("create_deal", "--app-cid", DAG_PB_CID, "--max-price", "1", "--deposit", "1"), "is a dag-pb CID"),
        (("create_deal", "--app-cid", CID, "--max-price", "-1", "--deposit", "1"), "Invalid value for '--max-price'"),
        (("create_deal", "--app-cid", CID, "--max-price", "1", "--usage-price", "0.1", "--deposit", "1"), "add --billing usage"),
        (("fund", "--to", "0x1234", "--usdc", "5"), "invalid address '0x1234'"),
        (("fund", "--to", "0x" + "00" * 20, "--usdc", "5"), "zero address"),
        (("fund", "--to", "0x" + "11" * 20, "--eth", "abc"), "Invalid value for '--eth'"),
        (("register_provider", "--price", "-0.5", "--peer", "0x" + "11" * 20 + ":2"), "Invalid value for '--price'"),
    ],
)
def test_ape_scripts_reject_bad_input(anvil_url: str, project_copy: Path, args: tuple[str, ...], message: str) -> None:
    code, output = ape_fail(anvil_url, project_copy, *args)

    assert code == 2
    assert message in output
    assert "Traceback" not in output


def test_ape_create_deal_below_reserve(anvil_url: str, project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deployment of test_ape_scripts_deploy_fund_register_create; 2 reserve epochs by default.
    monkeypatch.setenv("CLOUDLESS_ROOT", str(project_copy))
    session = connect(anvil_url, deployment=load_deployment(31337))
    before = session.usdc.allowance(address(DEVELOPER), session.deals.address)

    code, output = ape_fail(
        anvil_url, project_copy, "create_deal", "--account-index", str(DEVELOPER), "--app-cid", CID,
        "--max-price", "0.5", "--deposit", "0.01",
    )

    assert code == 1
    assert "--deposit 0.01 USDC is below the reserve of 1 USDC for these settings" in output
    assert "pass --deposit 1 or more" in output
    assert "Traceback" not in output
    assert session.usdc.allowance(address(DEVELOPER), session.deals.address) == before


def test_ape_register_provider_without_flt(anvil_url: str, project_copy: Path) -> None:
    code, output = ape_fail(
        anvil_url, project_copy, "register_provider", "--account-index", "3", "--price", "0.25", f"--peer={address(12)}:2",
    )

    assert code == 1
    assert f"{address(3)} has 0 FLT, less than the 20 FLT needed" in output
    assert "Traceback" not in output


def test_ape_create_usage_deal(anvil_url: str, project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDLESS_ROOT", str(project_copy))
    session = connect(anvil_url, deployment=load_deployment(31337))

    output = ape_run(
        anvil_url, project_copy, "create_deal", "--account-index", str(DEVELOPER), "--app-cid", CID,
        "--billing", "usage", "--usage-price", "0.002", "--max-usage", "1000000", "--deposit", "1",
    )

    deal_id = int(re.search(r"deal (\d+) created", output).group(1))  # type: ignore[union-attr]
    deal = session.deals.get_deal(deal_id)
    assert deal.billing_mode is BillingMode.USAGE
    assert deal.usage_price_per_megafuel == 2_000
    assert deal.max_usage_per_worker_epoch == 1_000_000
