"""The gateway's HTTP API: packages, deals, calls, the evidence feed and health."""

from __future__ import annotations

import logging
from collections.abc import Callable

import requests
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from web3.exceptions import Web3Exception

from cloudless.chain.types import OPEN_ENDED_EPOCH
from cloudless.cid import cid_from_bytes
from cloudless.exceptions import CallRejectedError, ChainError, PackageError
from cloudless.formatting import format_count
from cloudless.gateway.dispatch import CallDispatcher
from cloudless.gateway.evidence import EvidenceLog
from cloudless.gateway.models import DealInfo, DealWorkerInfo, GatewayHealth, PackageInfo
from cloudless.gateway.packages import PackageStore
from cloudless.node.api import busy_response, error_response
from cloudless.runtime.limits import MAX_PACKAGE_BYTES, HostLimits

__all__ = ["MAX_INPUT_BYTES", "create_gateway_app"]

logger = logging.getLogger("cloudless.gateway")

# Largest call input the gateway accepts, in bytes: the default maximum of the nodes' Wasm runtime.
MAX_INPUT_BYTES = HostLimits().max_input_bytes


# Errors of a chain read: a revert or bad state (ChainError), or a failed request to the RPC node.
_CHAIN_FAILURES = (ChainError, Web3Exception, requests.RequestException)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the request body, raising _BodyTooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_since(text: str) -> int | None:
    """Return the `since` query value as an int, or None when it is not a whole number of 0 or more."""
    text = text.strip()
    return int(text) if text.isdigit() and text.isascii() else None


def create_gateway_app(
    dispatcher: CallDispatcher,
    packages: PackageStore,
    health: Callable[[], GatewayHealth],
    evidence: EvidenceLog,
) -> FastAPI:
    """Build the FastAPI app; chain reads, node calls and evidence file reads run in the thread pool."""
    app = FastAPI(title="Cloudless gateway", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def get_health() -> JSONResponse:
        return JSONResponse(content=(await run_in_threadpool(health)).model_dump(mode="json"))

    @app.post("/packages")
    async def post_package(request: Request) -> JSONResponse:
        try:
            data = await _read_body(request, MAX_PACKAGE_BYTES)
        except _BodyTooLarge:
            message = f"package is larger than the maximum of {MAX_PACKAGE_BYTES} bytes"
            logger.info("rejected package upload: %s", message)
            return error_response(413, "package_too_large", message)
        try:
            package = await run_in_threadpool(packages.put, data)
        except PackageError as error:
            logger.info("rejected package upload of %d bytes: %s", len(data), error)
            return error_response(400, "invalid_package", f"invalid package: {error}")
        info = PackageInfo(
            cid=package.cid,
            size=len(data),
            name=package.manifest.name,
            version=package.manifest.version,
            functions=list(package.function_names),
        )
        return JSONResponse(content=info.model_dump(mode="json"))

    @app.get("/packages/{cid}")
    async def get_package(cid: str) -> Response:
        path = packages.path(cid)
        if path is None:
            logger.info("package %s not found", cid)
            return error_response(404, "package_not_found", f"package {cid} is not stored on this gateway; upload it with POST /packages")
        logger.info("serving package %s", cid)
        return FileResponse(path, media_type="application/x-tar")

    @app.get("/deals/{deal_id}")
    async def get_deal(deal_id: int) -> JSONResponse:
        try:
            view = await run_in_threadpool(dispatcher.load_deal, deal_id)
        except CallRejectedError as error:
            logger.info("deal %d lookup failed: %d %s: %s", deal_id, error.status, error.kind, error)
            return error_response(error.status, error.kind, str(error))
        except _CHAIN_FAILURES as error:
            logger.warning("deal %d lookup failed reading the chain: %s", deal_id, error)
            return error_response(503, "chain_unavailable", f"reading deal {deal_id} from the chain failed: {error}")
        logger.info("serving deal %d: %s with %s", deal_id, view.status.name, format_count(len(view.workers), "worker"))
        deal = view.deal
        workers = [
            DealWorkerInfo(
                worker_id=route.worker_id,
                provider=route.worker.provider,
                peer_id=route.worker.peer_id,
                signer=route.signer,
                price_per_cu_per_epoch=route.worker.price_per_cu_per_epoch,
                cus=route.worker.cus,
                joined_epoch=route.worker.joined_epoch,
                left_epoch=None if route.worker.left_epoch == OPEN_ENDED_EPOCH else route.worker.left_epoch,
                active=route.worker.active,
                endpoint=route.endpoint,
            )
            for route in view.workers
        ]
        info = DealInfo(
            deal_id=deal_id,
            status=view.status.name,
            owner=deal.owner,
            app_cid=cid_from_bytes(deal.app_cid),
            current_epoch=view.current_epoch,
            end_epoch=None if deal.end_epoch == OPEN_ENDED_EPOCH else deal.end_epoch,
            balance=deal.balance,
            replication=view.replication,
            workers=workers,
        )
        return JSONResponse(content=info.model_dump(mode="json"))

    @app.post("/deals/{deal_id}/functions/{name}")
    async def call_function(deal_id: int, name: str, request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, MAX_INPUT_BYTES)
        except _BodyTooLarge:
            message = f"call input is larger than the maximum of {MAX_INPUT_BYTES} bytes"
            logger.info("rejected call deal %d function %s: %s", deal_id, name, message)
            return error_response(413, "input_too_large", message)
        try:
            reply = await run_in_threadpool(dispatcher.call, deal_id, name, body)
        except CallRejectedError as error:
            logger.info("rejected call deal %d function %s: %d %s: %s", deal_id, name, error.status, error.kind, error)
            if error.kind == "busy":
                return busy_response(str(error))
            return error_response(error.status, error.kind, str(error))
        except _CHAIN_FAILURES as error:
            logger.warning("call deal %d function %s failed reading the chain: %s", deal_id, name, error)
            return error_response(503, "chain_unavailable", f"reading deal {deal_id} from the chain failed: {error}")
        return JSONResponse(status_code=reply.status, content=reply.body)

    @app.get("/evidence")
    async def get_evidence(request: Request) -> JSONResponse:
        raw = request.query_params.get("since", "0")
        since = _parse_since(raw)
        if since is None:
            logger.info("rejected evidence request: since=%r", raw[:40])
            return error_response(
                400, "invalid_since", f"invalid since {raw[:40]!r}: pass the id to start from, 0 or more, e.g. /evidence?since=0"
            )
        page = await run_in_threadpool(evidence.page, since)
        logger.debug("serving %d evidence items from id %d", len(page.items), since)
        return JSONResponse(content=page.model_dump(mode="json"))

    return app
