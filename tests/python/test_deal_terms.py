"""Off-chain arithmetic and wording of deals: the creation reserve, token amounts and counted nouns."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

from cloudless.chain.deals import DealClient
from cloudless.chain.tokens import parse_units
from cloudless.chain.types import BillingMode, DealParams, EpochProofEntry
from cloudless.exceptions import ConfigError
from cloudless.formatting import format_count

CID = b"\x01\x55\x12\x20" + bytes(32)
USDC = 10**6


def params(**changes: object) -> DealParams:
    values: dict[str, object] = {
        "app_cid": CID,
        "payment_token": "0x" + "11" * 20,
        "max_price_per_cu_per_epoch": USDC // 2,
        "deposit": 0,
    }
    values.update(changes)
    return DealParams(**values)  # type: ignore[arg-type]


def test_reserve_subscription() -> None:
    # 2 epochs x 3 workers x (0.5 USDC x 2 CUs)
    assert params(target_workers=3, min_workers=3, cu_per_worker=2).reserve(2) == 6 * USDC


def test_reserve_short_duration() -> None:
    assert params(duration_epochs=1).reserve(5) == USDC // 2


def test_reserve_open_ended_uses_min_epochs() -> None:
    assert params(duration_epochs=0).reserve(5) == 5 * USDC // 2


def test_reserve_usage_adds_usage_cap() -> None:
    # 0.002 USDC per 10**6 fuel, 10**8 fuel per epoch: 0.2 USDC per worker and epoch on top of 0.5.
    usage = params(billing_mode=BillingMode.USAGE, usage_price_per_megafuel=2_000, max_usage_per_worker_epoch=10**8)
    assert usage.max_worker_rate == 700_000
    assert usage.reserve(2) == 1_400_000


def test_reserve_usage_rounds_down() -> None:
    # 1,500,001 fuel at 1 base unit per 10**6 fuel is 1.500001 base units, billed as 1.
    usage = params(
        max_price_per_cu_per_epoch=0, billing_mode=BillingMode.USAGE, usage_price_per_megafuel=1, max_usage_per_worker_epoch=1_500_001
    )
    assert usage.reserve(3) == 3


def test_reserve_subscription_ignores_usage_fields() -> None:
    assert params(usage_price_per_megafuel=2_000, max_usage_per_worker_epoch=10**8).reserve(2) == USDC


@pytest.mark.parametrize(
    "text, decimals, expected",
    [
        ("1.5", 6, 1_500_000),
        (" 2 ", 6, 2_000_000),
        ("1e-6", 6, 1),
        ("0", 6, 0),
        # 30 digits: more than the 28 of Python's default decimal context.
        ("123456789012345678901234567890", 18, 123456789012345678901234567890 * 10**18),
    ],
)
def test_parse_units_accepts(text: str, decimals: int, expected: int) -> None:
    assert parse_units(text, decimals) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("-1", "must not be negative"),
        ("abc", "use a decimal number"),
        ("nan", "use a decimal number"),
        ("inf", "use a decimal number"),
        ("1.0000001", "at most 6 decimals"),
        ("1e80", "exceeds the largest ERC-20 amount"),
    ],
)
def test_parse_units_rejects(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_units(text, 6)
    assert f"invalid token amount {text!r}" in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "count, noun, expected",
    [(0, "worker", "0 workers"), (1, "worker", "1 worker"), (2, "peer", "2 peers"), (1, "CU", "1 CU"), (3, "entry", "3 entries")],
)
def test_format_count(count: int, noun: str, expected: str) -> None:
    plural = "entries" if noun == "entry" else None
    assert format_count(count, noun, plural) == expected


def test_batch_proof_log_singular(caplog: pytest.LogCaptureFixture) -> None:
    client = SimpleNamespace(contract=lambda name: MagicMock(), transact=lambda function: None)
    deals = DealClient(client)  # type: ignore[arg-type]
    entry = EpochProofEntry(worker_id=1, epoch=3, receipts_root=bytes(32), calls=0, usage=0)

    with caplog.at_level(logging.INFO, logger="cloudless.chain"):
        deals.submit_epoch_proofs([entry])

    assert "proving 1 worker epoch in one batch" in caplog.text
