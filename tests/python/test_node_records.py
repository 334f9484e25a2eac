"""The node's call records: the evidence store, pruning, and the receipts endpoint over real HTTP.

`node_rig` builds the node's real call path (CallService, a WasmRuntime with a
small WAT guest, ReceiptStore, EvidenceStore, EpochRecords) around a static
tracker of two workers and a clock that the test moves by hand. No chain is
involved; test_node_answers.py covers the chain side.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_placement import make_deal

from cloudless.chain.keys import anvil_account_key
from cloudless.chain.types import OPEN_ENDED_EPOCH, DealStatus, Worker
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.exceptions import ReceiptStoreError
from cloudless.node.api import create_node_app
from cloudless.node.calls import CallOutcome, CallService, ReplayGuard
from cloudless.node.cheats import Cheats
from cloudless.node.epoch_records import EpochPrunedError, EpochRecords
from cloudless.node.evidence_store import CallEvidence, EvidenceStore
from cloudless.node.http_server import ServerThread
from cloudless.node.loop import NodeLoop
from cloudless.node.models import CallBody, NodeHealth
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock
from cloudless.node.workers import TrackedWorker
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_input
from cloudless.receipts.merkle import LeafOpening, verify_proof
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.receipts.store import ReceiptStore
from cloudless.runtime import build_package
from cloudless.runtime.engine import WasmRuntime

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
# Anvil's public test accounts, which hold nothing outside a local chain.
SIGNER_KEYS = {1: anvil_account_key(10), 2: anvil_account_key(11)}  # worker id -> peer signer key
CALLER_KEY = anvil_account_key(8)
START_EPOCH = 5

# `echo` returns its input: the output is the input bytes in guest memory.
ECHO_GUEST_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "cloudless_abi_version") (result i32) (i32.const 1))
  (func (export "cloudless_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "cloudless_free") (param i32 i32))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""


def echo_package() -> bytes:
    template = {
        "abi": 1,
        "name": "echo-guest",
        "version": "1.0.0",
        "modules": [{"name": "guest"}],
        "functions": [{"name": "echo", "description": "Return the input."}],
        "limits": {"fuel": 1_000_000, "memory_bytes": 65536, "timeout_ms": 1000},
    }
    return build_package(template, {"guest": wasmtime.wat2wasm(ECHO_GUEST_WAT)})


class SteppedClock(EpochClock):
    """An EpochClock whose epoch the test sets; it reads no chain."""

    def __init__(self, epoch: int = START_EPOCH) -> None:
        super().__init__(session=None)  # type: ignore[arg-type]
        self.epoch = epoch

    def current(self) -> int:
        return self.epoch


class StaticTracker:
    """The parts of WorkerTracker that the call path, the cheats and the endpoint read."""

    def __init__(self, workers: list[TrackedWorker]) -> None:
        self._workers = {tracked.worker_id: tracked for tracked in workers}

    def get(self, worker_id: int) -> TrackedWorker | None:
        return self._workers.get(worker_id)

    def all(self) -> list[TrackedWorker]:
        return [self._workers[worker_id] for worker_id in sorted(self._workers)]

    def sync(self) -> list[TrackedWorker]:
        return self.all()


def tracked_worker(worker_id: int, app_cid: bytes) -> TrackedWorker:
    """Worker N of deal N on peer N, signed by SIGNER_KEYS[N]."""
    worker = Worker(
        worker_id=worker_id,
        deal_id=worker_id,
        peer_id=worker_id,
        provider="0x" + "66" * 20,
        price_per_cu_per_epoch=10,
        cus=1,
        joined_epoch=0,
        left_epoch=OPEN_ENDED_EPOCH,
        claimed_until_epoch=0,
        active=True,
    )
    deal = make_deal(deal_id=worker_id, app_cid=app_cid, active_workers=1, rate_per_epoch=10)
    signer = Account.from_key(SIGNER_KEYS[worker_id]).address
    return TrackedWorker(worker=worker, deal=deal, deal_status=DealStatus.ACTIVE, signer=signer)


def signed_request(deal_id: int, input_bytes: bytes, *, nonce: int | None = None, deadline: int | None = None) -> SignedCallRequest:
    request = CallRequest.for_input(
        deal_id=deal_id,
        function_name="echo",
        input=input_bytes,
        nonce=time.time_ns() if nonce is None else nonce,
        deadline=int(time.time()) + 3600 if deadline is None else deadline,
    )
    return SignedCallRequest.sign(request, CALLER_KEY, DOMAIN)


def make_call(deal_id: int, input_bytes: bytes, **request_fields: Any) -> CallEvidence:
    request = signed_request(deal_id, input_bytes, **request_fields)
    return CallEvidence(request_hash=request.digest(DOMAIN), request=request, input=input_bytes)


def store_call(
    store: ReceiptStore, evidence: EvidenceStore, worker_id: int, epoch: int, call: CallEvidence, fuel: int = 100
) -> SignedReceipt:
    """Store a call and its receipt the way CallService does: the call first."""
    evidence.append(worker_id, epoch, call)

    def build(sequence: int) -> SignedReceipt:
        receipt = Receipt(
            worker_id=worker_id,
            request_hash=call.request_hash,
            app_cid=b"\x01\x55\x12\x20" + keccak(b"app"),
            output_hash=keccak(call.input),
            fuel_used=fuel,
            epoch=epoch,
            sequence=sequence,
        )
        return SignedReceipt.sign(receipt, SIGNER_KEYS[worker_id], DOMAIN)

    return store.append_next(worker_id, build)


@dataclass
class NodeRig:
    """A node's call path and records, without chain or HTTP server."""

    store: ReceiptStore
    evidence: EvidenceStore
    records: EpochRecords
    calls: CallService
    clock: SteppedClock
    tracker: StaticTracker
    cheats: Cheats
    runtime: WasmRuntime

    def call(self, worker_id: int, input_bytes: bytes) -> CallOutcome:
        request = signed_request(worker_id, input_bytes)
        body = CallBody(request=request, input_b64=base64.b64encode(input_bytes).decode("ascii"))
        return self.calls.handle(worker_id, body)

    def app(self) -> Any:
        health = NodeHealth(
            status="ok", provider="0x" + "66" * 20, offer_id=1, chain_id=31337, epoch=self.clock.epoch, peers=[], workers=[]
        )
        return create_node_app(
            self.calls, lambda: health, max_concurrent_calls=2, records=self.records, workers=self.tracker
        )


