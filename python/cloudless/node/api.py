"""The provider node's HTTP API.

- `GET /health`: the node, its peers and workers.
- `POST /workers/{worker_id}/call`: run one signed call.
- `GET /workers/{worker_id}/epochs/{epoch}/receipts`: an epoch's proof totals
  and every receipt with its request, input and Merkle opening, for verifiers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloudless.exceptions import CallRejectedError
from cloudless.node.calls import BUSY_RETRY_AFTER_SECONDS, CallAdmission, CallService
from cloudless.node.epoch_records import EpochPrunedError, EpochRecords
from cloudless.node.models import CallBody, ErrorBody, ErrorInfo, NodeHealth
from cloudless.node.workers import TrackedWorker

__all__ = ["busy_response", "create_node_app", "error_response"]

logger = logging.getLogger("cloudless.node")

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,77}")


class KnownWorkers(Protocol):
    """The part of WorkerTracker that the receipts endpoint reads."""

    def get(self, worker_id: int) -> TrackedWorker | None: ...


def _parse_id(name: str, text: str, bits: int) -> int:
    """Parse a decimal path segment into an unsigned integer of `bits` bits, or raise ValueError naming it."""
    if _DECIMAL.fullmatch(text) is None or int(text) >= 2**bits:
        raise ValueError(f"{name} {text!r} is not a decimal integer from 0 to 2**{bits} - 1")
    return int(text)


def error_response(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """Build an `{"error": {"kind", "message"}}` reply."""
    body = ErrorBody(error=ErrorInfo(kind=kind, message=message))
    return JSONResponse(status_code=status, content=body.model_dump(mode="json", exclude_none=True), headers=headers)


def busy_response(message: str) -> JSONResponse:
    """Build the 503 "busy" reply, with a Retry-After header in seconds."""
    return error_response(503, "busy", message, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def create_node_app(
    calls: CallService,
    health: Callable[[], NodeHealth],
    *,
    max_concurrent_calls: int,
    records: EpochRecords | None = None,
    workers: KnownWorkers | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    At most `max_concurrent_calls` calls run at once, each in a worker thread
    of its own. The event loop rejects a call past that limit with 503
    "busy" before it takes a thread, so excess calls never queue. The
    receipts endpoint exists when `records` and `workers` are given.
    """
    app = FastAPI(title="Cloudless provider node", docs_url=None, redoc_url=None, openapi_url=None)
    admission = CallAdmission(max_concurrent_calls)
    app.state.admission = admission
    # Sized to the admission limit, so an admitted call never waits for a thread.
    thread_limiter: list[anyio.CapacityLimiter] = []

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        logger.info("rejected %s %s: invalid request body: %s", request.method, request.url.path, problems)
        return error_response(400, "invalid_request", f"invalid request body: {problems}")

    @app.get("/health")
    def get_health() -> JSONResponse:
        return JSONResponse(content=health().model_dump(mode="json"))

    @app.post("/workers/{worker_id}/call")
    async def call_worker(worker_id: int, body: CallBody) -> JSONResponse:
        if not admission.try_enter():
            message = admission.busy_message()
            logger.info(
                "rejected call deal %d worker %d function %s: 503 busy: %s (%d busy rejections so far)",
                body.request.deal_id,
                worker_id,
                body.request.function_name,
                message,
                admission.rejected,
            )
            return busy_response(message)
        try:
            if not thread_limiter:
                # A CapacityLimiter must be created inside the event loop.
                thread_limiter.append(anyio.CapacityLimiter(max_concurrent_calls))
            return await anyio.to_thread.run_sync(run_call, worker_id, body, limiter=thread_limiter[0])
        finally:
            admission.leave()

    if records is not None and workers is not None:

        @app.get("/workers/{worker_id}/epochs/{epoch}/receipts")
        def get_epoch_receipts(worker_id: str, epoch: str) -> JSONResponse:
            return epoch_receipts_response(records, workers, worker_id, epoch)

    def run_call(worker_id: int, body: CallBody) -> JSONResponse:
        try:
            outcome = calls.handle(worker_id, body)
        except CallRejectedError as error:
            logger.info(
                "rejected call deal %d worker %d function %s: %d %s: %s",
                body.request.deal_id,
                worker_id,
                body.request.function_name,
                error.status,
                error.kind,
                error,
            )
            return error_response(error.status, error.kind, str(error))
        except Exception as error:  # noqa: BLE001 - reply with JSON and keep serving
            logger.exception(
                "call deal %d worker %d function %s failed: %s",
                body.request.deal_id,
                worker_id,
                body.request.function_name,
                error,
            )
            return error_response(500, "internal_error", f"the node failed to run the call: {error}")
        return JSONResponse(status_code=outcome.status, content=outcome.reply.model_dump(mode="json"))

    return app


def epoch_receipts_response(records: EpochRecords, workers: KnownWorkers, worker_text: str, epoch_text: str) -> JSONResponse:
    """Reply to `GET /workers/{worker_id}/epochs/{epoch}/receipts`: 200, 400, 404 unknown_worker or 410 pruned."""
    try:
        worker_id = _parse_id("worker id", worker_text, 256)
        epoch = _parse_id("epoch", epoch_text, 64)
    except ValueError as error:
        return error_response(400, "invalid_request", str(error))
    if workers.get(worker_id) is None:
        return error_response(404, "unknown_worker", f"worker {worker_id} is not on any peer of this node")
    try:
        record = records.record(worker_id, epoch)
    except EpochPrunedError as error:
        return error_response(410, "pruned", f"{error}; the node keeps receipts only until then")
    return JSONResponse(content=record.to_json())
