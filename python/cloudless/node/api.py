"""The provider node's HTTP API: `GET /health` and `POST /workers/{worker_id}/call`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloudless.exceptions import CallRejectedError
from cloudless.node.calls import CallService
from cloudless.node.models import CallBody, ErrorBody, ErrorInfo, NodeHealth

__all__ = ["create_node_app", "error_response"]

logger = logging.getLogger("cloudless.node")


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    """Build an `{"error": {"kind", "message"}}` reply."""
    body = ErrorBody(error=ErrorInfo(kind=kind, message=message))
    return JSONResponse(status_code=status, content=body.model_dump(mode="json", exclude_none=True))


def create_node_app(calls: CallService, health: Callable[[], NodeHealth]) -> FastAPI:
    """Build the FastAPI app. Handlers are plain functions, so FastAPI runs them in its thread pool."""
    app = FastAPI(title="Cloudless provider node", docs_url=None, redoc_url=None, openapi_url=None)

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
    def call_worker(worker_id: int, body: CallBody) -> JSONResponse:
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