@contextmanager
def node_rig(data_dir: Path, cheats: tuple[str, ...] = ()) -> Iterator[NodeRig]:
    """Build a NodeRig in `data_dir` with two workers of two deals running the echo package."""
    runtime = WasmRuntime(data_dir / "compiled")
    store = ReceiptStore(data_dir / "receipts", DOMAIN)
    evidence = EvidenceStore(data_dir / "evidence")
    try:
        package = echo_package()
        cid = compute_cid(package)
        packages = PackageCache(runtime, data_dir / "packages", [])
        (data_dir / "packages" / cid).write_bytes(package)
        assert packages.ensure(cid), "the echo package did not load"
        tracker = StaticTracker([tracked_worker(1, cid_to_bytes(cid)), tracked_worker(2, cid_to_bytes(cid))])
        clock = SteppedClock()
        signer_keys = {Account.from_key(key).address: key for key in SIGNER_KEYS.values()}
        active = Cheats(
            cheats,
            store=store,
            evidence=evidence,
            domain=DOMAIN,
            signer_keys=signer_keys,
            tracker=tracker,  # type: ignore[arg-type]
            clock=clock,
        )
        calls = CallService(
            tracker=tracker,  # type: ignore[arg-type]
            packages=packages,
            runtime=runtime,
            store=store,
            clock=clock,
            domain=DOMAIN,
            signer_keys=signer_keys,
            replay=ReplayGuard(),
            evidence=evidence,
            cheats=active,
        )
        records = EpochRecords(store, evidence, clock, active)
        yield NodeRig(store, evidence, records, calls, clock, tracker, active, runtime)
    finally:
        runtime.close()
        evidence.close()
        store.close()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[ReceiptStore, EvidenceStore]]:
    with ReceiptStore(tmp_path / "receipts", DOMAIN) as store, EvidenceStore(tmp_path / "evidence") as evidence:
        yield store, evidence


