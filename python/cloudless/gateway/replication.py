"""Replicated calls: which workers get a call, and which result their receipts back.

A deal with replication k (`ChallengeManager.replicationOf`) runs each call
on k workers of k different providers. `ReplicationPlan` is the bookkeeping
of one such call. It returns the workers to send the signed request to,
replaces workers that fail with workers of providers not yet tried, adds one
tie-breaker when the k receipts disagree, and ends in a `Verdict`. It sends
nothing itself, so the rules can be tested without a network.

Replicas agree when their receipts have the same outcome, the pair
(output hash, fuel used). `ChallengeManager.proveDisagreement` compares
receipts on the same pair.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cloudless.gateway.chain_view import WorkerRoute
from cloudless.receipts.models import SignedReceipt

__all__ = [
    "Outcome",
    "Replica",
    "ReplicationPlan",
    "Verdict",
    "VerdictKind",
    "WorkerFailure",
    "decide",
    "provider_key",
    "serving_providers",
]

T = TypeVar("T")

# (output hash, fuel used) of a receipt.
Outcome = tuple[bytes, int]


def provider_key(route: WorkerRoute) -> str:
    """Return the provider of `route` in lower case, so that two spellings of one address compare equal."""
    return route.worker.provider.lower()


def serving_providers(routes: Sequence[WorkerRoute]) -> dict[str, list[WorkerRoute]]:
    """Group `routes` by provider, keeping the order of both the providers and their workers."""
    groups: dict[str, list[WorkerRoute]] = {}
    for route in routes:
        groups.setdefault(provider_key(route), []).append(route)
    return groups


@dataclass(frozen=True)
class Replica(Generic[T]):
    """A worker's reply whose receipt the gateway verified, with what the dispatcher built from it."""

    route: WorkerRoute
    receipt: SignedReceipt
    result: T

    @property
    def provider(self) -> str:
        return provider_key(self.route)

    @property
    def outcome(self) -> Outcome:
        return (self.receipt.output_hash, self.receipt.fuel_used)


@dataclass(frozen=True)
class WorkerFailure:
    """A worker that gave no verified receipt: unreachable, busy, or an invalid reply or receipt."""

    route: WorkerRoute
    message: str
    busy: bool = False
    bad_receipt: bool = False


class VerdictKind(enum.Enum):
    AGREED = "agreed"  # every receipt has one outcome, from at least k providers
    MAJORITY = "majority"  # the receipts disagree, and a strict majority of at least 2 providers backs one outcome
    DISAGREED = "disagreed"  # the receipts disagree and no outcome has such a majority
    SHORT = "short"  # fewer than k providers returned a verified receipt


@dataclass(frozen=True)
class Verdict(Generic[T]):
    """How a replicated call ended.

    `backing` lists the receipts behind the result (AGREED and MAJORITY
    only), one per provider. `outvoted` lists the receipts with another
    outcome. `replicas` lists every verified receipt in arrival order.
    `tie_breaker_sent` is whether the request went to a tie-breaker.
    """

    kind: VerdictKind
    replication: int
    replicas: tuple[Replica[T], ...]
    backing: tuple[Replica[T], ...]
    outvoted: tuple[Replica[T], ...]
    failures: tuple[WorkerFailure, ...] = ()
    tie_breaker_sent: bool = False

    @property
    def has_result(self) -> bool:
        return self.kind in (VerdictKind.AGREED, VerdictKind.MAJORITY)

    @property
    def disagreement(self) -> bool:
        """Whether two verified receipts have different outcomes."""
        return len({replica.outcome for replica in self.replicas}) > 1


