"""HTTP reads of the verifier: a node's served epoch and a gateway's evidence feed, with retries.

Connection errors, timeouts, 429 and 5xx replies are retried with a doubling
delay, and every retry is logged. A 404 or 410 from a node is an answer,
not a failure, and is not retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from cloudless.verifier.models import EvidencePage, ServedEpoch

__all__ = ["FetchError", "Fetcher", "ServedResult"]

logger = logging.getLogger("cloudless.verifier")

_RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class FetchError(Exception):
    """A read failed after its retries, or returned something that is not the expected JSON."""


@dataclass(frozen=True)
class ServedResult:
    """What a node answered for one worker epoch.

    `epoch` is set when it served the receipts. Otherwise `status` is
    "unknown_worker" (404), "pruned" (410), "invalid" (a reply that is not a
    served epoch) or "unreachable" (no reply after the retries), and `error`
    says what happened.
    """

    status: str
    epoch: ServedEpoch | None = None
    error: str = ""


class Fetcher:
    """Makes the verifier's HTTP reads. `attempts` counts the first try; `backoff_seconds` is the first delay."""

    def __init__(
        self,
        *,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_seconds)

    def close(self) -> None:
        self._client.close()

    def _get(self, url: str, description: str, params: dict[str, int] | None = None) -> httpx.Response:
        """GET `url`, retrying transport errors and retryable statuses; raise FetchError after the last attempt."""
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.get(url, params=params)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code not in _RETRIED_STATUS:
                    return response
                problem = f"HTTP {response.status_code}"
            if attempt == self._attempts:
                raise FetchError(f"{description} at {url} failed after {self._attempts} attempts: {problem}")
            logger.warning(
                "%s at %s failed (attempt %d of %d): %s; retrying in %.1f s",
                description,
                url,
                attempt,
                self._attempts,
                problem,
                delay,
            )
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def served_epoch(self, base_url: str, worker_id: int, epoch: int) -> ServedResult:
        """Read `GET {base_url}/workers/{worker_id}/epochs/{epoch}/receipts`."""
        url = f"{base_url}/workers/{worker_id}/epochs/{epoch}/receipts"
        try:
            response = self._get(url, f"receipts of worker {worker_id} epoch {epoch}")
        except FetchError as error:
            return ServedResult("unreachable", error=str(error))
        if response.status_code == 404:
            return ServedResult("unknown_worker", error=f"{url} replied 404: {response.text[:300]}")
        if response.status_code == 410:
            return ServedResult("pruned", error=f"{url} replied 410: {response.text[:300]}")
        if response.status_code != 200:
            return ServedResult("invalid", error=f"{url} replied HTTP {response.status_code}: {response.text[:300]}")
        try:
            return ServedResult("served", epoch=ServedEpoch.model_validate_json(response.content))
        except ValidationError as error:
            return ServedResult("invalid", error=f"{url} served an invalid epoch: {error}")

    def evidence(self, base_url: str, since: int) -> EvidencePage:
        """Read `GET {base_url}/evidence?since={since}`. Raises FetchError."""
        url = f"{base_url}/evidence"
        response = self._get(url, f"evidence since {since}", params={"since": since})
        if response.status_code != 200:
            raise FetchError(f"{url}?since={since} replied HTTP {response.status_code}: {response.text[:300]}")
        try:
            return EvidencePage.model_validate_json(response.content)
        except ValidationError as error:
            raise FetchError(f"{url}?since={since} is not an evidence page: {error}") from error
