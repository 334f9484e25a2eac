"""Allowed callers of a deal, as the deal's owner set them in the ChallengeManager.

A deal with allowed callers counts only requests that one of them signed. A
receipt for any other request upholds a challenge against the provider, so
the node rejects such calls before it runs them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cloudless.chain.challenges import ChallengeClient
from cloudless.exceptions import ChainError

__all__ = ["CallerPolicy"]

logger = logging.getLogger("cloudless.node")

# Seconds a lookup is reused. A caller that the owner adds may be rejected
# for this long. Lookups are per epoch, and removals apply on chain only two
# epochs later, so the cache never serves a caller into an epoch that excludes it.
CALLER_CACHE_SECONDS = 10.0


class CallerPolicy:
    """Cached `isCallerAllowedAt` lookups per deal, caller and epoch."""

    def __init__(
        self,
        challenges: ChallengeClient | None,
        *,
        ttl_seconds: float = CALLER_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._challenges = challenges
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[int, str, int], tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def allows(self, deal_id: int, caller: str, epoch: int) -> bool:
        """Return whether `caller` may call the deal in `epoch`. Without a ChallengeManager every caller may.

        Raises ChainError when the chain cannot be read, so the call fails
        rather than run for a caller that the deal may not allow.
        """
        if self._challenges is None:
            return True
        key = (deal_id, caller.lower(), epoch)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]

        try:
            allowed = self._challenges.is_caller_allowed_at(deal_id, caller, epoch)
        except (ChainError, OSError) as error:
            # OSError covers the HTTP provider's connection errors.
            logger.warning("could not read the allowed callers of deal %d: %s", deal_id, error)
            raise ChainError(f"reading the allowed callers of deal {deal_id} failed: {error}") from error

        with self._lock:
            self._cache[key] = (allowed, now)
        return allowed