def decide(
    replicas: Sequence[Replica[T]],
    replication: int,
    failures: Sequence[WorkerFailure] = (),
    *,
    tie_breaker_sent: bool = False,
) -> Verdict[T]:
    """Judge the verified receipts of one call with replication `replication`.

    Each provider counts once, with its first receipt. The call has a result
    when every counted receipt has one outcome and at least `replication`
    providers sent one (AGREED). A disagreement has a result only when at
    least `replication` providers replied and one outcome is backed by at
    least 2 of them and by more than half (MAJORITY). On a disagreement,
    `ReplicationPlan` sends the request to a tie-breaker before it calls this.
    """
    if replication < 1:
        raise ValueError(f"replication must be at least 1, got {replication}")
    counted: dict[str, Replica[T]] = {}
    for replica in replicas:
        counted.setdefault(replica.provider, replica)
    distinct = list(counted.values())

    def verdict(kind: VerdictKind, backing: Sequence[Replica[T]] = (), outvoted: Sequence[Replica[T]] = ()) -> Verdict[T]:
        return Verdict(
            kind, replication, tuple(replicas), tuple(backing), tuple(outvoted), tuple(failures), tie_breaker_sent
        )

    if len(distinct) < replication:
        return verdict(VerdictKind.SHORT)
    groups: dict[Outcome, list[Replica[T]]] = {}
    for replica in distinct:
        groups.setdefault(replica.outcome, []).append(replica)
    if len(groups) == 1:
        return verdict(VerdictKind.AGREED, distinct)
    # max returns the first of several largest groups; a tie has no strict majority anyway.
    leader = max(groups.values(), key=len)
    if len(leader) >= 2 and 2 * len(leader) > len(distinct):
        outvoted = [replica for replica in distinct if replica.outcome != leader[0].outcome]
        return verdict(VerdictKind.MAJORITY, leader, outvoted)
    return verdict(VerdictKind.DISAGREED)


class ReplicationPlan(Generic[T]):
    """The bookkeeping of one call with replication k.

    `routes` are the deal's serving workers in the order to try them. The
    plan starts with one worker of each of the first k providers.
    Each provider gets the request at most once: every worker of a provider
    is behind the provider's one node endpoint (`Market.providerEndpoint`),
    whose replay guard rejects a request that it already ran. A failed worker
    is replaced at once by a worker of a provider not yet tried, while one
    remains. When all k receipts are in and disagree, the plan sends the
    request to one more provider, the tie-breaker, and replaces a failed
    tie-breaker the same way.

    Drive it from one thread: send to the routes of `start()`, report each
    reply with `succeeded` or `failed`, send to the routes they return, and
    call `verdict()` once `in_flight` is empty.
    """

    def __init__(self, routes: Sequence[WorkerRoute], replication: int) -> None:
        if replication < 1:
            raise ValueError(f"replication must be at least 1, got {replication}")
        self.replication = replication
        self._untried = serving_providers(routes)
        self._in_flight: dict[int, WorkerRoute] = {}
        self._replicas: list[Replica[T]] = []
        self._failures: list[WorkerFailure] = []
        self._disputed = False  # all k receipts are in and disagree
        self._tie_breaker_sent = False
        self._started = False

    @property
    def in_flight(self) -> list[WorkerRoute]:
        return list(self._in_flight.values())

    @property
    def replicas(self) -> list[Replica[T]]:
        return list(self._replicas)

    def start(self) -> list[WorkerRoute]:
        """Return the first k workers to send the request to, one per provider."""
        if self._started:
            raise RuntimeError("ReplicationPlan.start was already called")
        self._started = True
        return self._launch(self.replication)

    def succeeded(self, replica: Replica[T]) -> list[WorkerRoute]:
        """Record a verified receipt and return the workers to send the request to next."""
        self._land(replica.route)
        self._replicas.append(replica)
        return self._next()

    def failed(self, failure: WorkerFailure) -> list[WorkerRoute]:
        """Record a worker without a verified receipt and return the workers to send the request to next."""
        self._land(failure.route)
        self._failures.append(failure)
        return self._next()

    def verdict(self) -> Verdict[T]:
        """Judge the receipts. Call it only when nothing is in flight."""
        if self._in_flight:
            raise RuntimeError(f"{len(self._in_flight)} replies are still in flight")
        return decide(self._replicas, self.replication, self._failures, tie_breaker_sent=self._tie_breaker_sent)

    def _land(self, route: WorkerRoute) -> None:
        if self._in_flight.pop(route.worker_id, None) is None:
            raise RuntimeError(f"worker {route.worker_id} has no request in flight")

    def _next(self) -> list[WorkerRoute]:
        if not self._disputed:
            missing = self.replication - len(self._replicas) - len(self._in_flight)
            if missing > 0:
                return self._launch(missing)
            if self._in_flight or len({replica.outcome for replica in self._replicas}) < 2:
                return []
            self._disputed = True
        # One tie-breaker at a time, until its receipt arrives or no provider is left.
        if self._in_flight or len(self._replicas) > self.replication:
            return []
        routes = self._launch(1)
        self._tie_breaker_sent = self._tie_breaker_sent or bool(routes)
        return routes

    def _launch(self, count: int) -> list[WorkerRoute]:
        routes: list[WorkerRoute] = []
        for provider in list(self._untried)[:count]:
            route = self._untried.pop(provider)[0]
            self._in_flight[route.worker_id] = route
            routes.append(route)
        return routes