def evidence_file(root: Path, worker_id: int, epoch: int) -> Path:
    return root / f"worker-{worker_id}" / f"epoch-{epoch}.jsonl"


# --- evidence store -----------------------------------------------------------------------


def test_evidence_append_then_read(tmp_path: Path) -> None:
    first, second = make_call(1, b'{"a":1}'), make_call(1, b'{"b":2}')
    with EvidenceStore(tmp_path) as evidence:
        evidence.append(1, 4, first)
        evidence.append(1, 4, second)
        evidence.append(2, 6, first)

        assert evidence.calls(1, 4) == {first.request_hash: first, second.request_hash: second}
        assert evidence.get(1, 4, second.request_hash) == second
        assert evidence.get(1, 5, second.request_hash) is None
        assert evidence.epochs(1) == [4]
        assert evidence.workers() == [1, 2]
    line = json.loads(evidence_file(tmp_path, 1, 4).read_text().splitlines()[0])
    assert set(line) == {"request_hash", "request", "input"}
    assert base64.b64decode(line["input"]) == b'{"a":1}'
    assert SignedCallRequest.from_dict(line["request"]) == first.request


def test_evidence_survives_restart(tmp_path: Path) -> None:
    call = make_call(1, b"input bytes \x00\xff")
    with EvidenceStore(tmp_path) as evidence:
        evidence.append(1, 0, call)

    with EvidenceStore(tmp_path) as reopened:
        stored = reopened.get(1, 0, call.request_hash)

    assert stored == call
    assert stored is not None and stored.request.signature == call.request.signature


def test_evidence_append_fsyncs_each_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    with EvidenceStore(tmp_path) as evidence:
        monkeypatch.setattr(os, "fsync", counting_fsync)
        evidence.append(1, 0, make_call(1, b"a"))
        first = len(synced)
        evidence.append(1, 0, make_call(1, b"b"))

    # The first append also syncs the new worker directory's parent and the new file's directory.
    assert first == 3
    assert len(synced) - first == 1


@pytest.mark.parametrize("torn_tail", [b'{"request_hash": "0x12', bytes(40) + b"\n"], ids=["partial", "zeros"])
def test_evidence_torn_line_is_skipped_then_cut(tmp_path: Path, torn_tail: bytes, caplog: pytest.LogCaptureFixture) -> None:
    first, second = make_call(1, b"a"), make_call(1, b"b")
    with EvidenceStore(tmp_path) as evidence:
        evidence.append(1, 0, first)
    path = evidence_file(tmp_path, 1, 0)
    intact = path.read_bytes()
    path.write_bytes(intact + torn_tail)

    with caplog.at_level(logging.WARNING, logger="cloudless.node"), EvidenceStore(tmp_path) as reopened:
        assert reopened.calls(1, 0) == {first.request_hash: first}
        assert reopened.calls(1, 0) == {first.request_hash: first}
        assert path.read_bytes() == intact + torn_tail, "reads leave the file unchanged"
        reopened.append(1, 0, second)

    torn_warnings = [record for record in caplog.records if "torn last line" in record.getMessage()]
    assert len(torn_warnings) == 1, "a torn line is reported once, not on every read"
    assert path.read_bytes() == intact + second.to_json().encode() + b"\n"


def test_evidence_torn_line_cut_after_restart(tmp_path: Path) -> None:
    first, second = make_call(1, b"a"), make_call(1, b"b")
    with EvidenceStore(tmp_path) as evidence:
        evidence.append(1, 0, first)
    path = evidence_file(tmp_path, 1, 0)
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"request_ha')

    # No read before the append: the append itself checks the tail.
    with EvidenceStore(tmp_path) as reopened:
        reopened.append(1, 0, second)

    assert path.read_bytes() == intact + second.to_json().encode() + b"\n"


def test_evidence_failed_write_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_call(1, b"a"), make_call(1, b"b")
    real_fsync = os.fsync
    failures = iter([OSError(28, "No space left on device")])

    def failing_fsync(descriptor: int) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_fsync(descriptor)

    with EvidenceStore(tmp_path) as evidence:
        evidence.append(1, 0, first)
        intact = evidence_file(tmp_path, 1, 0).read_bytes()
        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(ReceiptStoreError, match="No space left on device"):
            evidence.append(1, 0, second)

        assert evidence_file(tmp_path, 1, 0).read_bytes() == intact
        evidence.append(1, 0, second)
        assert set(evidence.calls(1, 0)) == {first.request_hash, second.request_hash}


