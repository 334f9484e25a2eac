"""Cached chain reads for the gateway: deals, their replication and workers, peer signers and provider endpoints."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from eth_utils import to_checksum_address

from cloudless.chain.session import Session
from cloudless.chain.types import Deal, DealStatus, Worker
from cloudless.exceptions import ConfigError
from cloudless.formatting import format_count

__all__ = ["ChainView", "DealView", "TtlCache", "WorkerRoute", "resolve_endpoint"]

logger = logging.getLogger("cloudless.gateway")

T = TypeVar("T")


def resolve_endpoint(session: Session, provider: str, overrides: Mapping[str, str]) -> str | None:
    """Return the base URL of `provider`'s node, or None when no endpoint is published.

    The gateway config's `endpoints` win. Otherwise the endpoint comes from
    the Market's endpoint registry (`Market.providerEndpoint`).
    """
    provider = to_checksum_address(provider)
    if provider in overrides:
        return overrides[provider]
    url = session.market.provider_endpoint(provider)
    return url.rstrip("/") or None


class TtlCache:
    """A thread-safe map whose entries expire `ttl_seconds` after they were read from the chain."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[object, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: object, load: Callable[[], T], *, ttl_seconds: float | None = None) -> T:
        """Return the cached value of `key`, calling `load` when it is missing or expired."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]  # type: ignore[return-value]
        value = load()
        ttl = self._ttl if ttl_seconds is None else ttl_seconds
        with self._lock:
            self._entries[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True)
class WorkerRoute:
    """A worker of a deal with the peer signer that signs its receipts and its provider's node URL."""

    worker: Worker
    signer: str
    endpoint: str | None

    @property
    def worker_id(self) -> int:
        return self.worker.worker_id


@dataclass(frozen=True)
class DealView:
    """A deal as the gateway last read it, with every worker it ever had."""

    deal: Deal
    status: DealStatus
    current_epoch: int
    workers: tuple[WorkerRoute, ...]
    # Workers of distinct providers that must run each call (`ChallengeManager.replicationOf`).
    replication: int = 1

    def serving_workers(self) -> list[WorkerRoute]:
        """Return the workers that take calls now: active, not ended, with a known endpoint."""
        end = self.deal.end_epoch
        return [
            route
            for route in self.workers
            if route.worker.active
            and self.current_epoch < min(route.worker.left_epoch, end)
            and route.endpoint is not None
        ]


class ChainView:
    """Chain reads behind a short cache, so a burst of calls costs a few RPCs, not a few per call."""

    def __init__(self, session: Session, *, ttl_seconds: float, endpoints: Mapping[str, str]) -> None:
        self._session = session
        self._cache = TtlCache(ttl_seconds)
        self._endpoints = dict(endpoints)
        try:
            self._challenges = session.challenges
        except ConfigError as error:
            logger.warning("every deal runs with replication 1: %s", error)
            self._challenges = None

    def current_epoch(self, *, fresh: bool = False) -> int:
        if fresh:
            return self._session.deals.current_epoch()
        return self._cache.get("epoch", self._session.deals.current_epoch)

    def deal_exists(self, deal_id: int) -> bool:
        if deal_id < 1:
            return False
        count = self._cache.get("deal_count", self._session.deals.deal_count)
        if deal_id <= count:
            return True
        # The deal may be newer than the cached count.
        return deal_id <= self._cache.get("deal_count", self._session.deals.deal_count, ttl_seconds=0)

    def deal(self, deal_id: int) -> DealView:
        """Return the deal with its workers; call `deal_exists` first, because an unknown id reverts."""
        return self._cache.get(("deal", deal_id), lambda: self._load_deal(deal_id))

    def caller_allowed(self, deal_id: int, caller: str) -> bool:
        """Whether the deal counts requests that `caller` signs; every caller without a ChallengeManager."""
        challenges = self._challenges
        if challenges is None:
            return True
        return self._cache.get(("caller", deal_id, caller.lower()), lambda: challenges.is_caller_allowed(deal_id, caller))

    def _load_deal(self, deal_id: int) -> DealView:
        deals = self._session.deals
        deal = deals.get_deal(deal_id)
        status = deals.deal_status(deal_id)
        routes = []
        for worker_id in deals.deal_worker_ids(deal_id):
            worker = deals.get_worker(worker_id)
            routes.append(WorkerRoute(worker, self._signer(worker.peer_id), self.endpoint(worker.provider)))
        replication = 1 if self._challenges is None else self._challenges.replication_of(deal_id)
        logger.debug(
            "read deal %d from chain: %s, %s, replication %d",
            deal_id,
            status.name,
            format_count(len(routes), "worker"),
            replication,
        )
        return DealView(deal, status, self.current_epoch(), tuple(routes), replication)

    def _signer(self, peer_id: int) -> str:
        # A peer's signer never changes, so it is cached for as long as the gateway runs.
        return self._cache.get(
            ("signer", peer_id),
            lambda: to_checksum_address(self._session.market.get_peer(peer_id).signer),
            ttl_seconds=float("inf"),
        )

    def endpoint(self, provider: str) -> str | None:
        return self._cache.get(("endpoint", provider), lambda: resolve_endpoint(self._session, provider, self._endpoints))
