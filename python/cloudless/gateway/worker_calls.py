"""One worker call: post the signed request to the worker's node and verify the reply and its receipt."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from cloudless.exceptions import ReceiptVerificationError
from cloudless.gateway.chain_view import ChainView, DealView, WorkerRoute
from cloudless.gateway.models import CallFailure, CallSuccess
from cloudless.gateway.replication import Replica
from cloudless.gateway.verify import ReceiptExpectation, verify_call_receipt
from cloudless.node.models import CallReply
from cloudless.receipts.eip712 import Domain
from cloudless.receipts.models import SignedCallRequest

__all__ = ["ERROR_KIND_STATUS", "SignedCall", "WorkerCallFailed", "WorkerCaller", "WorkerResult"]

# HTTP status the gateway returns for a call that failed inside the function or runtime.
ERROR_KIND_STATUS: dict[str, int] = {
    "function_not_found": 404,
    "invalid_input": 422,
    "guest_error": 422,
    "fuel_exhausted": 422,
    "memory_limit": 422,
    "timeout": 422,
    "trap": 422,
    "stack_overflow": 422,
    "invalid_output": 422,
    "output_too_large": 422,
}


@dataclass(frozen=True)
class SignedCall:
    """One call as every worker receives it: the request is signed once and sent unchanged."""

    deal: DealView
    function: str
    input_bytes: bytes
    request: SignedCallRequest
    digest: bytes
    payload: dict[str, Any]

    @property
    def deal_id(self) -> int:
        return self.deal.deal.deal_id

    @property
    def short_digest(self) -> str:
        return self.digest.hex()[:12]


@dataclass(frozen=True)
class WorkerResult:
    """The reply one worker's verified receipt would give: HTTP status and payload."""

    status: int
    payload: CallSuccess | CallFailure


class WorkerCallFailed(Exception):
    """One worker did not give a usable reply, so the dispatcher tries another one."""

    def __init__(self, message: str, *, bad_receipt: bool = False, busy: bool = False) -> None:
        super().__init__(message)
        self.bad_receipt = bad_receipt
        self.busy = busy  # the node rejected the call with 503 "busy", at its concurrent call limit


class WorkerCaller:
    """Sends signed calls to workers over `http` and verifies each receipt against the deal on chain. Thread-safe."""

    def __init__(self, view: ChainView, domain: Domain, http: httpx.Client) -> None:
        self._view = view
        self._domain = domain
        self._http = http

    def attempt(self, call: SignedCall, route: WorkerRoute) -> Replica[WorkerResult]:
        """Send the call to one worker and verify its receipt. Raises WorkerCallFailed."""
        deal = call.deal
        url = f"{route.endpoint}/workers/{route.worker_id}/call"
        try:
            response = self._http.post(url, json=call.payload)
        except httpx.RequestError as error:
            raise WorkerCallFailed(f"POST {url} failed: {type(error).__name__}: {error}") from error
        if response.status_code >= 500:
            # A busy node ran nothing, so the next worker gets the same signed request.
            raise WorkerCallFailed(
                f"POST {url} returned {response.status_code}: {response.text[:300]}",
                busy=response.status_code == 503 and _error_kind(response) == "busy",
            )
        try:
            body = response.json()
        except ValueError as error:
            raise WorkerCallFailed(f"POST {url} returned {response.status_code} with a body that is not JSON") from error
        if not isinstance(body, dict) or "receipt" not in body:
            # The node rejected the call before running it, so there is no receipt.
            raise WorkerCallFailed(f"POST {url} returned {response.status_code}: {json.dumps(body)[:300]}")
        try:
            reply = CallReply.model_validate(body)
            output = base64.b64decode(reply.output_b64, validate=True)
        except (ValidationError, binascii.Error) as error:
            raise WorkerCallFailed(f"POST {url} returned a malformed call reply: {error}", bad_receipt=True) from error

        self._verify(deal, route, reply, output, call.digest)
        return Replica(route, reply.receipt, self._result(deal, route, reply, output, call.function))

    def _verify(self, deal: DealView, route: WorkerRoute, reply: CallReply, output: bytes, digest: bytes) -> None:
        receipt = reply.receipt
        min_epoch = max(route.worker.joined_epoch, deal.current_epoch)
        # The cached epoch may be behind the chain, so read it again before rejecting a later epoch.
        max_epoch = deal.current_epoch
        if receipt.epoch > max_epoch:
            max_epoch = self._view.current_epoch(fresh=True)
        expected = ReceiptExpectation(
            request_hash=digest,
            worker_id=route.worker_id,
            app_cid=deal.deal.app_cid,
            signer=route.signer,
            min_epoch=min_epoch,
            max_epoch=max_epoch,
        )
        try:
            verify_call_receipt(receipt, output, expected, self._domain)
        except ReceiptVerificationError as error:
            raise WorkerCallFailed(f"rejected receipt: {error}", bad_receipt=True) from error

    def _result(
        self, deal: DealView, route: WorkerRoute, reply: CallReply, output: bytes, function: str
    ) -> WorkerResult:
        deal_id = deal.deal.deal_id
        receipt = reply.receipt
        if reply.ok:
            try:
                decoded = json.loads(output)
            except ValueError as error:
                raise WorkerCallFailed(f"worker output is not JSON: {error}", bad_receipt=True) from error
            success = CallSuccess(
                deal_id=deal_id,
                function=function,
                worker_id=route.worker_id,
                output=decoded,
                receipt=receipt,
                receipt_verified=True,
                fuel_used=receipt.fuel_used,
            )
            return WorkerResult(200, success)

        if reply.error is None:
            raise WorkerCallFailed("worker reply has ok=false but no error", bad_receipt=True)
        failure = CallFailure(
            error=reply.error,
            deal_id=deal_id,
            function=function,
            worker_id=route.worker_id,
            receipt=receipt,
            receipt_verified=True,
            fuel_used=receipt.fuel_used,
        )
        return WorkerResult(ERROR_KIND_STATUS.get(reply.error.kind, 422), failure)


def _error_kind(response: httpx.Response) -> str | None:
    """Return the `error.kind` of a JSON error reply, or None when the body has none."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("kind") if isinstance(error, dict) else None