def test_evidence_corrupt_middle_line_raises(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path) as evidence:
        for index in range(3):
            evidence.append(1, 0, make_call(1, bytes([index])))
    path = evidence_file(tmp_path, 1, 0)
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"not json"
    path.write_bytes(b"\n".join(lines))

    with EvidenceStore(tmp_path) as reopened, pytest.raises(ReceiptStoreError, match="line 2 is not valid call evidence"):
        reopened.calls(1, 0)


def test_evidence_second_open_is_rejected(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path):
        with pytest.raises(ReceiptStoreError, match="already open"):
            EvidenceStore(tmp_path)
    EvidenceStore(tmp_path).close()


def test_evidence_closed_store_raises(tmp_path: Path) -> None:
    evidence = EvidenceStore(tmp_path)
    evidence.close()

    with pytest.raises(ReceiptStoreError, match="is closed"):
        evidence.append(1, 0, make_call(1, b"a"))


def test_pruned_live_requests_stay_replays(tmp_path: Path) -> None:
    now = int(time.time())
    live = make_call(1, b"live", deadline=now + 600)
    expired = make_call(1, b"expired", deadline=now - 1)
    with ReceiptStore(tmp_path / "receipts", DOMAIN) as store, EvidenceStore(tmp_path / "evidence") as evidence:
        store_call(store, evidence, 1, 0, live)
        store_call(store, evidence, 1, 0, expired)
        EpochRecords(store, evidence, SteppedClock(), now=lambda: now).prune(1, set())

    with ReceiptStore(tmp_path / "receipts", DOMAIN) as store, EvidenceStore(tmp_path / "evidence") as evidence:
        hashes = evidence.live_request_hashes(now=now)
        guard = ReplayGuard.from_store(store, hashes)

        assert hashes == {live.request_hash}
        assert not guard.reserve(live.request_hash), "a live request whose receipt was pruned is still a replay"
        assert guard.reserve(expired.request_hash)
        assert evidence.live_request_hashes(now=now + 601) == set()
    assert not (tmp_path / "evidence" / "live-requests.jsonl").exists(), "expired entries are dropped"


# --- receipt store pruning ----------------------------------------------------------------


def fill_epochs(store: ReceiptStore, evidence: EvidenceStore, worker_id: int, epochs: list[int]) -> None:
    for epoch in epochs:
        store_call(store, evidence, worker_id, epoch, make_call(worker_id, f"{worker_id}:{epoch}".encode()))


def test_prune_deletes_epochs_below_except_kept(stores: tuple[ReceiptStore, EvidenceStore]) -> None:
    store, evidence = stores
    fill_epochs(store, evidence, 1, [0, 1, 2, 3, 4])

    deleted = store.prune_epochs(1, 3, keep={1})

    assert deleted == [0, 2]
    assert store.epochs(1) == [1, 3, 4]
    assert [store.is_pruned(1, epoch) for epoch in range(5)] == [True, False, True, False, False]
    assert store.prune_epochs(1, 3, keep={1}) == []
    # Once no longer kept, the epoch goes too.
    assert store.prune_epochs(1, 3) == [1]
    assert store.is_pruned(1, 1)


def test_pruned_epoch_cannot_be_kept_again(stores: tuple[ReceiptStore, EvidenceStore]) -> None:
    store, evidence = stores
    fill_epochs(store, evidence, 1, [0, 1])
    store.prune_epochs(1, 2)

    store.prune_epochs(1, 2, keep={0})

    assert store.is_pruned(1, 0)


