"""The gateway's evidence feed: replicated calls whose verified receipts disagreed.

Each item contains what a verifier needs to re-execute the call and submit
`ChallengeManager.proveDisagreement`: the signed request, the input and every
verified receipt. Items are numbered from 0 in the order they were recorded.
`GET /evidence?since=N` serves them; the gateway itself sends no transaction.

With a file, the log appends one JSON line per item and fsyncs it before the
id is returned, and a restarted gateway goes on from the last id in the file.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from cloudless.exceptions import ConfigError
from cloudless.gateway.models import EvidenceItem, EvidencePage
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = ["EVIDENCE_PAGE_SIZE", "EvidenceLog"]

logger = logging.getLogger("cloudless.gateway")

# Items per `GET /evidence` reply. A reader gets more by requesting again from `next`.
EVIDENCE_PAGE_SIZE = 100
# Items kept in memory. Older ones are read back from the file, and a log
# without a file drops them.
DEFAULT_MEMORY_ITEMS = 1000


class EvidenceLog:
    """Numbered evidence items, in memory and, when `path` is set, in an append-only JSONL file. Thread-safe."""

    def __init__(self, path: Path | None = None, *, memory_items: int = DEFAULT_MEMORY_ITEMS) -> None:
        if memory_items < 1:
            raise ValueError(f"memory_items must be at least 1, got {memory_items}")
        self._path = path
        self._memory_items = memory_items
        self._recent: OrderedDict[int, EvidenceItem] = OrderedDict()
        self._offsets: list[int] = []  # byte offset of each item's line in the file
        self._count = 0
        self._lock = threading.Lock()
        if path is not None:
            self._load(path)

    @property
    def path(self) -> Path | None:
        return self._path

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def record_disagreement(
        self,
        *,
        deal_id: int,
        function: str,
        request: SignedCallRequest,
        input_bytes: bytes,
        receipts: Sequence[SignedReceipt],
    ) -> int:
        """Append one disagreement and return its id. Raises OSError when the file cannot be written."""
        with self._lock:
            item = EvidenceItem(
                id=self._count,
                kind="disagreement",
                deal_id=deal_id,
                function=function,
                request=request,
                input=base64.b64encode(input_bytes).decode("ascii"),
                receipts=list(receipts),
            )
            if self._path is not None:
                self._offsets.append(self._append(self._path, item))
            self._recent[item.id] = item
            while len(self._recent) > self._memory_items:
                self._recent.popitem(last=False)
            self._count += 1
        return item.id

    def page(self, since: int, limit: int = EVIDENCE_PAGE_SIZE) -> EvidencePage:
        """Return up to `limit` items with id >= `since`.

        `next` is the id after the last item returned, or the number of items
        recorded when none is returned. A `since` beyond the log (a reader
        that followed a log since deleted) thus gets the current end.
        Without a file, items older than the memory window are skipped.
        """
        if since < 0:
            raise ValueError(f"since must be 0 or more, got {since}")
        with self._lock:
            start = since
            if self._path is None:
                start = max(since, self._count - len(self._recent))
            items = [self._read(item_id) for item_id in range(start, min(self._count, start + limit))]
            count = self._count
        next_id = items[-1].id + 1 if items else count
        return EvidencePage(next=next_id, items=items)

    # ------------------------------------------------------------- the file

    def _read(self, item_id: int) -> EvidenceItem:
        item = self._recent.get(item_id)
        if item is not None:
            return item
        assert self._path is not None, "an item outside the memory window of a log without a file"
        with open(self._path, "rb") as handle:
            handle.seek(self._offsets[item_id])
            return EvidenceItem.model_validate_json(handle.readline())

    @staticmethod
    def _append(path: Path, item: EvidenceItem) -> int:
        line = item.model_dump_json().encode("utf-8") + b"\n"
        with open(path, "ab") as handle:
            offset = handle.tell()
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return offset

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            logger.info("evidence log %s is new", path)
            return
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            # A crash during an append leaves a partial last line, whose id was never returned.
            logger.warning("evidence log %s ends in a partial line of %d bytes; truncating it", path, len(data) - complete)
            with open(path, "r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())
        offset = 0
        for number, line in enumerate(data[:complete].splitlines(keepends=True), start=1):
            try:
                item = EvidenceItem.model_validate_json(line)
            except ValidationError as error:
                raise ConfigError(
                    f"evidence log {path} line {number} is not a valid evidence item: {error}; "
                    "move the file away to start a new log"
                ) from error
            if item.id != self._count:
                raise ConfigError(
                    f"evidence log {path} line {number} has id {item.id}, expected {self._count}; "
                    "move the file away to start a new log"
                )
            self._offsets.append(offset)
            self._recent[item.id] = item
            if len(self._recent) > self._memory_items:
                self._recent.popitem(last=False)
            self._count += 1
            offset += len(line)
        logger.info("evidence log %s has %d items", path, self._count)
