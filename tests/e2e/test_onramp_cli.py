"""`cloudless onramp buy` (the mock fiat on-ramp) against a real anvil: delivery, idempotency and refusals."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_process import ROOT, private_root, run_cli
from eth_account import Account
from local_chain import LocalChain, local_chain, running_anvil

from cloudless.chain import DeploySettings
from cloudless.chain.deployment import deployment_path
from cloudless.onramp.delivery import _sign_mint
from cloudless.onramp.orders import OrderRecord, OrderStatus, OrderStore, utc_now

USDC = 10**6


def fresh_address(index: int) -> str:
    """An address with no key and no tokens."""
    return str(Account.from_key((0x0A11A_0000 + index).to_bytes(32, "big")).address)


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalChain]:
    with local_chain(DeploySettings(epoch_duration=60)) as running:
        yield running


@pytest.fixture(scope="module")
def root(chain: LocalChain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = private_root(tmp_path_factory.mktemp("root"))
    chain.deployment.save(deployment_path(chain.deployment.chain_id, directory=directory / "deployments"))
    return directory


def buy(chain: LocalChain, root: Path, data_dir: Path, *args: str):
    return run_cli(root, chain.rpc_url, "onramp", "buy", "--data-dir", str(data_dir), *args)


def records(data_dir: Path, order_id: str) -> list[OrderRecord]:
    return [record for record in OrderStore(data_dir).records() if record.order_id == order_id]


def test_buy_delivers_usdc(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    recipient = fresh_address(1)
    usdc = chain.session(0).usdc

    result = buy(chain, root, tmp_path, "--amount", "25.00", "--currency", "USD", "--to", recipient, "--order-id", "card-1")

    assert result.exit_code == 0, result.output
    assert "order card-1: mock card payment of 25.00 USD" in result.output
    assert "no real payment was made" in result.output
    assert result.output.count("captured for order card-1") == 1
    assert "fee 0.38 USD (1.5 %), rate 1.00 USDC per USD, delivers 24.62 USDC" in result.output
    assert f"delivered 24.62 USDC to {recipient} on chain 31337" in result.output
    assert usdc.balance_of(recipient) == 24_620_000
    pending, delivered = records(tmp_path, "card-1")
    assert pending.status is OrderStatus.PENDING
    assert delivered.status is OrderStatus.DELIVERED
    assert delivered.tx_hash == pending.tx_hash
    receipt = chain.session(0).client.w3.eth.get_transaction_receipt(delivered.tx_hash)
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == delivered.block


def test_buy_converts_eur(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    recipient = fresh_address(2)

    result = buy(chain, root, tmp_path, "--amount", "10", "--currency", "eur", "--to", recipient)

    assert result.exit_code == 0, result.output
    # 10.00 EUR - 0.15 EUR fee = 9.85 EUR, times 1.08 USDC per EUR.
    assert chain.session(0).usdc.balance_of(recipient) == 10_638_000
    [order_id] = {record.order_id for record in OrderStore(tmp_path).records()}
    assert order_id.startswith("order-")
    assert f"order {order_id}:" in result.output


def test_repeated_order_id_delivers_once(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    recipient = fresh_address(3)
    usdc = chain.session(0).usdc
    args = ("--amount", "40.00", "--to", recipient, "--order-id", "repeat-1")
    assert buy(chain, root, tmp_path, *args).exit_code == 0
    balance = usdc.balance_of(recipient)

    result = buy(chain, root, tmp_path, *args)

    assert result.exit_code == 0, result.output
    assert "already delivered" in result.output
    assert "nothing was minted now" in result.output
    assert usdc.balance_of(recipient) == balance
    assert [record.status for record in records(tmp_path, "repeat-1")] == [OrderStatus.PENDING, OrderStatus.DELIVERED]


def test_order_id_reused_for_other_order(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    recipient = fresh_address(4)
    usdc = chain.session(0).usdc
    assert buy(chain, root, tmp_path, "--amount", "5.00", "--to", recipient, "--order-id", "reuse-1").exit_code == 0

    result = buy(chain, root, tmp_path, "--amount", "6.00", "--to", recipient, "--order-id", "reuse-1")

    assert result.exit_code == 1
    assert "order id 'reuse-1' was already used for 5.00 USD" in result.output
    assert "pass a new --order-id" in result.output
    assert "captured" not in result.output
    # 5.00 USD less the 0.08 USD fee (1.5 % is 0.075, rounded half up).
    assert usdc.balance_of(recipient) == 4_920_000


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--amount", "-5", "invalid amount '-5': it must be above 0"),
        ("--amount", "0", "invalid amount '0': it must be above 0"),
        ("--amount", "abc", "invalid amount 'abc': use a decimal number"),
        ("--amount", "25.001", "at most 2 decimals"),
        ("--amount", "20000", "between 1.00 and 10000.00"),
        ("--currency", "JPY", "unsupported currency 'JPY': use one of USD, EUR, GBP"),
        ("--to", "0x1234", "invalid address '0x1234'"),
        ("--to", "0x" + "00" * 20, "tokens minted to the zero address are lost"),
        ("--order-id", "bad id!", "invalid order id 'bad id!'"),
    ],
)
def test_buy_rejects_bad_input(chain: LocalChain, root: Path, tmp_path: Path, option: str, value: str, message: str) -> None:
    good = {"--amount": "25.00", "--currency": "USD", "--to": fresh_address(5), "--order-id": "bad-input"}
    good[option] = value
    arguments = [item for pair in good.items() for item in pair]

    result = buy(chain, root, tmp_path, *arguments)

    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "orders.jsonl").exists()
    assert chain.session(0).usdc.balance_of(fresh_address(5)) == 0


def test_buy_rejects_key_without_mint_right(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    recipient = fresh_address(6)

    result = buy(chain, root, tmp_path, "--amount", "25", "--to", recipient, "--order-id", "no-owner", "--account-index", "3")

    assert result.exit_code == 1
    assert "does not own TestUSDC" in result.output
    assert "captured" not in result.output
    assert records(tmp_path, "no-owner") == []
    assert chain.session(0).usdc.balance_of(recipient) == 0


def test_buy_refuses_unlisted_chain(tmp_path: Path) -> None:
    root = private_root(tmp_path / "root")
    with running_anvil() as rpc_url:
        # A local anvil that reports chain id 1, as Ethereum mainnet does.
        httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_setChainId", "params": [1]}).raise_for_status()
        result = run_cli(
            root, rpc_url, "onramp", "buy", "--amount", "25", "--to", fresh_address(7), "--data-dir", str(tmp_path / "data")
        )

    assert result.exit_code == 1
    assert "does not run on chain 1" in result.output
    assert "31337 (local anvil)" in result.output
    assert not (tmp_path / "data" / "orders.jsonl").exists()


def test_pending_order_resent_once(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    # A run that recorded its signed mint and stopped before sending it.
    owner = chain.session(0)
    recipient = fresh_address(8)
    pending = _pending_order(owner, recipient, "crash-1", fiat="10.00", usdc_amount=9_850_000)
    OrderStore(tmp_path).append(pending)

    result = buy(chain, root, tmp_path, "--amount", "10.00", "--to", recipient, "--order-id", "crash-1")

    assert result.exit_code == 0, result.output
    assert owner.usdc.balance_of(recipient) == 9_850_000
    statuses = [record.status for record in records(tmp_path, "crash-1")]
    assert statuses == [OrderStatus.PENDING, OrderStatus.DELIVERED]
    assert records(tmp_path, "crash-1")[-1].tx_hash == pending.tx_hash


def test_pending_order_with_used_nonce_redelivered(chain: LocalChain, root: Path, tmp_path: Path) -> None:
    # The recorded mint was never sent, and another transaction took its nonce.
    owner = chain.session(0)
    recipient = fresh_address(9)
    pending = _pending_order(owner, recipient, "crash-2", fiat="10.00", usdc_amount=9_850_000)
    OrderStore(tmp_path).append(pending)
    owner.usdc.mint(fresh_address(10), 1)

    result = buy(chain, root, tmp_path, "--amount", "10.00", "--to", recipient, "--order-id", "crash-2")

    assert result.exit_code == 0, result.output
    assert owner.usdc.balance_of(recipient) == 9_850_000
    statuses = [record.status for record in records(tmp_path, "crash-2")]
    assert statuses == [OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.PENDING, OrderStatus.DELIVERED]


def test_ape_script_buys(chain: LocalChain, root: Path) -> None:
    recipient = fresh_address(11)
    env = {**os.environ, "APE_FOUNDRY_HOST": chain.rpc_url, "CLOUDLESS_ROOT": str(root)}
    env.pop("CLOUDLESS_PRIVATE_KEY", None)

    completed = subprocess.run(
        ["ape", "run", "onramp", "--amount", "25.00", "--to", recipient, "--order-id", "ape-1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "order ape-1 delivered 24.62 USDC" in completed.stdout
    assert chain.session(0).usdc.balance_of(recipient) == 24_620_000
    assert records(root / ".cloudless" / "onramp", "ape-1")[-1].status is OrderStatus.DELIVERED


def _pending_order(owner, recipient: str, order_id: str, *, fiat: str, usdc_amount: int) -> OrderRecord:
    """Sign a mint for an order as `buy` does, without sending it."""
    order = OrderRecord(
        order_id=order_id,
        status=OrderStatus.PENDING,
        recorded_at=utc_now(),
        chain_id=owner.deployment.chain_id,
        usdc_token=owner.usdc.address,
        recipient=recipient,
        currency="USD",
        fiat_amount=fiat,
        fee="0.15",
        rate="1.00",
        usdc_amount=usdc_amount,
        payment_reference="mockpay_test",
        minter=owner.address,
    )
    return _sign_mint(owner, order)