def test_prune_keeps_sequence_across_restart(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path / "receipts", DOMAIN) as store, EvidenceStore(tmp_path / "evidence") as evidence:
        fill_epochs(store, evidence, 1, [0, 1, 2])
        assert store.prune_epochs(1, 3) == [0, 1, 2]
        assert store.epochs(1) == []

    with ReceiptStore(tmp_path / "receipts", DOMAIN) as reopened:
        assert reopened.next_sequence(1) == 3
        assert reopened.is_pruned(1, 2)
        with pytest.raises(ReceiptStoreError, match="already pruned"):
            reopened.append(SignedReceipt.sign(
                Receipt(worker_id=1, request_hash=keccak(b"r"), app_cid=b"\x01\x55\x12\x20" + keccak(b"app"),
                        output_hash=keccak(b"o"), fuel_used=1, epoch=2, sequence=3),
                SIGNER_KEYS[1],
                DOMAIN,
            ))
        receipt = store_call(reopened, EvidenceStore(tmp_path / "evidence2"), 1, 3, make_call(1, b"after"))
        assert receipt.sequence == 3


def test_prune_finishes_after_crash_before_delete(tmp_path: Path) -> None:
    with ReceiptStore(tmp_path / "receipts", DOMAIN) as store, EvidenceStore(tmp_path / "evidence") as evidence:
        fill_epochs(store, evidence, 1, [0, 1])
        saved = (tmp_path / "receipts" / "worker-1" / "epoch-0.jsonl").read_bytes()
        store.prune_epochs(1, 1)
    # A crash after pruned.json was written and before the file was deleted leaves the file.
    (tmp_path / "receipts" / "worker-1" / "epoch-0.jsonl").write_bytes(saved)

    with ReceiptStore(tmp_path / "receipts", DOMAIN) as reopened:
        assert reopened.is_pruned(1, 0)
        assert reopened.prune_epochs(1, 1) == [0]
        assert reopened.epochs(1) == [1]


# --- epoch records and the pruning rule ---------------------------------------------------


def test_record_joins_receipts_calls_and_openings(stores: tuple[ReceiptStore, EvidenceStore]) -> None:
    store, evidence = stores
    calls = [make_call(1, bytes([index])) for index in range(3)]
    receipts = [store_call(store, evidence, 1, 7, call, fuel=100 + index) for index, call in enumerate(calls)]
    records = EpochRecords(store, evidence, SteppedClock())

    record = records.record(1, 7)

    assert record.summary == store.summary(1, 7) == records.summary(1, 7)
    assert [leaf.receipt for leaf in record.calls] == receipts
    assert [leaf.call for leaf in record.calls] == calls
    assert [leaf.opening.fuel_before for leaf in record.calls] == [0, 100, 201]
    for leaf in record.calls:
        opening = leaf.opening
        assert verify_proof(record.summary.root, opening.digest, opening.index, opening.fuel_before, list(opening.proof))


def test_record_without_stored_call_has_none(stores: tuple[ReceiptStore, EvidenceStore], caplog: pytest.LogCaptureFixture) -> None:
    store, evidence = stores
    store_call(store, evidence, 1, 7, make_call(1, b"kept"))
    store.append_next(
        1,
        lambda sequence: SignedReceipt.sign(
            Receipt(worker_id=1, request_hash=keccak(b"lost"), app_cid=b"\x01\x55\x12\x20" + keccak(b"app"),
                    output_hash=keccak(b"o"), fuel_used=5, epoch=7, sequence=sequence),
            SIGNER_KEYS[1],
            DOMAIN,
        ),
    )

    with caplog.at_level(logging.WARNING, logger="cloudless.node"):
        record = EpochRecords(store, evidence, SteppedClock()).record(1, 7)

    assert record.calls[0].call is not None
    assert record.calls[1].call is None
    assert record.calls[1].to_json()["request"] is None
    assert "no stored request for the receipts at leaves [1]" in caplog.text


def test_records_prune_deletes_receipts_and_calls(stores: tuple[ReceiptStore, EvidenceStore], caplog: pytest.LogCaptureFixture) -> None:
    store, evidence = stores
    fill_epochs(store, evidence, 1, [0, 1, 2, 3])
    fill_epochs(store, evidence, 2, [1, 3])
    records = EpochRecords(store, evidence, SteppedClock())

    with caplog.at_level(logging.INFO, logger="cloudless.node"):
        pruned = records.prune(3, open_epochs={(1, 1)})

    assert pruned == {1: [0, 2], 2: [1]}
    assert store.epochs(1) == evidence.epochs(1) == [1, 3]
    assert store.epochs(2) == evidence.epochs(2) == [3]
    with pytest.raises(EpochPrunedError, match="epoch 0 of worker 1 was pruned"):
        records.record(1, 0)
    assert "pruned the receipts, requests and inputs of worker 1 epochs 0, 2" in caplog.text
    assert "keeping worker 1 epoch 1 past its challenge window: a challenge of it is still open" in caplog.text


