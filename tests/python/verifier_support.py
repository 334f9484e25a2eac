"""Signed calls, served epochs and a loopback node and gateway for the verifier tests.

`build_epoch` signs real requests and receipts and builds the real Merkle
tree, so the checks run on what an honest node would serve. `StubNode` is a
real HTTP server on 127.0.0.1 that serves whatever JSON a test gives it at
the node's receipts path and the gateway's evidence and package paths: it
plays a node that cheats in one chosen way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from eth_account import Account
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from cloudless.chain.keys import anvil_account_key
from cloudless.chain.types import EpochProofEntry
from cloudless.node.http_server import ServerThread
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.merkle import ReceiptMerkleTree
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.verifier.models import ServedEpoch

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "22" * 20)
PEER_KEY = anvil_account_key(10)
PEER = Account.from_key(PEER_KEY).address
OTHER_KEY = anvil_account_key(11)
CALLER_KEY = anvil_account_key(8)
WORKER_ID = 4
DEAL_ID = 2
EPOCH = 7
EPOCH_START = 1_700_000_000
APP_CID = b"\x01\x55\x12\x20" + bytes(range(32))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Call:
    """One call as a node stores it: the signed request, the input and the signed receipt."""

    request: SignedCallRequest
    input: bytes
    receipt: SignedReceipt


def sign_call(
    nonce: int,
    *,
    sequence: int,
    fuel: int = 1000,
    deal_id: int = DEAL_ID,
    worker_id: int = WORKER_ID,
    epoch: int = EPOCH,
    deadline: int = EPOCH_START + 3600,
    input_bytes: bytes = b'{"text":"hi"}',
    output: bytes = b'{"ok":true}',
    caller_key: str = CALLER_KEY,
    peer_key: str = PEER_KEY,
    domain: Domain = DOMAIN,
    function: str = "word_count",
    app_cid: bytes = APP_CID,
) -> Call:
    request = SignedCallRequest.sign(
        CallRequest.for_input(deal_id=deal_id, function_name=function, input=input_bytes, nonce=nonce, deadline=deadline),
        caller_key,
        domain,
    )
    receipt = SignedReceipt.sign(
        Receipt(
            worker_id=worker_id,
            request_hash=request.digest(domain),
            app_cid=app_cid,
            output_hash=hash_output(output),
            fuel_used=fuel,
            epoch=epoch,
            sequence=sequence,
        ),
        peer_key,
        domain,
    )
    return Call(request=request, input=input_bytes, receipt=receipt)


def resign_receipt(call: Call, key: str = PEER_KEY, domain: Domain = DOMAIN, **changes: Any) -> Call:
    """Return the call with receipt fields changed and the receipt signed again by `key`."""
    receipt = replace(call.receipt.to_receipt(), **changes)
    return replace(call, receipt=SignedReceipt.sign(receipt, key, domain))


def high_s(signature: bytes) -> bytes:
    """Return the same signature in high-s form, which OpenZeppelin's ECDSA rejects."""
    s = int.from_bytes(signature[32:64], "big")
    v = 28 if signature[64] == 27 else 27
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v])


def honest_calls(count: int, *, fuel: Sequence[int] | None = None, domain: Domain = DOMAIN, **options: Any) -> list[Call]:
    return [
        sign_call(nonce=100 + i, sequence=i, fuel=(fuel[i] if fuel else 1000 + i), domain=domain, **options)
        for i in range(count)
    ]


def build_epoch(
    calls: Sequence[Call],
    *,
    committed_fuel: Sequence[int] | None = None,
    worker_id: int = WORKER_ID,
    epoch: int = EPOCH,
    domain: Domain = DOMAIN,
) -> tuple[EpochProofEntry, dict[str, Any]]:
    """Return the proof entry and the served JSON of an epoch, as an honest node would build them.

    `committed_fuel` replaces each receipt's fuel in the tree's running
    totals, which is how a node that inflates usage would commit.
    """
    fuels = list(committed_fuel) if committed_fuel is not None else [call.receipt.fuel_used for call in calls]
    tree = ReceiptMerkleTree([(call.receipt.digest(domain), fuel) for call, fuel in zip(calls, fuels)])
    entry = EpochProofEntry(worker_id=worker_id, epoch=epoch, receipts_root=tree.root, calls=len(calls), usage=tree.total_fuel)
    served = {
        "worker_id": worker_id,
        "epoch": epoch,
        "root": "0x" + tree.root.hex(),
        "calls": len(calls),
        "usage": tree.total_fuel,
        "receipts": [
            {
                "index": index,
                "receipt": call.receipt.to_dict(),
                "request": call.request.to_dict(),
                "input": base64.b64encode(call.input).decode("ascii"),
                "opening": tree.opening(index).to_json(),
            }
            for index, call in enumerate(calls)
        ],
    }
    return entry, served


def parse_served(served: dict[str, Any]) -> ServedEpoch:
    """Parse served JSON the way the verifier reads it from the wire."""
    return ServedEpoch.model_validate_json(json.dumps(served))


class StubNode:
    """A loopback HTTP server with a node's receipts path and a gateway's evidence and package paths.

    `epochs[(worker, epoch)]` is the JSON served for that epoch, or an HTTP
    status code to reply with; a missing key replies 404 "unknown_worker".
    """

    def __init__(self) -> None:
        self.epochs: dict[tuple[int, int], dict[str, Any] | int] = {}
        self.evidence: list[dict[str, Any]] = []
        self.packages: dict[str, bytes] = {}
        self.requests: list[str] = []
        app = FastAPI()

        @app.get("/workers/{worker_id}/epochs/{epoch}/receipts")
        def receipts(worker_id: int, epoch: int) -> Response:
            self.requests.append(f"receipts {worker_id} {epoch}")
            served = self.epochs.get((worker_id, epoch))
            if served is None:
                return JSONResponse({"error": {"kind": "unknown_worker", "message": "no such worker"}}, status_code=404)
            if isinstance(served, int):
                return JSONResponse({"error": {"kind": "unavailable", "message": "down"}}, status_code=served)
            return JSONResponse(served)

        @app.get("/evidence")
        def evidence(since: int = 0) -> Response:
            items = [item for item in self.evidence if item["id"] >= since]
            next_id = items[-1]["id"] + 1 if items else len(self.evidence)
            return JSONResponse({"next": next_id, "items": items})

        @app.get("/packages/{cid}")
        def package(cid: str) -> Response:
            if cid not in self.packages:
                return JSONResponse({"error": {"kind": "not_found", "message": cid}}, status_code=404)
            return Response(self.packages[cid], media_type="application/octet-stream")

        self.server = ServerThread(app, "127.0.0.1", 0, logger_name="tests.stub_node")

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def stub_node() -> Iterator[StubNode]:
    node = StubNode()
    node.server.start()
    try:
        yield node
    finally:
        node.server.stop()
