"""`cloudless deal ...` against a real anvil: usage billing, the deposit checks before any approval, and withdrawals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import CliResult, private_root, run_cli
from eth_account import Account
from local_chain import LocalChain, local_chain

from cloudless.chain import DeploySettings
from cloudless.chain.deployment import deployment_path
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session
from cloudless.chain.types import BillingMode, DealParams
from cloudless.cid import cid_to_bytes
from cloudless.exceptions import ContractRevertError, DepositBelowReserveError, InsufficientBalanceError

CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
USDC = 10**6
# Each test signs with its own account, so allowances and balances do not mix.
FUNDED_USDC = 100 * USDC
SETTINGS = DeploySettings(epoch_duration=60, min_deposited_epochs=2)


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalChain]:
    with local_chain(SETTINGS) as running:
        admin = running.session(0)
        for index in range(1, 20):
            admin.usdc.mint(address(index), FUNDED_USDC)
        yield running


@pytest.fixture(scope="module")
def root(chain: LocalChain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = private_root(tmp_path_factory.mktemp("root"))
    chain.deployment.save(deployment_path(chain.deployment.chain_id, directory=directory / "deployments"))
    return directory


def address(index: int) -> str:
    return str(Account.from_key(anvil_account_key(index)).address)


def allowance(session: Session) -> int:
    return session.usdc.allowance(session.address, session.deals.address)


def deal(chain: LocalChain, root: Path, *args: str) -> CliResult:
    return run_cli(root, chain.rpc_url, "deal", *args)


def created_deal_id(result: CliResult) -> int:
    assert result.exit_code == 0, result.output
    match = re.search(r"deal (\d+) created", result.output)
    assert match, result.output
    return int(match.group(1))


def subscription(session: Session, **changes: object) -> DealParams:
    values: dict[str, object] = {
        "app_cid": cid_to_bytes(CID),
        "payment_token": session.usdc.address,
        "max_price_per_cu_per_epoch": USDC // 2,
        "deposit": 10 * USDC,
    }
    values.update(changes)
    return DealParams(**values)  # type: ignore[arg-type]


def test_create_usage_deal(chain: LocalChain, root: Path) -> None:
    result = deal(
        chain, root, "create", "--account-index", "1", "--app-cid", CID,
        "--billing", "usage", "--usage-price", "0.002", "--max-usage", "100000000", "--deposit", "5",
    )

    info = chain.session(0).deals.get_deal(created_deal_id(result))
    assert info.billing_mode is BillingMode.USAGE
    assert info.max_price_per_cu_per_epoch == 0
    assert info.usage_price_per_megafuel == 2_000
    assert info.max_usage_per_worker_epoch == 100_000_000


def test_status_shows_usage_terms(chain: LocalChain, root: Path) -> None:
    created = deal(
        chain, root, "create", "--account-index", "2", "--app-cid", CID, "--max-price", "0.5",
        "--billing", "usage", "--usage-price", "0.002", "--max-usage", "100000000", "--deposit", "5",
    )

    result = deal(chain, root, "status", str(created_deal_id(created)))

    assert result.exit_code == 0, result.output
    assert "billing USAGE: 0.002 USDC per million fuel, at most 100000000 fuel per worker and epoch" in result.output
    assert "up to 0.2 USDC per worker and epoch" in result.output
    assert "no workers placed yet" in result.output


def test_status_shows_subscription(chain: LocalChain, root: Path) -> None:
    created = deal(chain, root, "create", "--account-index", "3", "--app-cid", CID, "--max-price", "0.5", "--deposit", "5")

    result = deal(chain, root, "status", str(created_deal_id(created)))

    assert result.exit_code == 0, result.output
    assert "billing SUBSCRIPTION" in result.output
    assert "per million fuel" not in result.output
    assert "open-ended" in result.output


def test_status_shows_last_billed_epoch(chain: LocalChain, root: Path) -> None:
    created = deal(
        chain, root, "create", "--account-index", "3", "--app-cid", CID, "--max-price", "0.5", "--deposit", "5",
        "--duration", "1",
    )
    start = chain.session(0).deals.get_deal(created_deal_id(created)).start_epoch

    result = deal(chain, root, "status", str(created_deal_id(created)))

    assert result.exit_code == 0, result.output
    assert f"epochs {start} to {start} (1 epoch)" in result.output


def test_status_of_missing_deal(chain: LocalChain, root: Path) -> None:
    count = chain.session(0).deals.deal_count()

    result = deal(chain, root, "status", str(count + 1))

    assert result.exit_code == 1
    noun = "deal" if count == 1 else "deals"
    assert f"deal {count + 1} not found: this deployment has {count} {noun}" in result.output


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"target_workers": 3, "min_workers": 1, "cu_per_worker": 2},
        {"duration_epochs": 1},
        {"billing_mode": BillingMode.USAGE, "usage_price_per_megafuel": 2_000, "max_usage_per_worker_epoch": 123_456_789},
        {"billing_mode": BillingMode.USAGE, "max_price_per_cu_per_epoch": 0, "usage_price_per_megafuel": 3, "max_usage_per_worker_epoch": 1_999_999},
    ],
)
def test_reserve_matches_contract(chain: LocalChain, changes: dict[str, object]) -> None:
    session = chain.session(4)
    params = subscription(session, **changes)
    reserve = params.reserve(SETTINGS.min_deposited_epochs)
    session.usdc.approve(session.deals.address, reserve)

    # One base unit less: the contract reverts with the same reserve that Python computes.
    with pytest.raises(ContractRevertError) as raised:
        session.deals.create_deal(subscription(session, **changes, deposit=reserve - 1))
    assert raised.value.error_name == "DealDepositBelowReserve"
    assert raised.value.error_args["reserve"] == reserve

    deal_id = session.deals.create_deal(subscription(session, **changes, deposit=reserve))
    assert session.deals.get_deal(deal_id).balance == reserve


def test_create_below_reserve_approves_nothing(chain: LocalChain, root: Path) -> None:
    session = chain.session(5)
    count = session.deals.deal_count()

    result = deal(chain, root, "create", "--account-index", "5", "--app-cid", CID, "--max-price", "0.5", "--deposit", "0.01")

    assert result.exit_code == 1
    # 2 epochs x 1 worker x 0.5 USDC
    assert "--deposit 0.01 USDC is below the reserve of 1 USDC for these settings" in result.output
    assert "(2 epochs x 1 worker x 0.5 USDC per worker and epoch)" in result.output
    assert "pass --deposit 1 or more" in result.output
    assert "Traceback" not in result.output
    assert allowance(session) == 0
    assert session.deals.deal_count() == count


def test_create_usage_below_reserve(chain: LocalChain, root: Path) -> None:
    result = deal(
        chain, root, "create", "--account-index", "5", "--app-cid", CID, "--workers", "2", "--max-price", "0.5",
        "--billing", "usage", "--usage-price", "0.002", "--max-usage", "100000000", "--deposit", "2",
    )

    assert result.exit_code == 1
    # 2 epochs x 2 workers x (0.5 + 0.2) USDC
    assert "--deposit 2 USDC is below the reserve of 2.8 USDC" in result.output
    assert allowance(chain.session(5)) == 0


def test_create_above_balance_approves_nothing(chain: LocalChain, root: Path) -> None:
    session = chain.session(6)

    result = deal(chain, root, "create", "--account-index", "6", "--app-cid", CID, "--max-price", "0.5", "--deposit", "150")

    assert result.exit_code == 1
    assert f"--deposit 150 USDC exceeds the 100 USDC balance of {session.address}" in result.output
    assert "`cloudless faucet drip`" in result.output
    assert allowance(session) == 0


def test_failed_create_restores_allowance(chain: LocalChain, root: Path) -> None:
    session = chain.session(7)
    session.usdc.approve(session.deals.address, 3 * USDC)
    chain.advance_epochs(1)

    # From epoch 1 on, this duration would reach the open-ended marker 2**64 - 1. The
    # Python checks let it pass, so createDeal rejects it after the approval.
    result = deal(
        chain, root, "create", "--account-index", "7", "--app-cid", CID, "--max-price", "0.5", "--deposit", "10",
        "--duration", str(2**64 - 2),
    )

    assert result.exit_code == 1
    assert "DealInvalidParams(field=durationEpochs)" in result.output
    assert "the USDC allowance of" in result.output
    assert allowance(session) == 3 * USDC


def test_session_create_checks_before_approving(chain: LocalChain) -> None:
    session = chain.session(8)

    with pytest.raises(DepositBelowReserveError) as below:
        session.create_deal(subscription(session, deposit=USDC // 2))
    with pytest.raises(InsufficientBalanceError) as poor:
        session.create_deal(subscription(session, deposit=FUNDED_USDC + 1))

    assert below.value.reserve == USDC
    assert poor.value.balance == FUNDED_USDC
    assert allowance(session) == 0


def test_failed_deposit_restores_allowance(chain: LocalChain, root: Path) -> None:
    session = chain.session(9)
    missing = session.deals.deal_count() + 100

    result = deal(chain, root, "deposit", "--account-index", "9", str(missing), "5")

    assert result.exit_code == 1
    assert "DealNotFound" in result.output
    assert allowance(session) == 0


def test_deposit_above_balance(chain: LocalChain, root: Path) -> None:
    session = chain.session(10)
    deal_id = session.create_deal(subscription(session))

    result = deal(chain, root, "deposit", "--account-index", "10", str(deal_id), "95")

    assert result.exit_code == 1
    assert f"{session.address} has 90 USDC, less than the 95 USDC needed" in result.output
    assert allowance(session) == 0


def test_withdraw_above_reserve_in_usdc(chain: LocalChain, root: Path) -> None:
    session = chain.session(11)
    deal_id = session.create_deal(subscription(session, max_price_per_cu_per_epoch=300_000))

    result = deal(chain, root, "withdraw", "--account-index", "11", str(deal_id), "10")

    assert result.exit_code == 1
    # 10 USDC deposited, 2 epochs x 0.3 USDC reserved.
    assert f"cannot withdraw 10 USDC from deal {deal_id}: at most 9.4 USDC can be withdrawn now; the rest is the reserve" in result.output
    assert session.deals.deal_balance(deal_id) == 10 * USDC


def test_withdraw_within_limit(chain: LocalChain, root: Path) -> None:
    session = chain.session(12)
    deal_id = session.create_deal(subscription(session, max_price_per_cu_per_epoch=300_000))

    result = deal(chain, root, "withdraw", "--account-index", "12", str(deal_id), "9.4")

    assert result.exit_code == 0, result.output
    assert f"deal {deal_id}: balance 0.6 USDC" in result.output