class FakeAnswerer:
    """Stands in for the ChallengeAnswerer in pruning-rule tests: fixed open epochs, or a failing round."""

    def __init__(self, open_epochs: set[tuple[int, int]], *, fail: bool = False) -> None:
        self._open = open_epochs
        self._fail = fail

    def run_once(self) -> list[object]:
        if self._fail:
            raise ConnectionError("RPC down")
        return []

    def open_epochs(self) -> set[tuple[int, int]]:
        return set(self._open)


class IdleProver:
    def prove(self, tracked: TrackedWorker, current_epoch: int) -> int:
        return 0

    def claim(self, tracked: TrackedWorker) -> None:
        return None

    def withdraw_earnings(self) -> int:
        return 0


def run_loop_round(records: EpochRecords, clock: SteppedClock, answerer: FakeAnswerer, kept_epochs: int) -> None:
    loop = NodeLoop(
        tracker=StaticTracker([]),  # type: ignore[arg-type]
        packages=None,  # type: ignore[arg-type]
        prover=IdleProver(),  # type: ignore[arg-type]
        clock=clock,
        interval_seconds=1.0,
        claim_enabled=False,
        answerer=answerer,  # type: ignore[arg-type]
        records=records,
        kept_epochs=kept_epochs,
    )
    loop.run_once()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    proof_window=st.integers(1, 3),
    challenge_window=st.integers(0, 2),
    current=st.integers(0, 10),
    stored=st.sets(st.tuples(st.integers(1, 2), st.integers(0, 6)), max_size=6),
    open_share=st.data(),
)
def test_loop_prunes_exactly_closed_epochs(
    proof_window: int, challenge_window: int, current: int, stored: set[tuple[int, int]], open_share: st.DataObject
) -> None:
    open_epochs = open_share.draw(st.sets(st.sampled_from(sorted(stored)), max_size=2)) if stored else set()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        with ReceiptStore(root / "receipts", DOMAIN) as store, EvidenceStore(root / "evidence") as evidence:
            for worker_id in (1, 2):
                fill_epochs(store, evidence, worker_id, sorted(epoch for worker, epoch in stored if worker == worker_id))
            records = EpochRecords(store, evidence, SteppedClock(current))

            run_loop_round(records, SteppedClock(current), FakeAnswerer(open_epochs), proof_window + challenge_window)

            for worker_id, epoch in sorted(stored):
                # Epoch e is done once the current epoch reaches e + proof window + challenge window + 1.
                done = current >= epoch + proof_window + challenge_window + 1
                expected_gone = done and (worker_id, epoch) not in open_epochs
                assert (epoch not in store.epochs(worker_id)) == expected_gone, (worker_id, epoch)
                assert (epoch not in evidence.epochs(worker_id)) == expected_gone, (worker_id, epoch)
                assert store.is_pruned(worker_id, epoch) == expected_gone, (worker_id, epoch)


def test_loop_does_not_prune_without_challenge_logs(stores: tuple[ReceiptStore, EvidenceStore]) -> None:
    store, evidence = stores
    fill_epochs(store, evidence, 1, [0, 1])
    records = EpochRecords(store, evidence, SteppedClock(10))

    run_loop_round(records, SteppedClock(10), FakeAnswerer(set(), fail=True), kept_epochs=3)

    assert store.epochs(1) == [0, 1], "a round that could not read challenges must not prune"


# --- receipts endpoint over HTTP ----------------------------------------------------------


