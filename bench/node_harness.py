"""A provider node's HTTP API on 127.0.0.1 without a chain, for the runtime benchmark and node tests.

`LocalNode` serves the real node app (`create_node_app`) around a real
`CallService`, `PackageCache`, `WasmRuntime` and `ReceiptStore`. Only the
chain is replaced: one deal with one worker per package, held by a static
tracker, and a clock that stays at one epoch. So an HTTP call runs every
step of a real one: body validation, signature and input checks, the replay
guard, the Wasm call, and the signed receipt that is fsynced to disk before
the reply.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from cloudless.chain.keys import anvil_account_key
from cloudless.chain.types import OPEN_ENDED_EPOCH, AccessMode, BillingMode, Deal, DealStatus, Worker
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.node.api import create_node_app
from cloudless.node.callers import CallerPolicy
from cloudless.node.calls import CallService, ReplayGuard
from cloudless.node.http_server import ServerThread
from cloudless.node.models import NodeHealth
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock
from cloudless.node.workers import TrackedWorker
from cloudless.receipts.eip712 import CallRequest, Domain
from cloudless.receipts.models import SignedCallRequest
from cloudless.receipts.store import ReceiptStore
from cloudless.runtime.engine import WasmRuntime

__all__ = ["LocalNode", "local_node"]

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
EPOCH = 5
# Anvil's public test accounts, which hold nothing outside a local chain.
SIGNER_KEY = anvil_account_key(10)
CALLER_KEY = anvil_account_key(8)


class _StaticTracker:
    """The part of WorkerTracker that CallService reads, with fixed workers."""

    def __init__(self, workers: dict[int, TrackedWorker]) -> None:
        self._workers = workers

    def get(self, worker_id: int) -> TrackedWorker | None:
        return self._workers.get(worker_id)

    def all(self) -> list[TrackedWorker]:
        return [self._workers[worker_id] for worker_id in sorted(self._workers)]


class _FixedClock(EpochClock):
    """An EpochClock that stays at one epoch and reads no chain."""

    def __init__(self, epoch: int = EPOCH) -> None:
        super().__init__(session=None)  # type: ignore[arg-type]
        self._epoch = epoch

    def current(self) -> int:
        return self._epoch


def _tracked_worker(worker_id: int, cid: str, signer: str) -> TrackedWorker:
    deal = Deal(
        deal_id=worker_id,
        owner="0x" + "44" * 20,
        app_cid=cid_to_bytes(cid),
        payment_token="0x" + "55" * 20,
        max_price_per_cu_per_epoch=10,
        cu_per_worker=1,
        min_workers=1,
        target_workers=1,
        max_workers_per_provider=1,
        regions=(),
        min_tier=0,
        min_sla_bps=0,
        access_mode=AccessMode.NONE,
        providers=(),
        billing_mode=BillingMode.SUBSCRIPTION,
        start_epoch=0,
        end_epoch=OPEN_ENDED_EPOCH,
        settled_epoch=0,
        stopped=False,
        active_workers=1,
        rate_per_epoch=10,
        balance=10**9,
        pending=0,
    )
    worker = Worker(
        worker_id=worker_id,
        deal_id=worker_id,
        peer_id=1,
        provider="0x" + "66" * 20,
        price_per_cu_per_epoch=10,
        cus=1,
        joined_epoch=0,
        left_epoch=OPEN_ENDED_EPOCH,
        claimed_until_epoch=0,
        active=True,
    )
    return TrackedWorker(worker=worker, deal=deal, deal_status=DealStatus.ACTIVE, signer=signer)


class LocalNode:
    """A started node API on 127.0.0.1 serving one worker per package. Worker ids start at 1.

    `runtime` is the node's WasmRuntime and `admission` its CallAdmission.
    Use `local_node` to start and stop one.
    """

    def __init__(
        self,
        data_dir: Path,
        packages: list[bytes],
        *,
        max_concurrent_calls: int,
        callers: CallerPolicy | None = None,
        epoch: int = EPOCH,
    ) -> None:
        signer = Account.from_key(SIGNER_KEY).address
        self.runtime = WasmRuntime(data_dir / "compiled")
        self.store = ReceiptStore(data_dir / "receipts", DOMAIN)
        self.packages = PackageCache(self.runtime, data_dir / "packages", [])
        workers: dict[int, TrackedWorker] = {}
        for worker_id, package in enumerate(packages, start=1):
            cid = compute_cid(package)
            (data_dir / "packages" / cid).write_bytes(package)
            if not self.packages.ensure(cid):
                raise RuntimeError(f"package {cid} did not load; see the cloudless.node log")
            workers[worker_id] = _tracked_worker(worker_id, cid, signer)

        calls = CallService(
            tracker=_StaticTracker(workers),  # type: ignore[arg-type]
            packages=self.packages,
            runtime=self.runtime,
            store=self.store,
            clock=_FixedClock(epoch),
            domain=DOMAIN,
            signer_keys={signer: SIGNER_KEY},
            replay=ReplayGuard(),
            deal_data_root=data_dir / "deal-data",
            callers=callers,
        )
        app = create_node_app(calls, self._health, max_concurrent_calls=max_concurrent_calls)
        self.admission = app.state.admission
        self.server = ServerThread(app, "127.0.0.1", 0, logger_name="cloudless.node")
        self._nonces = itertools.count(time.time_ns())
        self._nonce_lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def _health(self) -> NodeHealth:
        return NodeHealth(status="ok", provider="0x" + "66" * 20, offer_id=1, chain_id=DOMAIN.chain_id, epoch=EPOCH, peers=[], workers=[])

    def call_body(self, worker_id: int, function: str, input_bytes: bytes) -> dict[str, Any]:
        """Return a signed `POST /workers/{worker_id}/call` body with a fresh nonce. Worker N serves deal N."""
        with self._nonce_lock:
            nonce = next(self._nonces)
        request = CallRequest.for_input(
            deal_id=worker_id,
            function_name=function,
            input=input_bytes,
            nonce=nonce,
            deadline=int(time.time()) + 3600,
        )
        signed = SignedCallRequest.sign(request, CALLER_KEY, DOMAIN)
        return {"request": signed.to_dict(), "input_b64": base64.b64encode(input_bytes).decode("ascii")}

    def post(self, client: httpx.Client, worker_id: int, body: dict[str, Any]) -> httpx.Response:
        return client.post(f"{self.url}/workers/{worker_id}/call", json=body)

    def close(self) -> None:
        self.server.stop()
        self.runtime.close()
        self.store.close()


@contextmanager
def local_node(
    data_dir: Path,
    packages: list[bytes],
    *,
    max_concurrent_calls: int,
    callers: CallerPolicy | None = None,
    epoch: int = EPOCH,
) -> Iterator[LocalNode]:
    """Start a LocalNode on a free 127.0.0.1 port and stop it on exit.

    `callers` decides which request signers each deal accepts (by default
    every signer), and the node's clock stays at `epoch`.
    """
    node = LocalNode(data_dir, packages, max_concurrent_calls=max_concurrent_calls, callers=callers, epoch=epoch)
    try:
        node.server.start()
        yield node
    finally:
        node.close()
