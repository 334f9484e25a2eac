"""HTTP payloads of the gateway's API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from cloudless.node.models import ErrorInfo
from cloudless.receipts.models import SignedReceipt

__all__ = [
    "CallFailure",
    "CallSuccess",
    "DealInfo",
    "DealWorkerInfo",
    "GatewayHealth",
    "PackageInfo",
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
    """Reply to a call whose function returned output, with the receipt the gateway verified."""

    deal_id: int
    function: str
    worker_id: int
    output: Any  # the function's JSON output, decoded
    receipt: SignedReceipt
    receipt_verified: bool
    fuel_used: int


class CallFailure(_Model):
    """Reply to a call that ran on a worker but failed in the function or runtime, with the verified receipt."""

    error: ErrorInfo
    deal_id: int
    function: str
    worker_id: int
    receipt: SignedReceipt
    receipt_verified: bool
    fuel_used: int


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
    workers: list[DealWorkerInfo]


class GatewayHealth(_Model):
    status: str
    chain_id: int
    deal_manager: str
    caller: str
    epoch: int
