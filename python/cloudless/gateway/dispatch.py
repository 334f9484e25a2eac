"""Sending a call to a deal's workers: sign the request, pick workers, fail over, verify, replicate.

A deal with replication 1 runs each call on one worker, picked round-robin,
and fails over to the next worker. A deal with replication k > 1 sends the
same signed request to k workers of different providers at once, picked
by `ReplicationPlan`, and returns a result only when their receipts agree.
"""

from __future__ import annotations

import base64
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx
from eth_account import Account

from cloudless.chain.types import DealStatus
from cloudless.exceptions import CallRejectedError
from cloudless.gateway.chain_view import ChainView, DealView, WorkerRoute
from cloudless.gateway.evidence import EvidenceLog
from cloudless.gateway.replies import GatewayReply, replication_unavailable, result_reply, settle_verdict
from cloudless.gateway.replication import Replica, ReplicationPlan, WorkerFailure, serving_providers
from cloudless.gateway.worker_calls import (
    ERROR_KIND_STATUS,
    SignedCall,
    WorkerCallFailed,
    WorkerCaller,
    WorkerResult,
)
from cloudless.receipts.eip712 import CallRequest, Domain
from cloudless.receipts.models import SignedCallRequest

__all__ = ["CallDispatcher", "GatewayReply", "ERROR_KIND_STATUS"]

logger = logging.getLogger("cloudless.gateway")

# Requests to workers in flight at once across all replicated calls; more wait in the pool's queue.
DEFAULT_MAX_PARALLEL_REQUESTS = 32


class CallDispatcher:
    """Runs calls through the workers of a deal. Thread-safe: one instance serves every request.

    Disagreements between replicas go to `evidence`, an in-memory
    `EvidenceLog` unless one is passed. Call `close` to stop the thread pool
    that sends replicated requests.
    """

    def __init__(
        self,
        view: ChainView,
        domain: Domain,
        caller_key: str,
        http: httpx.Client,
        *,
        deadline_seconds: int,
        now: Callable[[], float] = time.time,
        evidence: EvidenceLog | None = None,
        max_parallel_requests: int = DEFAULT_MAX_PARALLEL_REQUESTS,
    ) -> None:
        self._view = view
        self._domain = domain
        self._caller_key = caller_key
        self.caller = Account.from_key(caller_key).address
        self._workers = WorkerCaller(view, domain, http)
        self._deadline_seconds = deadline_seconds
        self._now = now
        self._counters: dict[int, itertools.count[int]] = {}
        self._counters_lock = threading.Lock()
        self.evidence = evidence if evidence is not None else EvidenceLog()
        self._pool = ThreadPoolExecutor(max_workers=max_parallel_requests, thread_name_prefix="gateway-replica")

    def close(self) -> None:
        """Stop the thread pool; requests still in flight finish, queued ones are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)

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
        if not self._view.caller_allowed(deal_id, self.caller):
            raise CallRejectedError(
                f"the gateway's caller key {self.caller} is not an allowed caller of deal {deal_id}, so nodes "
                f"reject its requests; the deal's owner adds it with `cloudless deal callers {deal_id} --allow {self.caller}`",
                status=403,
                kind="caller_not_allowed",
            )
        routes = deal.serving_workers()
        if not routes:
            raise CallRejectedError(
                f"deal {deal_id} (status {deal.status.name}) has no active worker with a known endpoint; "
                "wait for the matcher to place one",
                status=409,
                kind="no_active_worker",
            )
        if deal.replication > 1:
            providers = serving_providers(routes)
            if len(providers) < deal.replication:
                raise replication_unavailable(deal_id, deal.replication, providers)

        call = self._sign(deal, function, input_bytes)
        if deal.replication > 1:
            return self._call_replicated(call, routes)
        return self._call_one(call, routes)

    def _sign(self, deal: DealView, function: str, input_bytes: bytes) -> SignedCall:
        request = CallRequest.for_input(
            deal_id=deal.deal.deal_id,
            function_name=function,
            input=input_bytes,
            nonce=secrets.randbits(128),
            deadline=int(self._now()) + self._deadline_seconds,
        )
        signed = SignedCallRequest.sign(request, self._caller_key, self._domain)
        payload = {"request": signed.to_dict(), "input_b64": base64.b64encode(input_bytes).decode("ascii")}
        return SignedCall(deal, function, input_bytes, signed, signed.digest(self._domain), payload)

    # ------------------------------------------------------ replication 1

    def _call_one(self, call: SignedCall, routes: list[WorkerRoute]) -> GatewayReply:
        deal_id = call.deal_id
        failures: list[str] = []
        bad_receipts = 0
        busy_workers = 0
        for attempt, route in enumerate(self._rotation(deal_id, routes)):
            if attempt:
                logger.info(
                    "retrying deal %d request %s on worker %d (attempt %d)", deal_id, call.short_digest, route.worker_id, attempt + 1
                )
            try:
                replica = self._workers.attempt(call, route)
            except WorkerCallFailed as failure:
                logger.warning("deal %d worker %d request %s failed: %s", deal_id, route.worker_id, call.short_digest, failure)
                failures.append(f"worker {route.worker_id}: {failure}")
                bad_receipts += failure.bad_receipt
                busy_workers += failure.busy
                continue
            reply = result_reply([replica], replication=1)
            logger.info(
                "call deal %d worker %d request %s function %s: status %d",
                deal_id,
                route.worker_id,
                call.short_digest,
                call.function,
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

    # ------------------------------------------------------ replication k

    def _call_replicated(self, call: SignedCall, routes: list[WorkerRoute]) -> GatewayReply:
        """Send the call to k workers of distinct providers at once and judge their receipts."""
        plan: ReplicationPlan[WorkerResult] = ReplicationPlan(self._rotation(call.deal_id, routes), call.deal.replication)
        pending: dict[Future[Replica[WorkerResult]], WorkerRoute] = {}

        def send(targets: Iterable[WorkerRoute]) -> None:
            for route in targets:
                pending[self._pool.submit(self._workers.attempt, call, route)] = route

        send(plan.start())
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                route = pending.pop(future)
                try:
                    replica = future.result()
                except WorkerCallFailed as failure:
                    logger.warning(
                        "deal %d worker %d request %s failed: %s", call.deal_id, route.worker_id, call.short_digest, failure
                    )
                    send(plan.failed(WorkerFailure(route, str(failure), busy=failure.busy, bad_receipt=failure.bad_receipt)))
                else:
                    send(plan.succeeded(replica))
        return settle_verdict(call, plan.verdict(), self.evidence)

    def _rotation(self, deal_id: int, routes: list[WorkerRoute]) -> list[WorkerRoute]:
        with self._counters_lock:
            counter = self._counters.setdefault(deal_id, itertools.count())
            start = next(counter) % len(routes)
        return routes[start:] + routes[:start]
