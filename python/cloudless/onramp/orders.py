"""The on-ramp's order log: one JSON object per line in `<data_dir>/orders.jsonl`.

The log is append-only. An order gets a `pending` line before its mint is
sent, then a `delivered` or `failed` line. The last line of an order id is its
state. An exclusive `flock` on the file for the whole purchase keeps two
processes from delivering the same order id twice.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from cloudless.exceptions import ConfigError

__all__ = ["ORDERS_FILE", "OrderRecord", "OrderStatus", "OrderStore", "utc_now"]

ORDERS_FILE = "orders.jsonl"


class OrderStatus(str, Enum):
    """Delivery state of an order."""

    PENDING = "pending"  # the mint transaction is signed and recorded, maybe sent
    DELIVERED = "delivered"  # the mint was mined successfully
    FAILED = "failed"  # the mint reverted or can no longer be mined; a retry may deliver


class OrderRecord(BaseModel):
    """One line of the order log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: str
    status: OrderStatus
    recorded_at: str  # ISO 8601, UTC
    chain_id: int
    usdc_token: str  # address of the TestUSDC contract that mints
    recipient: str
    currency: str  # ISO 4217 code
    fiat_amount: str  # decimal string in `currency`, whole cents
    fee: str  # decimal string in `currency`, whole cents
    rate: str  # test USDC per unit of `currency`
    usdc_amount: int  # USDC base units (10**-6 USDC)
    payment_reference: str  # id of the simulated card payment
    minter: str  # address that signs the mint (the TestUSDC owner)
    tx_hash: str | None = None
    nonce: int | None = None
    raw_transaction: str | None = None  # signed mint, so a retry re-sends the same transaction
    block: int | None = None
    error: str | None = None

    def same_order(self, other: OrderRecord) -> bool:
        """Return True if `other` requests the same delivery (chain, token, recipient and amounts)."""
        fields = ("chain_id", "usdc_token", "recipient", "currency", "fiat_amount", "usdc_amount")
        return all(getattr(self, name) == getattr(other, name) for name in fields)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class OrderStore:
    """Append-only JSON lines under `directory`; use `locked()` around every read-then-write."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ORDERS_FILE

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the log, blocking while another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def latest(self, order_id: str) -> OrderRecord | None:
        """Return the last record of `order_id`, or None if the log has none."""
        found: OrderRecord | None = None
        for record in self.records():
            if record.order_id == order_id:
                found = record
        return found

    def records(self) -> list[OrderRecord]:
        """Return every record in file order."""
        if not self.path.is_file():
            return []
        records = []
        with self.path.open() as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(OrderRecord.model_validate_json(line))
                except ValidationError as error:
                    raise ConfigError(
                        f"{self.path} line {number} is not a valid order record ({error.error_count()} errors): "
                        "repair or remove that line"
                    ) from error
        return records

    def append(self, record: OrderRecord) -> None:
        """Append one record and flush it to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(record.model_dump_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
