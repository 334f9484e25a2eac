"""The provider node's HTTP API: `GET /health` and `POST /workers/{worker_id}/call`."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloudless.exceptions import CallRejectedError
from cloudless.node.calls import BUSY_RETRY_AFTER_SECONDS, CallAdmission, CallService
from cloudless.node.models import CallBody, ErrorBody, ErrorInfo, NodeHealth

__all__ = ["busy_response", "create_node_app", "error_response"]

logger = logging.getLogger("cloudless.node")


def error_response(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """Build an `{"error": {"kind", "message"}}` reply."""
    body = ErrorBody(error=ErrorInfo(kind=kind, message=message))
    return JSONResponse(status_code=status, content=body.model_dump(mode="json", exclude_none=True), headers=headers)


def busy_response(message: str) -> JSONResponse:
    """Build the 503 "busy" reply, with a Retry-After header in seconds."""
    return error_response(503, "busy", message, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def create_node_app(
    calls: CallService, health: Callable[[], NodeHealth], *, max_concurrent_calls: int
) -> FastAPI:
    """Build the FastAPI app.

    At most `max_concurrent_calls` calls run at once, each in a worker thread
    of its own. The event loop rejects a call past that limit with 503
    "busy" before it takes a thread, so excess calls never queue.
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
