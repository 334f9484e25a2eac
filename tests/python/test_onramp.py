"""The mock on-ramp without a chain: input checks, prices, allowed chains and the order log."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloudless.chain.addresses import parse_address
from cloudless.cli import cli
from cloudless.exceptions import ConfigError, UnsupportedChainError
from cloudless.onramp.networks import ALLOWED_CHAINS, check_chain_allowed
from cloudless.onramp.orders import OrderRecord, OrderStatus, OrderStore
from cloudless.onramp.quote import (
    RATES,
    new_order_id,
    parse_currency,
    parse_fiat_amount,
    parse_order_id,
    parse_recipient,
    quote,
)

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


# ------------------------------------------------------------ chain ids


@pytest.mark.parametrize("chain_id", [31337, 11155111, 84532, 421614])
def test_allowed_chains_pass(chain_id: int) -> None:
    check_chain_allowed(chain_id)

    assert chain_id in ALLOWED_CHAINS


@pytest.mark.parametrize("chain_id", [1, 10, 137, 8453, 42161, 1337, 0])
def test_other_chains_rejected(chain_id: int) -> None:
    with pytest.raises(UnsupportedChainError) as raised:
        check_chain_allowed(chain_id)

    assert raised.value.chain_id == chain_id
    assert f"does not run on chain {chain_id}:" in str(raised.value)
    assert "31337 (local anvil)" in str(raised.value)


def test_rejection_is_config_error() -> None:
    with pytest.raises(ConfigError):
        check_chain_allowed(1)


# ---------------------------------------------------------------- input


@pytest.mark.parametrize("text, expected", [("25", "25.00"), ("25.5", "25.50"), (" 1.00 ", "1.00"), ("1e2", "100.00"), ("10000", "10000.00")])
def test_parse_fiat_amount_accepts(text: str, expected: str) -> None:
    assert parse_fiat_amount(text) == Decimal(expected)
    assert str(parse_fiat_amount(text)) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("-5", "it must be above 0"),
        ("0", "it must be above 0"),
        ("abc", "use a decimal number"),
        ("NaN", "use a decimal number"),
        ("Infinity", "use a decimal number"),
        ("", "use a decimal number"),
        ("25.001", "at most 2 decimals"),
        ("0.99", "between 1.00 and 10000.00"),
        ("10000.01", "between 1.00 and 10000.00"),
        ("1e40", "between 1.00 and 10000.00"),
    ],
)
def test_parse_fiat_amount_rejects(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_fiat_amount(text)

    assert repr(text) in str(raised.value)
    assert message in str(raised.value)


def test_parse_currency_normalizes_case() -> None:
    assert parse_currency(" eur ") == "EUR"


def test_parse_currency_rejects_unknown() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_currency("BTC")

    assert "unsupported currency 'BTC': use one of USD, EUR, GBP" in str(raised.value)


def test_parse_recipient_checksums() -> None:
    assert parse_recipient(ADDRESS.lower()) == ADDRESS


@pytest.mark.parametrize(
    "text, message",
    [
        ("0x1234", "use a 0x-prefixed 20-byte hex address"),
        ("70997970C51812dc3A010C7d01b50e0d17dc79C8", "use a 0x-prefixed 20-byte hex address"),
        ("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "EIP-55 checksum"),
        ("0x" + "00" * 20, "zero address"),
    ],
)
def test_parse_recipient_rejects(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_recipient(text)

    assert message in str(raised.value)


def test_parse_address_accepts_upper_case() -> None:
    assert parse_address("0x" + ADDRESS[2:].upper()) == ADDRESS


@pytest.mark.parametrize("text", ["", "a b", "x" * 65, "id/1", "ü"])
def test_parse_order_id_rejects(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_order_id(text)

    assert "use 1 to 64 letters, digits, '-' or '_'" in str(raised.value)


def test_new_order_ids_are_valid_and_distinct() -> None:
    first, second = new_order_id(), new_order_id()

    assert parse_order_id(first) == first
    assert first != second


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize(
    "amount, currency, fee, usdc",
    [
        ("25.00", "USD", "0.38", 24_620_000),  # 0.375 rounds half up
        ("10.00", "USD", "0.15", 9_850_000),
        ("10.00", "EUR", "0.15", 10_638_000),
        ("1.00", "GBP", "0.02", 1_244_600),
        ("10000.00", "USD", "150.00", 9_850_000_000),
        ("3.33", "EUR", "0.05", 3_542_400),  # 3.28 * 1.08 = 3.5424
    ],
)
def test_quote(amount: str, currency: str, fee: str, usdc: int) -> None:
    price = quote(Decimal(amount), currency)

    assert price.fee == Decimal(fee)
    assert price.rate == RATES[currency]
    assert price.usdc_amount == usdc
    assert price.net_fiat == Decimal(amount) - Decimal(fee)


# ------------------------------------------------------------- order log


def _record(order_id: str, status: OrderStatus, **changes: object) -> OrderRecord:
    fields: dict[str, object] = {
        "order_id": order_id,
        "status": status,
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "chain_id": 31337,
        "usdc_token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "recipient": ADDRESS,
        "currency": "USD",
        "fiat_amount": "25.00",
        "fee": "0.38",
        "rate": "1.00",
        "usdc_amount": 24_620_000,
        "payment_reference": "mockpay_0",
        "minter": ADDRESS,
    }
    fields.update(changes)
    return OrderRecord.model_validate(fields)


def test_store_returns_last_record_of_order(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "onramp")
    store.append(_record("a", OrderStatus.PENDING))
    store.append(_record("b", OrderStatus.PENDING))
    store.append(_record("a", OrderStatus.DELIVERED, tx_hash="0x01", block=7))

    latest = store.latest("a")

    assert latest is not None
    assert latest.status is OrderStatus.DELIVERED
    assert latest.block == 7
    assert store.latest("c") is None
    assert len(store.records()) == 3


def test_store_without_file_is_empty(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "missing")

    assert store.records() == []
    assert store.latest("a") is None


def test_store_rejects_corrupt_line(tmp_path: Path) -> None:
    store = OrderStore(tmp_path)
    store.append(_record("a", OrderStatus.PENDING))
    with store.path.open("a") as handle:
        handle.write('{"order_id": "b"}\n')

    with pytest.raises(ConfigError) as raised:
        store.records()

    assert f"{store.path} line 2 is not a valid order record" in str(raised.value)


def test_same_order_compares_delivery_fields() -> None:
    base = _record("a", OrderStatus.PENDING)

    assert base.same_order(_record("a", OrderStatus.DELIVERED, tx_hash="0x01", recorded_at="later"))
    assert not base.same_order(_record("a", OrderStatus.PENDING, fiat_amount="26.00"))
    assert not base.same_order(_record("a", OrderStatus.PENDING, recipient="0x" + "11" * 20))
    assert not base.same_order(_record("a", OrderStatus.PENDING, chain_id=84532))


# ------------------------------------------------------------------- CLI


def test_cli_rejects_bad_amount_without_chain(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["onramp", "buy", "--amount", "-1", "--to", ADDRESS, "--data-dir", str(tmp_path), "--rpc-url", "http://127.0.0.1:9"]
    )

    assert result.exit_code == 2
    assert "invalid amount '-1': it must be above 0" in result.output
    assert not (tmp_path / "orders.jsonl").exists()
