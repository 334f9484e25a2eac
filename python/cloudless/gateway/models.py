"""HTTP payloads of the gateway's API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloudless.node.models import ErrorInfo
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = [
    "CallFailure",
    "CallSuccess",
    "DealInfo",
    "DealWorkerInfo",
    "EvidenceItem",
    "EvidencePage",
    "GatewayHealth",
    "PackageInfo",
    "ReplicasDisagree",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageInfo(_Model):
    """Reply to `POST /packages`."""

    cid: str
    size: int
    name: str
    version: str
    functions: list[str]


class CallSuccess(_Model):
    """Reply to a call whose function returned output, with the receipts the gateway verified.

    `receipt` and `worker_id` are those of the first receipt in `receipts`.
    With replication k, `receipts` lists the receipts of distinct providers
    that back the output: k of them, or the majority after a disagreement.
    """

    deal_id: int
    function: str
    worker_id: int
    output: Any  # the function's JSON output, decoded
    receipt: SignedReceipt
    receipt_verified: bool
    fuel_used: int
    replication: int = 1
    receipts: list[SignedReceipt] = Field(default_factory=list)
    # Verified receipts with another output or fuel, which the majority outvoted.
    outvoted_receipts: list[SignedReceipt] = Field(default_factory=list)
    # Id of the disagreement in `GET /evidence`, when the receipts disagreed.
    evidence_id: int | None = None


class CallFailure(_Model):
    """Reply to a call that ran but failed in the function or runtime, with the verified receipts.

    The receipt fields mean what they mean in `CallSuccess`.
    """

    error: ErrorInfo
    deal_id: int
    function: str
    worker_id: int
    receipt: SignedReceipt
    receipt_verified: bool
    fuel_used: int
    replication: int = 1
    receipts: list[SignedReceipt] = Field(default_factory=list)
    outvoted_receipts: list[SignedReceipt] = Field(default_factory=list)
    evidence_id: int | None = None


class ReplicasDisagree(_Model):
    """502 reply to a replicated call whose verified receipts back no output by agreement or majority."""

    error: ErrorInfo
    deal_id: int
    function: str
    replication: int
    receipts: list[SignedReceipt]
    evidence_id: int | None  # None when the evidence log could not be written


class EvidenceItem(_Model):
    """One disagreement between replicas: the signed request, its input in base64 and every verified receipt."""

    id: int
    kind: Literal["disagreement"]
    deal_id: int
    function: str
    request: SignedCallRequest
    input: str
    receipts: list[SignedReceipt]


class EvidencePage(_Model):
    """Reply to `GET /evidence?since=N`: items with id >= N, and the `since` of the next request."""

    next: int
    items: list[EvidenceItem]


class DealWorkerInfo(_Model):
    worker_id: int
    provider: str
    peer_id: int
    signer: str
    price_per_cu_per_epoch: int  # payment-token base units
    cus: int
    joined_epoch: int
    left_epoch: int | None  # None while the worker is in the deal
    active: bool
    endpoint: str | None


class DealInfo(_Model):
    """Reply to `GET /deals/{deal_id}`."""

    deal_id: int
    status: str
    owner: str
    app_cid: str
    current_epoch: int
    end_epoch: int | None  # None while the deal is open-ended
    balance: int
    replication: int  # workers of distinct providers that run each call
    workers: list[DealWorkerInfo]


class GatewayHealth(_Model):
    status: str
    chain_id: int
    deal_manager: str
    caller: str
    epoch: int
