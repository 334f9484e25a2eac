"""Durable store of the calls behind the node's receipts: each caller's signed request and its input bytes.

A challenge answer must show the signed request of the receipt it opens, and
a verifier re-runs the call from its input, so the node keeps both for as
long as it keeps the receipt. Layout under `root_dir`:

    .lock                        held with flock while an EvidenceStore is open
    worker-<id>/epoch-<n>.jsonl  one call per line:
                                 {"request_hash": "0x..", "request": {...}, "input": "<base64>"}
    live-requests.jsonl          {"request_hash", "deadline"} of pruned calls whose deadline had not passed

Lines are appended and fsynced like receipts (see `cloudless.receipts.files`).
A torn last line is skipped with a warning and cut off before the next append
to its file. The node stores a call's line before it stores the receipt, so
a crash in between leaves a line without a receipt, which is harmless.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from cloudless.exceptions import ReceiptError, ReceiptStoreError
from cloudless.receipts.files import (
    AppendRollbackError,
    InvalidLineError,
    LockedDirectoryStore,
    append_line,
    fsync_directory,
    lock_directory,
    parse_json_lines,
    truncate_file,
)
from cloudless.receipts.models import SignedCallRequest

__all__ = ["CallEvidence", "EvidenceStore"]

logger = logging.getLogger("cloudless.node")

_WORKER_DIR = re.compile(r"worker-(0|[1-9][0-9]*)")
_EPOCH_FILE = re.compile(r"epoch-(0|[1-9][0-9]*)\.jsonl")
_LIVE_REQUESTS_FILE: Final = "live-requests.jsonl"


@dataclass(frozen=True)
class CallEvidence:
    """One call as the caller sent it: the signed request, its EIP-712 digest and the input bytes."""

    request_hash: bytes
    request: SignedCallRequest
    input: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "request_hash": "0x" + self.request_hash.hex(),
                "request": self.request.to_dict(),
                "input": base64.b64encode(self.input).decode("ascii"),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: bytes) -> CallEvidence:
        """Parse one stored line. Raises ReceiptError on a malformed line."""
        try:
            data = json.loads(line)
            request_hash = bytes.fromhex(str(data["request_hash"]).removeprefix("0x"))
            if len(request_hash) != 32:
                raise ValueError(f"request_hash has {len(request_hash)} bytes, expected 32")
            return cls(
                request_hash=request_hash,
                request=SignedCallRequest.from_dict(data["request"]),
                input=base64.b64decode(data["input"], validate=True),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise ReceiptError(f"invalid call evidence line: {error}") from error


class EvidenceStore(LockedDirectoryStore):
    """Requests and inputs per worker and epoch under `root_dir`, keyed by request hash.

    Thread-safe, with one lock per worker. Only one EvidenceStore may be open
    on a directory at a time, in any process; a second open raises
    ReceiptStoreError. Call `close` (or use `with`) to release it.
    """

    def __init__(self, root_dir: Path) -> None:
        self._root = Path(root_dir)
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        # Files whose tail was checked in this process, mapped to the length
        # to cut them to before the next append (None: nothing to cut).
        self._checked: dict[Path, int | None] = {}
        self._root.mkdir(parents=True, exist_ok=True)
        message = (
            f"evidence store {self._root} is already open in this or another process; "
            "stop the other node first"
        )
        try:
            self._lock_file: IO[bytes] | None = lock_directory(self._root, message)
        except BlockingIOError as error:
            raise ReceiptStoreError(message) from error

    @property
    def root_dir(self) -> Path:
        return self._root

    def _worker_dir(self, worker_id: int) -> Path:
        return self._root / f"worker-{worker_id}"

    def _epoch_path(self, worker_id: int, epoch: int) -> Path:
        return self._worker_dir(worker_id) / f"epoch-{epoch}.jsonl"

    def _worker_lock(self, worker_id: int) -> threading.Lock:
        with self._guard:
            if self._lock_file is None:
                raise ReceiptStoreError(f"evidence store {self._root} is closed; open a new EvidenceStore")
            lock = self._locks.get(worker_id)
            if lock is None:
                lock = self._locks[worker_id] = threading.Lock()
            return lock

    # Writing

    def append(self, worker_id: int, epoch: int, evidence: CallEvidence) -> None:
        """Store one call durably under the worker and epoch of its receipt: it is on disk when this returns."""
        path = self._epoch_path(worker_id, epoch)
        line = evidence.to_json().encode() + b"\n"
        with self._worker_lock(worker_id):
            try:
                if path not in self._checked:
                    self._read(path, worker_id)
                cut_to = self._checked.get(path)
                if cut_to is not None:
                    truncate_file(path, cut_to)
                    logger.info("truncated torn last line of %s to %d bytes", path, cut_to)
                self._checked[path] = None
                append_line(path, line)
            except AppendRollbackError as error:
                self._checked[path] = error.length
                raise ReceiptStoreError(
                    f"could not store the request of worker {worker_id} epoch {epoch} in {path}: {error}; "
                    "check free disk space and permissions"
                ) from error
            except OSError as error:
                raise ReceiptStoreError(
                    f"could not store the request of worker {worker_id} epoch {epoch} in {path}: {error}; "
                    "check free disk space and permissions"
                ) from error

    # Reading

    def _read(self, path: Path, worker_id: int) -> list[CallEvidence]:
        """Parse one file and note a torn tail for the next append. Needs the worker lock."""
        try:
            parsed = parse_json_lines(path, CallEvidence.from_json, (ReceiptError,))
        except InvalidLineError as error:
            raise ReceiptStoreError(
                f"{path} line {error.line_number} is not valid call evidence ({error.cause}); "
                "the store is corrupt, so restore the file from a backup or move it aside"
            ) from error
        if parsed.torn:
            if self._checked.get(path) != parsed.valid_length:
                logger.warning(
                    "ignoring torn last line of %s (bytes %d to %d), likely from a crash during an append; "
                    "the next append for worker %d cuts it off",
                    path,
                    parsed.valid_length,
                    parsed.file_length,
                    worker_id,
                )
            self._checked[path] = parsed.valid_length
        elif path not in self._checked:
            self._checked[path] = None
        return parsed.items

    def calls(self, worker_id: int, epoch: int) -> dict[bytes, CallEvidence]:
        """Return the worker's calls of `epoch` by request hash ({} when none are stored)."""
        with self._worker_lock(worker_id):
            items = self._read(self._epoch_path(worker_id, epoch), worker_id)
        return {item.request_hash: item for item in items}

    def get(self, worker_id: int, epoch: int, request_hash: bytes) -> CallEvidence | None:
        """Return the stored call with `request_hash` in the worker's `epoch`, or None."""
        return self.calls(worker_id, epoch).get(request_hash)

    def epochs(self, worker_id: int) -> list[int]:
        """Return the epochs that have a file for this worker, in ascending order."""
        with self._worker_lock(worker_id):
            try:
                names = os.listdir(self._worker_dir(worker_id))
            except FileNotFoundError:
                return []
        return sorted(int(match.group(1)) for name in names if (match := _EPOCH_FILE.fullmatch(name)))

    def workers(self) -> list[int]:
        """Return the ids of the workers that have a directory in the store, in ascending order."""
        names = os.listdir(self._root)
        return sorted(int(match.group(1)) for name in names if (match := _WORKER_DIR.fullmatch(name)))

    # Pruning

    def delete_epochs(self, worker_id: int, epochs: Iterable[int], *, now: int) -> list[int]:
        """Delete the worker's files of `epochs`; return the epochs that had a file.

        The hashes of deleted requests whose deadline is at or after `now`
        (unix seconds) go to `live-requests.jsonl` first, so that a restarted
        node still rejects them as replays.
        """
        with self._worker_lock(worker_id):
            deleted = []
            for epoch in sorted(set(epochs)):
                path = self._epoch_path(worker_id, epoch)
                if not path.exists():
                    continue
                live = [item for item in self._read(path, worker_id) if item.request.deadline >= now]
                self._remember_live(live)
                path.unlink()
                self._checked.pop(path, None)
                deleted.append(epoch)
            if deleted:
                fsync_directory(self._worker_dir(worker_id))
            return deleted

    def _remember_live(self, calls: Collection[CallEvidence]) -> None:
        if not calls:
            return
        lines = b"".join(
            json.dumps({"request_hash": "0x" + call.request_hash.hex(), "deadline": call.request.deadline}).encode()
            + b"\n"
            for call in calls
        )
        with self._guard:
            append_line(self._root / _LIVE_REQUESTS_FILE, lines)

    def live_request_hashes(self, *, now: int) -> set[bytes]:
        """Return the hashes of pruned requests whose deadline is at or after `now`, and forget older ones."""
        path = self._root / _LIVE_REQUESTS_FILE
        with self._guard:
            try:
                parsed = parse_json_lines(path, json.loads, (ValueError,))
            except InvalidLineError as error:
                raise ReceiptStoreError(f"{path} line {error.line_number} is not valid JSON; move the file aside") from error
            live = [item for item in parsed.items if int(item["deadline"]) >= now]
            if len(live) != len(parsed.items) or parsed.torn:
                if live:
                    temporary = path.with_name(path.name + ".new")
                    temporary.write_text("".join(json.dumps(item) + "\n" for item in live))
                    with open(temporary, "rb") as file:
                        os.fsync(file.fileno())
                    os.replace(temporary, path)
                    fsync_directory(self._root)
                else:
                    path.unlink(missing_ok=True)
        return {bytes.fromhex(str(item["request_hash"]).removeprefix("0x")) for item in live}
