"""Node concurrency limit: calls past `max_concurrent_calls` get 503 "busy" at once, and the gateway fails over.

The HTTP tests run the real node app on 127.0.0.1 (bench/node_harness.py)
with a WAT guest whose `spin` loops until its 700 ms wall-time limit, so
each slow call holds its slot for that long.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import wasmtime
from pydantic import ValidationError
from test_gateway_dispatch import honest_node, make_dispatcher

from cloudless.exceptions import CallRejectedError
from cloudless.node.calls import CallAdmission
from cloudless.node.config import NodeConfig, usable_cpu_count
from cloudless.node.models import CallBody
from cloudless.runtime import build_package

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from node_harness import LocalNode, local_node  # noqa: E402

LIMIT = 2
SPIN_TIMEOUT_MS = 700

SPIN_GUEST_WAT = """
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\\"ok\\":1}")
  (func (export "cloudless_abi_version") (result i32) (i32.const 1))
  (func (export "cloudless_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "cloudless_free") (param i32 i32))
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))
  ;; Returns the 8 bytes at offset 16, packed as (ptr << 32) | len.
  (func (export "one") (param i32 i32) (result i64)
    (i64.const 0x0000001000000008)))
"""


def spin_package() -> bytes:
    template = {
        "abi": 1,
        "name": "spin-guest",
        "version": "1.0.0",
        "modules": [{"name": "guest"}],
        "functions": [
            {"name": "spin", "description": "Loop until the wall-time limit stops the call."},
            {"name": "one", "description": "Return 1."},
        ],
        "limits": {"fuel": 10_000_000_000, "memory_bytes": 65536, "timeout_ms": SPIN_TIMEOUT_MS},
    }
    return build_package(template, {"guest": wasmtime.wat2wasm(SPIN_GUEST_WAT)})


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[LocalNode]:
    with local_node(tmp_path, [spin_package()], max_concurrent_calls=LIMIT) as started:
        yield started


def node_config(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "provider_key": "0x" + "11" * 32,
        "name": "admission",
        "data_dir": "/tmp/unused",
        "package_sources": ["http://127.0.0.1:8080"],
        "offer": {"price_usdc": "1", "region": 1, "tier": 1, "sla_bps": 1},
        "peers": [{"signer_key": "0x" + "22" * 32, "cus": 1}],
    }
    fields.update(changes)
    return fields


# --- config and the counter -------------------------------------------------------------


def test_config_limit_defaults_to_cores() -> None:
    config = NodeConfig.model_validate(node_config())

    assert config.max_concurrent_calls == usable_cpu_count()
    assert config.max_concurrent_calls >= 1


def test_config_limit_must_be_positive() -> None:
    assert NodeConfig.model_validate(node_config(max_concurrent_calls=8)).max_concurrent_calls == 8
    with pytest.raises(ValidationError, match="max_concurrent_calls"):
        NodeConfig.model_validate(node_config(max_concurrent_calls=0))


def test_admission_counts_slots() -> None:
    admission = CallAdmission(2)

    assert admission.try_enter()
    assert admission.try_enter()
    assert not admission.try_enter()
    assert admission.running == 2
    assert admission.rejected == 1
    assert admission.busy_message() == "node busy: 2 calls running, the limit is 2; retry later"
    admission.leave()
    assert admission.try_enter()
    admission.leave()
    admission.leave()
    assert admission.running == 0
    with pytest.raises(RuntimeError):
        admission.leave()
    with pytest.raises(ValueError, match="at least 1"):
        CallAdmission(0)


# --- the node over HTTP ----------------------------------------------------------------------


def test_node_rejects_call_past_limit(node: LocalNode) -> None:
    slow_replies: list[httpx.Response] = []

    def slow_call() -> None:
        with httpx.Client(timeout=30) as client:
            slow_replies.append(node.post(client, 1, node.call_body(1, "spin", b"{}")))

    slow_threads = [threading.Thread(target=slow_call) for _ in range(LIMIT)]
    for thread in slow_threads:
        thread.start()
    deadline = time.monotonic() + 10
    while node.admission.running < LIMIT:
        assert time.monotonic() < deadline, "the slow calls never started"
        time.sleep(0.01)

    busy_body = node.call_body(1, "one", b"{}")
    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        busy = node.post(client, 1, busy_body)
        busy_seconds = time.perf_counter() - started
    still_running = node.admission.running

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert busy.json() == {
        "error": {"kind": "busy", "message": f"node busy: {LIMIT} calls running, the limit is {LIMIT}; retry later"}
    }
    # Rejected at once, while both slow calls still hold their slots.
    assert busy_seconds < SPIN_TIMEOUT_MS / 1000 / 2
    assert still_running == LIMIT

    for thread in slow_threads:
        thread.join(timeout=30)
    assert [reply.status_code for reply in slow_replies] == [200] * LIMIT
    assert [reply.json()["error"]["kind"] for reply in slow_replies] == ["timeout"] * LIMIT
    assert node.admission.running == 0
    assert node.admission.rejected == 1

    # The busy call ran nothing, so the same signed request is accepted once a slot is free.
    with httpx.Client(timeout=30) as client:
        retried = node.post(client, 1, busy_body)
    assert retried.status_code == 200
    assert retried.json()["ok"] is True
    assert json.loads(base64.b64decode(retried.json()["output_b64"])) == 1


def test_node_limit_frees_after_calls(node: LocalNode) -> None:
    with httpx.Client(timeout=30) as client:
        replies = [node.post(client, 1, node.call_body(1, "one", b"{}")) for _ in range(3 * LIMIT)]

    assert [reply.status_code for reply in replies] == [200] * (3 * LIMIT)
    assert node.admission.running == 0
    assert node.admission.rejected == 0


def test_node_busy_rejections_leave_no_slot(node: LocalNode) -> None:
    """Many concurrent calls: some run, the rest are busy, and every slot is free afterwards."""
    results: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(timeout=30) as client:
            status = node.post(client, 1, node.call_body(1, "spin", b"{}")).status_code
        with lock:
            results.append(status)

    threads = [threading.Thread(target=call) for _ in range(4 * LIMIT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 4 * LIMIT
    assert set(results) <= {200, 503}
    assert 1 <= results.count(200)
    assert results.count(503) == node.admission.rejected
    assert node.admission.running == 0


# --- the gateway ---------------------------------------------------------------------------------


def busy_node(worker_id: int, body: CallBody) -> httpx.Response:
    message = "node busy: 2 calls running, the limit is 2; retry later"
    return httpx.Response(503, json={"error": {"kind": "busy", "message": message}}, headers={"Retry-After": "1"})


def test_gateway_fails_over_busy_node() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: busy_node, 2: honest_node()}, calls)

    reply = dispatcher.call(5, "reverse", b"{}")

    assert reply.status == 200
    assert reply.body["worker_id"] == 2
    assert calls == [1, 2]


def test_gateway_all_busy_is_503_busy() -> None:
    calls: list[int] = []
    dispatcher = make_dispatcher({1: busy_node, 2: busy_node}, calls)

    with pytest.raises(CallRejectedError) as raised:
        dispatcher.call(5, "reverse", b"{}")

    assert raised.value.status == 503
    assert raised.value.kind == "busy"
    assert "all 2 workers of deal 5 are busy" in str(raised.value)
    assert sorted(calls) == [1, 2]
