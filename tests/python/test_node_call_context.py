"""A node passes each call's deal, caller, function and request id to the guest, and maps a per-deal directory."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from cloudless.receipts.models import SignedCallRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from node_harness import CALLER_KEY, DOMAIN, LocalNode, local_node  # noqa: E402

CONTEXT_PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "dist" / "context.cloudless.tar"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LocalNode]:
    if not CONTEXT_PACKAGE.exists():
        pytest.skip(f"{CONTEXT_PACKAGE} is missing: run `make setup` to build the example functions")
    with local_node(tmp_path, [CONTEXT_PACKAGE.read_bytes()], max_concurrent_calls=2) as started:
        yield started


def test_node_passes_call_params_to_guest(node: LocalNode, tmp_path: Path) -> None:
    body = node.call_body(1, "call_info", b"{}")
    digest = SignedCallRequest.from_dict(body["request"]).digest(DOMAIN)

    with httpx.Client(timeout=30) as client:
        response = node.post(client, 1, body)

    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["ok"] is True, reply
    output = json.loads(base64.b64decode(reply["output_b64"]))
    assert output == {
        "deal_id": 1,
        "caller": Account.from_key(CALLER_KEY).address,
        "function": "call_info",
        "request_id": "0x" + digest.hex(),
    }
    assert (tmp_path / "deal-data" / "deal-1").is_dir()
