"""The node loop proves a worker's epochs only while the worker's package can be loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from test_placement import make_deal

from cloudless.chain.types import OPEN_ENDED_EPOCH, DealStatus, Worker
from cloudless.exceptions import PackageError
from cloudless.node.loop import NodeLoop
from cloudless.node.workers import TrackedWorker

APP_CID = b"\x01\x55\x12\x20" + bytes(range(32))


def tracked_worker(*, active: bool, claimed_until: int = 0, left: int = OPEN_ENDED_EPOCH) -> TrackedWorker:
    worker = Worker(
        worker_id=1,
        deal_id=1,
        peer_id=1,
        provider="0x" + "11" * 20,
        price_per_cu_per_epoch=10,
        cus=1,
        joined_epoch=0,
        left_epoch=left,
        claimed_until_epoch=claimed_until,
        active=active,
    )
    deal = make_deal(
        app_cid=APP_CID,
        target_workers=1,
        stopped=not active,
        active_workers=1 if active else 0,
        rate_per_epoch=10,
        balance=1_000,
    )
    status = DealStatus.ACTIVE if active else DealStatus.ENDED
    return TrackedWorker(worker=worker, deal=deal, deal_status=status, signer="0x" + "44" * 20)


@dataclass
class FakeTracker:
    workers: list[TrackedWorker]

    def sync(self) -> list[TrackedWorker]:
        return self.workers


@dataclass
class FakePackages:
    available: bool
    requested: list[str] = field(default_factory=list)

    def ensure(self, cid: str) -> Any:
        self.requested.append(cid)
        if not self.available:
            raise PackageError(f"package {cid} unavailable from every source")
        return object()


@dataclass
class FakeProver:
    proved: list[int] = field(default_factory=list)

    def prove(self, tracked: TrackedWorker, current_epoch: int) -> int:
        self.proved.append(tracked.worker_id)
        return 1

    def claim(self, tracked: TrackedWorker) -> None:
        return None

    def withdraw_earnings(self) -> int:
        return 0


class FakeClock:
    def current(self) -> int:
        return 5


def run_cycle(tracked: TrackedWorker, *, available: bool) -> tuple[FakePackages, FakeProver]:
    packages = FakePackages(available=available)
    prover = FakeProver()
    loop = NodeLoop(
        tracker=FakeTracker([tracked]),  # type: ignore[arg-type]
        packages=packages,  # type: ignore[arg-type]
        prover=prover,  # type: ignore[arg-type]
        clock=FakeClock(),  # type: ignore[arg-type]
        interval_seconds=1.0,
        claim_enabled=True,
    )
    loop.run_once()
    return packages, prover


def test_loop_proves_serving_worker_with_package() -> None:
    packages, prover = run_cycle(tracked_worker(active=True), available=True)

    assert len(packages.requested) == 1
    assert prover.proved == [1]


def test_loop_skips_proofs_without_package() -> None:
    _, prover = run_cycle(tracked_worker(active=True), available=False)

    assert prover.proved == []


def test_loop_skips_proofs_of_ended_worker_without_package() -> None:
    # The worker stopped taking calls (its deal was stopped), but epochs of its
    # stay may still be provable: they are not proven if the package never loaded.
    _, prover = run_cycle(tracked_worker(active=False, left=4), available=False)

    assert prover.proved == []


def test_loop_settled_worker_needs_no_package() -> None:
    packages, prover = run_cycle(tracked_worker(active=False, left=4, claimed_until=4), available=False)

    assert packages.requested == []
    assert prover.proved == [1]
