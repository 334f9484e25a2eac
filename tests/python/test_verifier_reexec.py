"""Re-execution gives the same output hash and fuel as a real node's receipt, and the sample is repeatable."""

from __future__ import annotations

import base64
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudless.cid import compute_cid, cid_to_bytes
from cloudless.node.models import CallReply
from cloudless.receipts.eip712 import hash_output
from cloudless.receipts.models import SignedCallRequest
from cloudless.verifier.findings import FindingKind
from cloudless.verifier.reexec import Inconclusive, Outcome, Reexecutor, outcome_finding, sample_indices

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from node_harness import DOMAIN, LocalNode, local_node  # noqa: E402

DIST = Path(__file__).resolve().parents[2] / "functions" / "dist"
PACKAGES = {"context": DIST / "context.cloudless.tar", "text": DIST / "text.cloudless.tar"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    missing = [str(path) for path in PACKAGES.values() if not path.exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: run `make setup` to build the example functions")
    packages = [PACKAGES["context"].read_bytes(), PACKAGES["text"].read_bytes()]
    with local_node(tmp_path_factory.mktemp("node"), packages, max_concurrent_calls=2) as started:
        yield started


@pytest.fixture(scope="module")
def reexecutor(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[Reexecutor]:
    package_dir = tmp_path_factory.mktemp("packages")
    for path in PACKAGES.values():
        data = path.read_bytes()
        (package_dir / compute_cid(data)).write_bytes(data)
    runner = Reexecutor(package_dir, tmp_path_factory.mktemp("compiled"), [], DOMAIN)
    yield runner
    runner.close()


def call_node(node: LocalNode, worker_id: int, function: str, input_bytes: bytes) -> tuple[SignedCallRequest, CallReply]:
    body = node.call_body(worker_id, function, input_bytes)
    with httpx.Client(timeout=30) as client:
        response = node.post(client, worker_id, body)
    assert response.status_code in (200, 404), response.text
    return SignedCallRequest.from_dict(body["request"]), CallReply.model_validate(response.json())


# Worker 1 runs the context package, worker 2 the text package.
CASES = [
    pytest.param(1, "call_info", b"{}", id="call-params"),
    pytest.param(2, "word_count", b'{"text": "the cat and the hat"}', id="text-output"),
    pytest.param(2, "fail", b"{}", id="guest-error"),
    pytest.param(2, "missing_function", b"{}", id="unknown-function"),
]


@pytest.mark.parametrize(("worker_id", "function", "input_bytes"), CASES)
def test_reexecution_matches_node_receipt(
    node: LocalNode, reexecutor: Reexecutor, worker_id: int, function: str, input_bytes: bytes
) -> None:
    request, reply = call_node(node, worker_id, function, input_bytes)

    outcome = reexecutor.run(reply.receipt.app_cid, request, input_bytes)

    assert isinstance(outcome, Outcome), outcome
    assert outcome.output == base64.b64decode(reply.output_b64)
    assert outcome.output_hash == reply.receipt.output_hash
    assert outcome.fuel_used == reply.receipt.fuel_used
    assert outcome_finding(reply.receipt, outcome, worker_id=worker_id, epoch=0, leaf_index=0) is None


def test_reexecution_finds_forged_output(node: LocalNode, reexecutor: Reexecutor) -> None:
    request, reply = call_node(node, 2, "reverse", b'{"text": "abc"}')
    forged = reply.receipt.model_copy(update={"output_hash": hash_output(b'{"text":"xyz"}')})

    outcome = reexecutor.run(reply.receipt.app_cid, request, b'{"text": "abc"}')

    assert isinstance(outcome, Outcome)
    finding = outcome_finding(forged, outcome, worker_id=2, epoch=0, leaf_index=3)
    assert finding is not None
    assert finding.kind is FindingKind.OUTPUT_MISMATCH
    assert finding.leaf_index == 3


def test_reexecution_finds_inflated_fuel(node: LocalNode, reexecutor: Reexecutor) -> None:
    request, reply = call_node(node, 2, "reverse", b'{"text": "abcd"}')
    inflated = reply.receipt.model_copy(update={"fuel_used": reply.receipt.fuel_used + 1})

    outcome = reexecutor.run(reply.receipt.app_cid, request, b'{"text": "abcd"}')

    assert isinstance(outcome, Outcome)
    assert outcome_finding(inflated, outcome, worker_id=2, epoch=0, leaf_index=0) is not None


def test_reexecution_of_unknown_package_is_inconclusive(node: LocalNode, reexecutor: Reexecutor) -> None:
    request, _ = call_node(node, 2, "reverse", b'{"text": "a"}')
    unknown = cid_to_bytes(compute_cid(b"no such package"))

    outcome = reexecutor.run(unknown, request, b'{"text": "a"}')

    assert isinstance(outcome, Inconclusive)
    assert "not available" in outcome.reason


def test_reexecution_rejects_wrong_input(node: LocalNode, reexecutor: Reexecutor) -> None:
    request, reply = call_node(node, 2, "reverse", b'{"text": "a"}')

    outcome = reexecutor.run(reply.receipt.app_cid, request, b'{"text": "b"}')

    assert isinstance(outcome, Inconclusive)


# ------------------------------------------------------------------ sampling


def test_sample_is_repeatable_and_seeded() -> None:
    first = sample_indices(50, 0.1, "seed-a:1:2")

    assert first == sample_indices(50, 0.1, "seed-a:1:2")
    assert len(first) == 5
    assert any(sample_indices(50, 0.1, f"seed-{n}:1:2") != first for n in range(5))


def test_sample_takes_one_of_small_epoch() -> None:
    assert len(sample_indices(3, 0.1, "s")) == 1
    assert sample_indices(0, 0.1, "s") == []
    assert sample_indices(10, 0, "s") == []


def test_sample_rejects_rate_above_one() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        sample_indices(10, 1.5, "s")


@given(count=st.integers(min_value=0, max_value=500), rate=st.floats(min_value=0, max_value=1), seed=st.text(max_size=8))
def test_sample_size_and_range(count: int, rate: float, seed: str) -> None:
    picks = sample_indices(count, rate, seed)

    expected = 0 if count == 0 or rate == 0 else min(count, max(1, math.ceil(rate * count)))
    assert len(picks) == expected
    assert picks == sorted(set(picks))
    assert all(0 <= pick < count for pick in picks)
