"""An SQLite index of every verified receipt the verifier has seen, and of its re-execution outcomes.

Receipts are keyed by (signer, request hash, digest), so a second receipt of
one signer for one request, seen in any epoch, any node's served epoch or any
gateway's evidence, shows up as an equivocation even after a restart. Only
receipts whose signature recovers to the peer signer of their own worker
belong here; the caller checks that against the chain before `add`.

Numbers are stored as decimal text, because a uint64 fuel or epoch does not
fit in SQLite's signed 64-bit INTEGER.

Outcomes hold the request and the re-executed output hash and fuel per
request hash, so later receipts of the same request (replicas proven in
later epochs) are compared with them too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = ["Disagreement", "ReceiptIndex", "StoredOutcome"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    signer TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    digest BLOB NOT NULL,
    worker_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    app_cid BLOB NOT NULL,
    output_hash BLOB NOT NULL,
    fuel_used TEXT NOT NULL,
    receipt_json TEXT NOT NULL,
    PRIMARY KEY (signer, request_hash, digest)
);
CREATE INDEX IF NOT EXISTS receipts_by_request ON receipts (request_hash);
CREATE INDEX IF NOT EXISTS receipts_by_worker_epoch ON receipts (worker_id, epoch);
CREATE TABLE IF NOT EXISTS outcomes (
    request_hash BLOB PRIMARY KEY,
    app_cid BLOB NOT NULL,
    output_hash BLOB NOT NULL,
    fuel_used TEXT NOT NULL,
    request_json TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredOutcome:
    """A re-execution of one request on package `app_cid`."""

    request: SignedCallRequest
    app_cid: bytes
    output_hash: bytes
    fuel_used: int


@dataclass(frozen=True)
class Disagreement:
    """A receipt on the same package as a re-execution, with another output hash or fuel."""

    outcome: StoredOutcome
    receipt: SignedReceipt


class ReceiptIndex:
    """The index in `<path>`; each write commits at once, so a crash loses at most the write in flight."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, receipt: SignedReceipt, digest: bytes, signer: str) -> list[SignedReceipt]:
        """Store a receipt that `signer` (recovered from its signature) signed, and return the
        earlier receipts of that signer for the same request that differ from it."""
        rows = self._db.execute(
            "SELECT receipt_json FROM receipts WHERE signer = ? AND request_hash = ? AND digest != ?",
            (signer, receipt.request_hash, digest),
        ).fetchall()
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    signer,
                    receipt.request_hash,
                    digest,
                    str(receipt.worker_id),
                    str(receipt.epoch),
                    receipt.app_cid,
                    receipt.output_hash,
                    str(receipt.fuel_used),
                    receipt.to_json(),
                ),
            )
        return [SignedReceipt.from_json(row[0]) for row in rows]

    def receipts_for_request(self, request_hash: bytes) -> list[SignedReceipt]:
        rows = self._db.execute("SELECT receipt_json FROM receipts WHERE request_hash = ?", (request_hash,)).fetchall()
        return [SignedReceipt.from_json(row[0]) for row in rows]

    def receipts_of(self, worker_id: int, epoch: int) -> list[SignedReceipt]:
        """Return the indexed receipts that name this worker and epoch."""
        rows = self._db.execute(
            "SELECT receipt_json FROM receipts WHERE worker_id = ? AND epoch = ?", (str(worker_id), str(epoch))
        ).fetchall()
        return [SignedReceipt.from_json(row[0]) for row in rows]

    def record_outcome(self, request: SignedCallRequest, request_hash: bytes, app_cid: bytes, output_hash: bytes, fuel_used: int) -> None:
        """Store a re-execution; the first one per request is kept, since execution is deterministic."""
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?)",
                (request_hash, app_cid, output_hash, str(fuel_used), request.to_json()),
            )

    def outcome(self, request_hash: bytes) -> StoredOutcome | None:
        row = self._db.execute(
            "SELECT request_json, app_cid, output_hash, fuel_used FROM outcomes WHERE request_hash = ?", (request_hash,)
        ).fetchone()
        return None if row is None else _outcome(row)

    def disagreements(self) -> Iterator[Disagreement]:
        """Yield every indexed receipt that ran the re-executed package and differs from the re-execution."""
        rows = self._db.execute(
            "SELECT o.request_json, o.app_cid, o.output_hash, o.fuel_used, r.receipt_json "
            "FROM outcomes o JOIN receipts r ON r.request_hash = o.request_hash AND r.app_cid = o.app_cid "
            "WHERE r.output_hash != o.output_hash OR r.fuel_used != o.fuel_used "
            "ORDER BY r.rowid"
        ).fetchall()
        for row in rows:
            yield Disagreement(outcome=_outcome(row[:4]), receipt=SignedReceipt.from_json(row[4]))


def _outcome(row: tuple[str, bytes, bytes, str]) -> StoredOutcome:
    return StoredOutcome(
        request=SignedCallRequest.from_json(row[0]),
        app_cid=bytes(row[1]),
        output_hash=bytes(row[2]),
        fuel_used=int(row[3]),
    )
