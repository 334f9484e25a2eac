"""HTTP payloads of the provider node's API. The gateway parses node replies with the same models."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = [
    "CallBody",
    "CallReply",
    "ErrorBody",
    "ErrorInfo",
    "NodeHealth",
    "PeerHealth",
    "WorkerHealth",
    "error_envelope",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(_Model):
    """A machine-readable error kind (for example "fuel_exhausted") and a message for people."""

    kind: str
    message: str
    # Functions that the package declares, set when `kind` is "function_not_found".
    available: list[str] | None = None


class ErrorBody(_Model):
    """Body of every error reply that carries no receipt."""

    error: ErrorInfo


class CallBody(_Model):
    """`POST /workers/{worker_id}/call`: a signed call request and its input bytes in base64."""

    request: SignedCallRequest
    input_b64: str


class CallReply(_Model):
    """Result of a call that ran: the output (or error envelope) bytes and the signed receipt over them.

    `output_b64` contains exactly the bytes whose keccak256 is the receipt's
    `output_hash`: the function output when `ok`, else the error envelope
    that `error_envelope` builds.
    """

    ok: bool
    output_b64: str
    receipt: SignedReceipt
    error: ErrorInfo | None = None
    stdout_b64: str = ""
    wall_ms: float = Field(ge=0)


class PeerHealth(_Model):
    peer_id: int
    signer: str
    cus: int


class WorkerHealth(_Model):
    worker_id: int
    deal_id: int
    peer_id: int
    app_cid: str
    serving: bool  # takes calls now
    package_loaded: bool
    next_sequence: int


class NodeHealth(_Model):
    """`GET /health`: who the node is, its peers and workers, and the chain epoch it last read."""

    status: str
    provider: str
    offer_id: int
    chain_id: int
    epoch: int | None
    peers: list[PeerHealth]
    workers: list[WorkerHealth]


def error_envelope(kind: str, message: str) -> bytes:
    """Return the canonical JSON bytes `{"error":{"kind":...,"message":...}}` that a failed call's receipt covers.

    Canonical here means sorted keys, no spaces and UTF-8 without escapes,
    so a verifier can rebuild the bytes from kind and message.
    """
    envelope = {"error": {"kind": kind, "message": message}}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
