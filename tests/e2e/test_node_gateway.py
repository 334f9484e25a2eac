"""Provider node and gateway against a real anvil, real contracts, real Wasm and real HTTP on loopback.

One module fixture deploys, starts a gateway and a node in-process, uploads
the `text` example package, creates a deal with two workers and places both
on the node's two peers. The tests then call through the gateway, call the
node directly with bad requests, move chain time to see proofs and claims,
and restart the node.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from local_chain import LocalChain, free_port, local_chain
from node_stack import ROOT, health_ok, save_deployment, text_package, wait_for, write_node_config

from cloudless.chain import DeploySettings
from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.chain.types import DealParams
from cloudless.cid import cid_to_bytes
from cloudless.gateway import Gateway, GatewayConfig
from cloudless.node import ProviderNode, load_node_config
from cloudless.node.models import CallReply
from cloudless.receipts.eip712 import CallRequest, Domain
from cloudless.receipts.models import SignedCallRequest

PROVIDER_INDEX = 3
SIGNER_INDICES = (13, 14)
DEVELOPER_INDEX = 6
CALLER_INDEX = 8
EPOCH_SECONDS = 60
PROOF_WINDOW = 2
CHALLENGE_WINDOW = 1


@dataclass
class Stack:
    chain: LocalChain
    gateway: Gateway
    node: ProviderNode
    node_config_path: Path
    deal_id: int
    worker_ids: tuple[int, ...]
    package_cid: str
    domain: Domain

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    @property
    def node_url(self) -> str:
        return self.node.config.endpoint_url


def _text_package() -> bytes:
    return text_package()


def _write_node_config(directory: Path, chain: LocalChain, gateway_url: str, port: int) -> Path:
    return write_node_config(
        directory, chain, gateway_url, port, provider_index=PROVIDER_INDEX, signer_indices=SIGNER_INDICES, name="e2e-provider"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("node-gateway")
    settings = DeploySettings(
        epoch_duration=EPOCH_SECONDS,
        proof_window_epochs=PROOF_WINDOW,
        challenge_window_epochs=CHALLENGE_WINDOW,
        min_deposited_epochs=2,
    )
    with local_chain(settings) as chain:
        admin = chain.session(0)
        provider = chain.session(PROVIDER_INDEX)
        developer = chain.session(DEVELOPER_INDEX)
        admin.fund(provider.address, flt=10 * chain.deployment.collateral_per_cu)
        admin.fund(developer.address, usdc=admin.usdc.parse("1000"))

        node_port = free_port()
        gateway = Gateway(
            GatewayConfig(
                rpc_url=chain.rpc_url,
                deployment_file=_save_deployment(chain, directory),
                caller_account_index=CALLER_INDEX,
                port=free_port(),
                data_dir=directory / "gateway-data",
                request_timeout_seconds=10,
                endpoints={},
            )
        )
        gateway.start()
        node: ProviderNode | None = None
        try:
            uploaded = httpx.post(f"{gateway.url}/packages", content=_text_package(), timeout=30)
            assert uploaded.status_code == 200, uploaded.text
            cid = uploaded.json()["cid"]

            deal_id = developer.create_deal(
                DealParams(
                    app_cid=cid_to_bytes(cid),
                    payment_token=developer.usdc.address,
                    max_price_per_cu_per_epoch=developer.usdc.parse("1"),
                    deposit=developer.usdc.parse("100"),
                    min_workers=2,
                    target_workers=2,
                    max_workers_per_provider=2,
                )
            )
            config_path = _write_node_config(directory, chain, gateway.url, node_port)
            node = ProviderNode(load_node_config(config_path))
            node.start()
            assert node.registration is not None
            match = developer.deals.match_deal(deal_id, sorted(node.registration.peer_ids.values()))
            assert len(match.worker_ids) == 2, match

            def workers_ready() -> bool:
                health = httpx.get(f"{node.config.endpoint_url}/health").json()
                loaded = [worker for worker in health["workers"] if worker["package_loaded"] and worker["serving"]]
                return len(loaded) == 2

            wait_for(workers_ready, "the node to load the package for both workers")
            domain = Domain(chain_id=chain.deployment.chain_id, verifying_contract=chain.deployment.address("ExecutionReceipts"))
            started = Stack(chain, gateway, node, config_path, deal_id, match.worker_ids, cid, domain)
            yield started
            # A test may have replaced the node with a restarted one.
            node = started.node
        finally:
            if node is not None:
                node.stop()
            gateway.stop()


def _save_deployment(chain: LocalChain, directory: Path) -> Path:
    return save_deployment(chain, directory, "gateway-deployment.json")


def call_gateway(stack: Stack, function: str, payload: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/deals/{stack.deal_id}/functions/{function}",
        content=json.dumps(payload).encode(),
        timeout=30,
    )


def signed_body(stack: Stack, input_bytes: bytes, *, function: str = "reverse", deadline_offset: int = 60) -> dict[str, Any]:
    request = CallRequest.for_input(
        deal_id=stack.deal_id,
        function_name=function,
        input=input_bytes,
        nonce=int(time.time() * 1e6),
        deadline=int(time.time()) + deadline_offset,
    )
    signed = SignedCallRequest.sign(request, account_key(CALLER_INDEX), stack.domain)
    return {"request": signed.to_dict(), "input_b64": base64.b64encode(input_bytes).decode()}


def call_node(stack: Stack, worker_id: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.node_url}/workers/{worker_id}/call", json=body, timeout=30)


# ---------------------------------------------------------------- gateway calls


def test_gateway_call_returns_output_and_receipt(stack: Stack) -> None:
    response = call_gateway(stack, "reverse", {"text": "hello, world"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == {"text": "dlrow ,olleh"}
    assert body["receipt_verified"] is True
    assert body["worker_id"] in stack.worker_ids
    receipt = body["receipt"]
    assert receipt["output_hash"] == "0x" + keccak(b'{"text":"dlrow ,olleh"}').hex()
    assert receipt["app_cid"] == "0x" + cid_to_bytes(stack.package_cid).hex()
    assert receipt["signer"] in {stack.chain.session(index).address for index in SIGNER_INDICES}
    assert body["fuel_used"] > 0


def test_gateway_spreads_calls_over_workers(stack: Stack) -> None:
    served = {call_gateway(stack, "reverse", {"text": str(index)}).json()["worker_id"] for index in range(4)}

    assert served == set(stack.worker_ids)


def test_gateway_missing_function_lists_available(stack: Stack) -> None:
    response = call_gateway(stack, "shout", {"text": "hi"})

    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["kind"] == "function_not_found"
    assert "'shout'" in error["message"]
    assert "reverse" in error["message"]
    assert "word_count" in error["message"]
    assert set(error["available"]) == {"word_count", "reverse", "fail"}
    assert response.json()["receipt_verified"] is True


def test_gateway_guest_error_is_422_with_receipt(stack: Stack) -> None:
    response = call_gateway(stack, "fail", {})

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["kind"] == "guest_error"
    assert body["receipt"]["output_hash"] != "0x" + "00" * 32


def test_gateway_unknown_deal_is_404(stack: Stack) -> None:
    response = httpx.post(f"{stack.gateway_url}/deals/999/functions/reverse", content=b"{}")

    assert response.status_code == 404
    assert response.json()["error"]["kind"] == "deal_not_found"


def test_gateway_rejects_large_input(stack: Stack) -> None:
    response = call_gateway(stack, "reverse", {"text": "x" * (4 * 1024 * 1024)})

    assert response.status_code == 413
    assert response.json()["error"]["kind"] == "input_too_large"


def test_gateway_rejects_invalid_package(stack: Stack) -> None:
    response = httpx.post(f"{stack.gateway_url}/packages", content=b"not a tar file" * 100)

    assert response.status_code == 400
    assert "invalid package" in response.json()["error"]["message"]


def test_gateway_serves_package_and_deal(stack: Stack) -> None:
    package = httpx.get(f"{stack.gateway_url}/packages/{stack.package_cid}")
    missing = httpx.get(f"{stack.gateway_url}/packages/bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    deal = httpx.get(f"{stack.gateway_url}/deals/{stack.deal_id}").json()

    assert package.status_code == 200
    assert keccak(package.content) == keccak(_text_package())
    assert missing.status_code == 404
    assert deal["status"] == "ACTIVE"
    assert {worker["worker_id"] for worker in deal["workers"]} == set(stack.worker_ids)
    assert all(worker["endpoint"] == stack.node_url for worker in deal["workers"])


def test_node_publishes_endpoint(stack: Stack) -> None:
    provider = stack.chain.session(PROVIDER_INDEX)

    assert provider.market.provider_endpoint(provider.address) == stack.node_url


# ------------------------------------------------------------ node call checks


def test_node_rejects_replayed_request(stack: Stack) -> None:
    body = signed_body(stack, b'{"text": "once"}')
    first = call_node(stack, stack.worker_ids[0], body)
    second = call_node(stack, stack.worker_ids[0], body)

    assert first.status_code == 200, first.text
    assert CallReply.model_validate(first.json()).ok is True
    assert second.status_code == 409
    assert second.json()["error"]["kind"] == "replay"


def test_node_rejects_bad_signature(stack: Stack) -> None:
    body = signed_body(stack, b'{"text": "x"}')
    signature = bytearray.fromhex(body["request"]["signature"][2:])
    signature[5] ^= 0xFF
    body["request"]["signature"] = "0x" + signature.hex()

    response = call_node(stack, stack.worker_ids[0], body)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["kind"] == "invalid_signature"


def test_node_rejects_expired_request(stack: Stack) -> None:
    response = call_node(stack, stack.worker_ids[0], signed_body(stack, b'{"text": "x"}', deadline_offset=-5))

    assert response.status_code == 400
    assert response.json()["error"]["kind"] == "request_expired"


def test_node_rejects_unknown_worker(stack: Stack) -> None:
    response = call_node(stack, 999, signed_body(stack, b'{"text": "x"}'))

    assert response.status_code == 404
    assert response.json()["error"]["kind"] == "unknown_worker"


def test_node_rejects_input_hash_mismatch(stack: Stack) -> None:
    body = signed_body(stack, b'{"text": "signed"}')
    body["input_b64"] = base64.b64encode(b'{"text": "swapped"}').decode()

    response = call_node(stack, stack.worker_ids[0], body)

    assert response.status_code == 400
    assert response.json()["error"]["kind"] == "input_hash_mismatch"


# ------------------------------------------------------- proofs, claims, restart


def test_node_proves_epochs_and_claims(stack: Stack) -> None:
    deals = stack.chain.session(0).deals
    provider = stack.chain.session(PROVIDER_INDEX)
    worker_id = stack.worker_ids[0]
    assert call_gateway(stack, "word_count", {"text": "a b c"}).status_code == 200
    called_epoch = deals.current_epoch()
    assert stack.node.store is not None
    expected = stack.node.store.summary(worker_id, called_epoch)
    assert expected.calls >= 1

    stack.chain.advance_epochs(1)
    wait_for(
        lambda: deals.get_epoch_proof(worker_id, called_epoch).proven,
        f"the proof of worker {worker_id} epoch {called_epoch}",
    )
    proof = deals.proof_entry(worker_id, called_epoch)
    assert proof is not None
    assert proof.receipts_root == expected.root
    assert proof.calls == expected.calls
    assert proof.usage == expected.fuel_total

    balance_before = provider.usdc.balance_of(provider.address)
    for _ in range(PROOF_WINDOW + 1):
        stack.chain.advance_epochs(1)
        target = deals.current_epoch() - 1
        wait_for(lambda: deals.get_epoch_proof(worker_id, target).proven, f"the proof of epoch {target}")
    # Claims wait for the challenge window after the proof window.
    stack.chain.advance_epochs(CHALLENGE_WINDOW)

    claimed = wait_for(
        lambda: deals.get_worker(worker_id).claimed_until_epoch > called_epoch,
        f"the node to claim worker {worker_id}",
    )
    assert claimed
    wait_for(lambda: provider.usdc.balance_of(provider.address) > balance_before, "the node to withdraw earnings")
    wait_for(lambda: deals.earnings(provider.address, provider.usdc.address) == 0, "the node to withdraw every claim")


def test_node_restart_keeps_receipts_and_sequence(stack: Stack) -> None:
    worker_id = stack.worker_ids[0]
    old_request = signed_body(stack, b'{"text": "before restart"}')
    first = call_node(stack, worker_id, old_request)
    assert first.status_code == 200, first.text
    last_sequence = first.json()["receipt"]["sequence"]
    old_offer = stack.node.registration.offer_id if stack.node.registration else None

    stack.node.stop()
    restarted = ProviderNode(load_node_config(stack.node_config_path))
    restarted.start()
    stack.node = restarted

    assert restarted.registration is not None
    assert restarted.registration.created is False
    assert restarted.registration.offer_id == old_offer
    assert restarted.store is not None
    assert restarted.store.next_sequence(worker_id) == last_sequence + 1
    replay = call_node(stack, worker_id, old_request)
    assert replay.status_code == 409
    after = call_node(stack, worker_id, signed_body(stack, b'{"text": "after restart"}'))
    assert after.status_code == 200, after.text
    assert after.json()["receipt"]["sequence"] == last_sequence + 1


def test_run_node_stops_cleanly_on_sigterm(stack: Stack) -> None:
    stack.node.stop()
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
        "from cloudless.node import run_node\n"
        "run_node(sys.argv[1])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(stack.node_config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_for(lambda: _health_ok(stack.node_url), "the node subprocess to serve /health", timeout_seconds=30)
        call = call_gateway(stack, "reverse", {"text": "subprocess"})
        assert call.status_code == 200, call.text
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr[-2000:]
    assert "received SIGTERM, shutting down" in stderr
    assert "node loop stopped" in stderr
    assert "provider node 'e2e-provider' stopped" in stderr


def _health_ok(url: str) -> bool:
    return health_ok(url)
