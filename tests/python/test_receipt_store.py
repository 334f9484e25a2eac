"""Durable receipt store: appends, restarts, torn lines, order checks and threads."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from cloudless.exceptions import InvalidSignatureError, ReceiptStoreError
from cloudless.receipts import store as store_module
from cloudless.receipts.eip712 import Domain, Receipt
from cloudless.receipts.merkle import EMPTY_ROOT, ReceiptMerkleTree, verify_proof
from cloudless.receipts.models import SignedReceipt
from cloudless.receipts.store import EpochSummary, ReceiptStore

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
WORKER_KEY = bytes.fromhex("02" * 32)
OTHER_KEY = bytes.fromhex("03" * 32)
APP_CID = bytes.fromhex("01551220") + keccak(b"app package")


def make_receipt(
    *, worker_id: int = 1, epoch: int = 0, sequence: int, fuel_used: int = 100, key: bytes = WORKER_KEY
) -> SignedReceipt:
    receipt = Receipt(
        worker_id=worker_id,
        request_hash=keccak(f"request {worker_id} {sequence}".encode()),
        app_cid=APP_CID,
        output_hash=keccak(f"output {sequence}".encode()),
        fuel_used=fuel_used,
        epoch=epoch,
        sequence=sequence,
    )
    return SignedReceipt.sign(receipt, key, DOMAIN)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReceiptStore]:
    with ReceiptStore(tmp_path, DOMAIN) as opened:
        yield opened


def epoch_file(root: Path, worker_id: int, epoch: int) -> Path:
    return root / f"worker-{worker_id}" / f"epoch-{epoch}.jsonl"


# Appending and reading


def test_append_then_read(store: ReceiptStore, tmp_path: Path) -> None:
    written = [make_receipt(sequence=i, fuel_used=10 * i) for i in range(3)]
    for receipt in written:
        store.append(receipt)

    assert store.receipts(1, 0) == written
    assert store.epochs(1) == [0]
    assert store.workers() == [1]
    assert store.next_sequence(1) == 3
    lines = epoch_file(tmp_path, 1, 0).read_text().splitlines()
    assert [SignedReceipt.from_json(line) for line in lines] == written


def test_sequence_continues_across_epochs(store: ReceiptStore) -> None:
    store.append(make_receipt(epoch=4, sequence=0))
    store.append(make_receipt(epoch=4, sequence=1))
    store.append(make_receipt(epoch=6, sequence=2))

    assert store.epochs(1) == [4, 6]
    assert [r.sequence for r in store.receipts(1, 6)] == [2]
    assert store.next_sequence(1) == 3


def test_workers_are_independent(store: ReceiptStore) -> None:
    store.append(make_receipt(worker_id=1, sequence=0))
    store.append(make_receipt(worker_id=2, sequence=0))
    store.append(make_receipt(worker_id=2, sequence=1))

    assert store.workers() == [1, 2]
    assert store.next_sequence(1) == 1
    assert store.next_sequence(2) == 2


def test_new_worker_starts_at_zero(store: ReceiptStore) -> None:
    assert store.next_sequence(42) == 0
    assert store.epochs(42) == []
    assert store.receipts(42, 0) == []


def test_summary_and_root(store: ReceiptStore) -> None:
    written = [make_receipt(epoch=2, sequence=i, fuel_used=1_000 + i) for i in range(5)]
    for receipt in written:
        store.append(receipt)
    digests = [receipt.digest(DOMAIN) for receipt in written]
    expected_root = ReceiptMerkleTree((digest, receipt.fuel_used) for digest, receipt in zip(digests, written)).root

    assert store.root(1, 2) == expected_root
    assert store.summary(1, 2) == EpochSummary(root=expected_root, calls=5, fuel_total=5_010)
    root, calls, fuel_total = store.summary(1, 2)
    assert (root, calls, fuel_total) == (expected_root, 5, 5_010)
    tree = store.tree(1, 2)
    # Receipt 3 follows receipts with 1_000, 1_001 and 1_002 fuel.
    assert tree.fuel_before[3] == 3_003
    assert verify_proof(tree.root, digests[3], 3, 3_003, tree.proof(3))
    assert not verify_proof(tree.root, digests[3], 3, 3_004, tree.proof(3))


def test_empty_epoch_summary(store: ReceiptStore) -> None:
    assert store.root(1, 0) == EMPTY_ROOT
    assert store.summary(1, 0) == EpochSummary(root=EMPTY_ROOT, calls=0, fuel_total=0)


def test_append_fsyncs_each_line(store: ReceiptStore, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store.append(make_receipt(sequence=0))
    first = len(synced)
    store.append(make_receipt(sequence=1))

    # The first append also syncs the new worker directory and the new file's directory.
    assert first == 3
    assert len(synced) - first == 1


# Order checks


def test_append_rejects_skipped_sequence(store: ReceiptStore) -> None:
    store.append(make_receipt(sequence=0))

    with pytest.raises(ReceiptStoreError, match="sequence 2 for worker 1 is out of order, expected 1"):
        store.append(make_receipt(sequence=2))


def test_append_rejects_repeated_sequence(store: ReceiptStore) -> None:
    receipt = make_receipt(sequence=0)
    store.append(receipt)

    with pytest.raises(ReceiptStoreError, match="expected 1"):
        store.append(receipt)
    assert store.receipts(1, 0) == [receipt]


def test_append_rejects_earlier_epoch(store: ReceiptStore) -> None:
    store.append(make_receipt(epoch=5, sequence=0))

    with pytest.raises(ReceiptStoreError, match="epoch 4 for worker 1 is before epoch 5"):
        store.append(make_receipt(epoch=4, sequence=1))


def test_append_rejects_wrong_signer(store: ReceiptStore) -> None:
    receipt = make_receipt(sequence=0, key=OTHER_KEY)
    forged = receipt.model_copy(update={"signer": Account.from_key(WORKER_KEY).address})

    with pytest.raises(InvalidSignatureError):
        store.append(forged)
    assert store.next_sequence(1) == 0


def test_append_skips_signature_check_when_disabled(tmp_path: Path) -> None:
    receipt = make_receipt(sequence=0, key=OTHER_KEY)
    forged = receipt.model_copy(update={"signer": Account.from_key(WORKER_KEY).address})

    with ReceiptStore(tmp_path, DOMAIN, verify_signatures=False) as unchecked:
        unchecked.append(forged)

        assert unchecked.receipts(1, 0) == [forged]


def test_append_next_assigns_sequence(store: ReceiptStore) -> None:
    first = store.append_next(1, lambda sequence: make_receipt(sequence=sequence))
    second = store.append_next(1, lambda sequence: make_receipt(sequence=sequence))

    assert (first.sequence, second.sequence) == (0, 1)


def test_append_next_rejects_other_worker(store: ReceiptStore) -> None:
    with pytest.raises(ReceiptStoreError, match="append_next for worker 1 got a receipt of worker 2"):
        store.append_next(1, lambda sequence: make_receipt(worker_id=2, sequence=sequence))


# Restarts and crashes


def test_restart_keeps_sequence(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        for sequence in range(3):
            first.append(make_receipt(epoch=sequence // 2, sequence=sequence))

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        assert reopened.next_sequence(1) == 3
        assert reopened.epochs(1) == [0, 1]
        with pytest.raises(ReceiptStoreError, match="epoch 0 for worker 1 is before epoch 1"):
            reopened.append(make_receipt(epoch=0, sequence=3))
        reopened.append(make_receipt(epoch=1, sequence=3))
        assert [r.sequence for r in reopened.receipts(1, 1)] == [2, 3]


def test_torn_last_line_is_ignored_then_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        first.append(make_receipt(sequence=0))
        first.append(make_receipt(sequence=1))
    path = epoch_file(tmp_path, 1, 0)
    intact = path.read_bytes()
    torn_line = make_receipt(sequence=2).to_json().encode()[:57]
    path.write_bytes(intact + torn_line)

    with caplog.at_level(logging.WARNING, logger=store_module.__name__):
        reopened = ReceiptStore(tmp_path, DOMAIN)
        assert reopened.next_sequence(1) == 2
        assert [r.sequence for r in reopened.receipts(1, 0)] == [0, 1]
        assert [r.sequence for r in reopened.receipts(1, 0)] == [0, 1]
    torn_warnings = [r for r in caplog.records if "torn last line" in r.getMessage()]
    assert len(torn_warnings) == 1, "a torn line is reported once, not on every read"
    assert path.read_bytes() == intact + torn_line, "reads leave the file unchanged"

    reopened.append(make_receipt(sequence=2))
    reopened.close()

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [SignedReceipt.from_json(line).sequence for line in lines[:-1]] == [0, 1, 2]


def test_zero_filled_last_line_is_torn(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        first.append(make_receipt(sequence=0))
    path = epoch_file(tmp_path, 1, 0)
    intact = path.read_bytes()
    path.write_bytes(intact + bytes(40) + b"\n")

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        assert [r.sequence for r in reopened.receipts(1, 0)] == [0]
        reopened.append(make_receipt(sequence=1))

    assert path.read_bytes() == intact + make_receipt(sequence=1).to_json().encode() + b"\n"


def test_torn_only_epoch_file_is_removed(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        first.append(make_receipt(epoch=0, sequence=0))
    torn_path = epoch_file(tmp_path, 1, 1)
    torn_path.write_bytes(b'{"worker_id": 1, "requ')

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        assert reopened.next_sequence(1) == 1
        assert reopened.epochs(1) == [0, 1]
        assert reopened.receipts(1, 1) == []
        reopened.append(make_receipt(epoch=0, sequence=1))

        assert not torn_path.exists()
        assert reopened.epochs(1) == [0]


def test_failed_write_is_rolled_back(store: ReceiptStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store.append(make_receipt(sequence=0))
    path = epoch_file(tmp_path, 1, 0)
    intact = path.read_bytes()
    real_fsync = os.fsync
    failures = iter([OSError(28, "No space left on device")])

    def failing_fsync(descriptor: int) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ReceiptStoreError, match="No space left on device"):
        store.append(make_receipt(sequence=1))

    assert path.read_bytes() == intact
    assert store.next_sequence(1) == 1
    store.append(make_receipt(sequence=1))
    assert [r.sequence for r in store.receipts(1, 0)] == [0, 1]


# Corruption and misuse


def test_corrupt_middle_line_raises(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        for sequence in range(3):
            first.append(make_receipt(sequence=sequence))
    path = epoch_file(tmp_path, 1, 0)
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"not json"
    path.write_bytes(b"\n".join(lines))

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        with pytest.raises(ReceiptStoreError, match="line 2 is not a valid signed receipt"):
            reopened.receipts(1, 0)


def test_receipt_in_wrong_file_raises(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path, DOMAIN) as first:
        first.append(make_receipt(epoch=3, sequence=0))
    epoch_file(tmp_path, 1, 3).rename(epoch_file(tmp_path, 1, 4))

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        with pytest.raises(ReceiptStoreError, match="expected worker 1 epoch 4"):
            reopened.next_sequence(1)


def test_sequence_gap_in_file_raises(tmp_path: Path) -> None:
    path = epoch_file(tmp_path, 1, 0)
    path.parent.mkdir(parents=True)
    path.write_text(
        make_receipt(sequence=0).to_json() + "\n" + make_receipt(sequence=2).to_json() + "\n"
    )

    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        with pytest.raises(ReceiptStoreError, match="sequence 2 after 0"):
            reopened.receipts(1, 0)


def test_second_open_is_rejected(store: ReceiptStore, tmp_path: Path) -> None:
    with pytest.raises(ReceiptStoreError, match="already open"):
        ReceiptStore(tmp_path, DOMAIN)


def test_reopen_after_close(tmp_path: Path) -> None:
    first = ReceiptStore(tmp_path, DOMAIN)
    first.close()

    with ReceiptStore(tmp_path, DOMAIN) as second:
        assert second.next_sequence(1) == 0


def test_closed_store_raises(tmp_path: Path) -> None:
    closed = ReceiptStore(tmp_path, DOMAIN)
    closed.close()

    with pytest.raises(ReceiptStoreError, match="is closed"):
        closed.append(make_receipt(sequence=0))
    with pytest.raises(ReceiptStoreError, match="is closed"):
        closed.workers()


def test_other_domain_is_rejected(tmp_path: Path) -> None:
    ReceiptStore(tmp_path, DOMAIN).close()
    other = Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract)

    with pytest.raises(ReceiptStoreError, match="belongs to domain"):
        ReceiptStore(tmp_path, other)
    # The failed open released the directory lock.
    ReceiptStore(tmp_path, DOMAIN).close()


def test_domain_file_records_domain(store: ReceiptStore, tmp_path: Path) -> None:
    assert json.loads((tmp_path / "domain.json").read_text()) == {
        "chain_id": 31337,
        "verifying_contract": DOMAIN.verifying_contract,
    }


# Threads


def test_concurrent_append_next(tmp_path: Path) -> None:
    threads_per_worker = 6
    appends_per_thread = 10
    workers = [1, 2]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_per_worker * len(workers))

    def run(store: ReceiptStore, worker_id: int) -> None:
        try:
            start.wait()
            for _ in range(appends_per_thread):
                store.append_next(
                    worker_id,
                    lambda sequence: make_receipt(
                        worker_id=worker_id, epoch=sequence // 25, sequence=sequence
                    ),
                )
        except BaseException as error:  # collected so the main thread can assert on it
            errors.append(error)

    with ReceiptStore(tmp_path, DOMAIN) as store:
        threads = [
            threading.Thread(target=run, args=(store, worker_id))
            for worker_id in workers
            for _ in range(threads_per_worker)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    total = threads_per_worker * appends_per_thread
    with ReceiptStore(tmp_path, DOMAIN) as reopened:
        for worker_id in workers:
            assert reopened.next_sequence(worker_id) == total
            stored = [r for epoch in reopened.epochs(worker_id) for r in reopened.receipts(worker_id, epoch)]
            assert [r.sequence for r in stored] == list(range(total))
            assert all(r.epoch == r.sequence // 25 for r in stored)


def test_racing_duplicate_appends_store_one(tmp_path: Path) -> None:
    receipt = make_receipt(sequence=0)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def run(store: ReceiptStore) -> None:
        start.wait()
        try:
            store.append(receipt)
            outcomes.append("stored")
        except ReceiptStoreError:
            outcomes.append("rejected")

    with ReceiptStore(tmp_path, DOMAIN) as store:
        threads = [threading.Thread(target=run, args=(store,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes) == ["rejected"] * 7 + ["stored"]
        assert store.receipts(1, 0) == [receipt]