@contextmanager
def served(rig: NodeRig) -> Iterator[str]:
    server = ServerThread(rig.app(), "127.0.0.1", 0, logger_name="cloudless.node")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_endpoint_serves_epoch_receipts(tmp_path: Path) -> None:
    with node_rig(tmp_path) as rig, served(rig) as url:
        inputs = [b'{"ok":{"n":1}}', b'{"ok":{"n":22}}', b'{"ok":{"n":333}}']
        replies = [rig.call(1, input_bytes).reply for input_bytes in inputs]
        assert all(reply.ok for reply in replies)
        rig.call(2, b'{"ok":"other worker"}')

        response = httpx.get(f"{url}/workers/1/epochs/{START_EPOCH}/receipts", timeout=10)
        summary = rig.records.summary(1, START_EPOCH)

    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["worker_id", "epoch", "root", "calls", "usage", "receipts"]
    assert body["worker_id"] == 1
    assert body["epoch"] == START_EPOCH
    assert body["root"] == "0x" + summary.root.hex()
    assert body["calls"] == summary.calls == 3
    assert body["usage"] == summary.fuel_total == sum(reply.receipt.fuel_used for reply in replies)
    assert [item["index"] for item in body["receipts"]] == [0, 1, 2]
    root = bytes.fromhex(body["root"][2:])
    for item, input_bytes, reply in zip(body["receipts"], inputs, replies, strict=True):
        assert list(item) == ["index", "receipt", "request", "input", "opening"]
        receipt = SignedReceipt.from_dict(item["receipt"])
        request = SignedCallRequest.from_dict(item["request"])
        opening = LeafOpening.from_json(item["opening"])
        assert receipt == reply.receipt
        assert base64.b64decode(item["input"]) == input_bytes
        assert request.input_hash == hash_input(input_bytes)
        assert request.digest(DOMAIN) == receipt.request_hash
        request.verify(DOMAIN, now=int(time.time()))
        assert opening.digest == receipt.digest(DOMAIN)
        assert opening.index == item["index"]
        assert verify_proof(root, opening.digest, opening.index, opening.fuel_before, list(opening.proof))


def test_endpoint_empty_epoch(tmp_path: Path) -> None:
    with node_rig(tmp_path) as rig, served(rig) as url:
        response = httpx.get(f"{url}/workers/1/epochs/2/receipts", timeout=10)

    assert response.status_code == 200, response.text
    assert response.json() == {"worker_id": 1, "epoch": 2, "root": "0x" + "00" * 32, "calls": 0, "usage": 0, "receipts": []}


def test_endpoint_errors(tmp_path: Path) -> None:
    with node_rig(tmp_path) as rig, served(rig) as url:
        rig.call(1, b'{"ok":{"n":1}}')
        rig.records.prune(START_EPOCH + 1, set())

        unknown = httpx.get(f"{url}/workers/99/epochs/0/receipts", timeout=10)
        pruned = httpx.get(f"{url}/workers/1/epochs/{START_EPOCH}/receipts", timeout=10)
        malformed = [
            httpx.get(f"{url}/workers/{worker}/epochs/{epoch}/receipts", timeout=10)
            for worker, epoch in [("abc", "1"), ("-1", "1"), ("01", "1"), ("1", "1.5"), ("1", str(2**64))]
        ]

    assert unknown.status_code == 404
    assert unknown.json()["error"]["kind"] == "unknown_worker"
    assert pruned.status_code == 410
    assert pruned.json()["error"]["kind"] == "pruned"
    assert f"epoch {START_EPOCH} of worker 1 was pruned" in pruned.json()["error"]["message"]
    for response in malformed:
        assert response.status_code == 400, response.url
        assert response.json()["error"]["kind"] == "invalid_request"
    assert "worker id 'abc'" in malformed[0].json()["error"]["message"]
    assert "epoch '18446744073709551616'" in malformed[4].json()["error"]["message"]


def test_endpoint_reports_usage_that_prover_submits(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("inflate_usage",)) as rig, served(rig) as url:
        rig.call(1, b'{"ok":{"n":1}}')
        real = rig.store.summary(1, START_EPOCH)

        body = httpx.get(f"{url}/workers/1/epochs/{START_EPOCH}/receipts", timeout=10).json()
        proven = rig.records.summary(1, START_EPOCH)

    assert body["usage"] == proven.fuel_total == real.fuel_total * 2 + 1000
    assert body["root"] == "0x" + real.root.hex(), "the tree stays honest"
