"""Sending a call to a deal's workers: sign the request, pick workers round-robin, fail over, verify."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from pydantic import ValidationError

from cloudless.chain.types import DealStatus
from cloudless.exceptions import CallRejectedError, ReceiptVerificationError
from cloudless.gateway.chain_view import ChainView, DealView, WorkerRoute
from cloudless.gateway.models import CallFailure, CallSuccess
from cloudless.gateway.verify import ReceiptExpectation, verify_call_receipt
from cloudless.node.models import CallReply
from cloudless.receipts.eip712 import CallRequest, Domain
from cloudless.receipts.models import SignedCallRequest

__all__ = ["CallDispatcher", "GatewayReply", "ERROR_KIND_STATUS"]

logger = logging.getLogger("cloudless.gateway")

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
class GatewayReply:
    status: int
    body: dict[str, Any]


class _WorkerFailed(Exception):
    """One worker did not give a usable reply, so the dispatcher tries the next one."""

    def __init__(self, message: str, *, bad_receipt: bool = False, busy: bool = False) -> None:
        super().__init__(message)
        self.bad_receipt = bad_receipt
        self.busy = busy  # the node rejected the call with 503 "busy", at its concurrent call limit


class CallDispatcher:
    """Runs calls through the workers of a deal. Thread-safe: one instance serves every request."""

    def __init__(
        self,
        view: ChainView,
        domain: Domain,
        caller_key: str,
        http: httpx.Client,
        *,
        deadline_seconds: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._view = view
        self._domain = domain
        self._caller_key = caller_key
        self.caller = Account.from_key(caller_key).address
        self._http = http
        self._deadline_seconds = deadline_seconds
        self._now = now
        self._counters: dict[int, itertools.count[int]] = {}
        self._counters_lock = threading.Lock()

    def load_deal(self, deal_id: int) -> DealView:
        """Return the deal, raising CallRejectedError (404) when it does not exist."""
        if not self._view.deal_exists(deal_id):
            raise CallRejectedError(f"deal {deal_id} does not exist", status=404, kind="deal_not_found")
        return self._view.deal(deal_id)

    def call(self, deal_id: int, function: str, input_bytes: bytes) -> GatewayReply:
        """Run `function` of deal `deal_id` on `input_bytes`. Raises CallRejectedError when no worker could run it."""
        deal = self.load_deal(deal_id)
        if deal.status == DealStatus.ENDED:
            raise CallRejectedError(f"deal {deal_id} has status ENDED and takes no calls", status=409, kind="deal_ended")
        routes = deal.serving_workers()
        if not routes:
            raise CallRejectedError(
                f"deal {deal_id} (status {deal.status.name}) has no active worker with a known endpoint; "
                "wait for the matcher to place one",
                status=409,
                kind="no_active_worker",
            )

        request = CallRequest.for_input(
            deal_id=deal_id,
            function_name=function,
            input=input_bytes,
            nonce=secrets.randbits(128),
            deadline=int(self._now()) + self._deadline_seconds,
        )
        signed = SignedCallRequest.sign(request, self._caller_key, self._domain)
        digest = signed.digest(self._domain)
        payload = {"request": signed.to_dict(), "input_b64": base64.b64encode(input_bytes).decode("ascii")}

        failures: list[str] = []
        bad_receipts = 0
        busy_workers = 0
        for attempt, route in enumerate(self._rotation(deal_id, routes)):
            if attempt:
                logger.info(
                    "retrying deal %d request %s on worker %d (attempt %d)", deal_id, digest.hex()[:12], route.worker_id, attempt + 1
                )
            try:
                reply = self._send(deal, route, payload, digest, function)
            except _WorkerFailed as failure:
                logger.warning("deal %d worker %d request %s failed: %s", deal_id, route.worker_id, digest.hex()[:12], failure)
                failures.append(f"worker {route.worker_id}: {failure}")
                bad_receipts += failure.bad_receipt
                busy_workers += failure.busy
                continue
            logger.info(
                "call deal %d worker %d request %s function %s: status %d",
                deal_id,
                route.worker_id,
                digest.hex()[:12],
                function,
                reply.status,
            )
            return reply

        if busy_workers == len(failures):
            raise CallRejectedError(
                f"all {busy_workers} workers of deal {deal_id} are busy: " + "; ".join(failures),
                status=503,
                kind="busy",
            )
        kind = "invalid_receipt" if bad_receipts else "workers_unavailable"
        raise CallRejectedError(
            f"no worker of deal {deal_id} returned a valid reply: " + "; ".join(failures), status=502, kind=kind
        )

    def _rotation(self, deal_id: int, routes: list[WorkerRoute]) -> list[WorkerRoute]:
        with self._counters_lock:
            counter = self._counters.setdefault(deal_id, itertools.count())
            start = next(counter) % len(routes)
        return routes[start:] + routes[:start]

    def _send(
        self, deal: DealView, route: WorkerRoute, payload: dict[str, Any], digest: bytes, function: str
    ) -> GatewayReply:
        url = f"{route.endpoint}/workers/{route.worker_id}/call"
        try:
            response = self._http.post(url, json=payload)
        except httpx.TransportError as error:
            raise _WorkerFailed(f"POST {url} failed: {type(error).__name__}: {error}") from error
        if response.status_code >= 500:
            # A busy node ran nothing, so the next worker gets the same signed request.
            raise _WorkerFailed(
                f"POST {url} returned {response.status_code}: {response.text[:300]}",
                busy=response.status_code == 503 and _error_kind(response) == "busy",
            )
        try:
            body = response.json()
        except ValueError as error:
            raise _WorkerFailed(f"POST {url} returned {response.status_code} with a body that is not JSON") from error
        if not isinstance(body, dict) or "receipt" not in body:
            # The node rejected the call before running it, so there is no receipt.
            raise _WorkerFailed(f"POST {url} returned {response.status_code}: {json.dumps(body)[:300]}")
        try:
            reply = CallReply.model_validate(body)
            output = base64.b64decode(reply.output_b64, validate=True)
        except (ValidationError, binascii.Error) as error:
            raise _WorkerFailed(f"POST {url} returned a malformed call reply: {error}", bad_receipt=True) from error

        self._verify(deal, route, reply, output, digest)
        return self._result(deal, route, reply, output, function)

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
            raise _WorkerFailed(f"rejected receipt: {error}", bad_receipt=True) from error

    def _result(
        self, deal: DealView, route: WorkerRoute, reply: CallReply, output: bytes, function: str
    ) -> GatewayReply:
        deal_id = deal.deal.deal_id
        receipt = reply.receipt
        if reply.ok:
            try:
                decoded = json.loads(output)
            except ValueError as error:
                raise _WorkerFailed(f"worker output is not JSON: {error}", bad_receipt=True) from error
            success = CallSuccess(
                deal_id=deal_id,
                function=function,
                worker_id=route.worker_id,
                output=decoded,
                receipt=receipt,
                receipt_verified=True,
                fuel_used=receipt.fuel_used,
            )
            return GatewayReply(200, success.model_dump(mode="json"))

        if reply.error is None:
            raise _WorkerFailed("worker reply has ok=false but no error", bad_receipt=True)
        failure = CallFailure(
            error=reply.error,
            deal_id=deal_id,
            function=function,
            worker_id=route.worker_id,
            receipt=receipt,
            receipt_verified=True,
            fuel_used=receipt.fuel_used,
        )
        status = ERROR_KIND_STATUS.get(reply.error.kind, 422)
        return GatewayReply(status, failure.model_dump(mode="json", exclude_none=True))


def _error_kind(response: httpx.Response) -> str | None:
    """Return the `error.kind` of a JSON error reply, or None when the body has none."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("kind") if isinstance(error, dict) else None
