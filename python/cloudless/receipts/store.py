"""Durable, append-only store of signed receipts, one JSON Lines file per worker and epoch.

Layout under `root_dir`:

    domain.json                 EIP-712 domain that every stored receipt is signed under
    .lock                       held with flock while a ReceiptStore is open
    worker-<id>/epoch-<n>.jsonl one SignedReceipt JSON object per line, in sequence order

Each append writes one line, flushes and fsyncs it before returning, and fsyncs
the directory when it creates a file. A crash during an append can leave a
last line without its newline (or a complete last line that is not valid
JSON, such as zeros in a block that was allocated but never written). Reads
skip such a torn last line with a logged warning, and the next append for that
worker truncates it. An invalid line anywhere else is corruption and raises
ReceiptStoreError.

Sequence numbers are per worker, start at 0 and have no gaps across epochs,
and epochs never go backwards. `append` enforces both, so after a restart the
next sequence is the last stored one plus 1.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, NamedTuple, Self

from cloudless.exceptions import ReceiptError, ReceiptStoreError
from cloudless.receipts.eip712 import Domain
from cloudless.receipts.merkle import ReceiptMerkleTree
from cloudless.receipts.models import SignedReceipt

__all__ = [
    "EpochSummary",
    "ReceiptStore",
]

logger = logging.getLogger(__name__)

_DOMAIN_FILE: Final = "domain.json"
_LOCK_FILE: Final = ".lock"
_WORKER_DIR = re.compile(r"worker-(0|[1-9][0-9]*)")
_EPOCH_FILE = re.compile(r"epoch-(0|[1-9][0-9]*)\.jsonl")


class EpochSummary(NamedTuple):
    """Totals that a node submits for one worker and epoch: the Merkle root, call count and fuel."""

    root: bytes
    calls: int
    fuel_total: int


@dataclass(frozen=True, slots=True)
class _EpochFile:
    """Parsed contents of one epoch file."""

    receipts: list[SignedReceipt]
    # Byte length of the complete, valid lines. It is shorter than the file
    # when the last line is torn.
    valid_length: int
    file_length: int

    @property
    def torn(self) -> bool:
        return self.valid_length != self.file_length


@dataclass(slots=True)
class _WorkerState:
    """Cached state of one worker, guarded by the worker's lock."""

    next_sequence: int
    last_epoch: int | None
    # Files with a torn last line, mapped to the length to truncate them to.
    torn_files: dict[Path, int] = field(default_factory=dict)
    # (path, file length) pairs already warned about, so repeated reads log once.
    warned: set[tuple[Path, int]] = field(default_factory=set)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _parse_epoch_file(path: Path, worker_id: int, epoch: int) -> _EpochFile:
    """Parse one epoch file and check that its receipts belong to it and are in order."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _EpochFile(receipts=[], valid_length=0, file_length=0)

    lines = data.split(b"\n")
    # The segment after the last newline is empty unless the last write was cut short.
    complete_lines = lines[:-1]
    valid_length = 0
    receipts: list[SignedReceipt] = []
    for line_number, line in enumerate(complete_lines, start=1):
        try:
            receipt = SignedReceipt.from_json(line)
        except ReceiptError as error:
            if line_number == len(complete_lines) and not lines[-1]:
                # The last line is complete but invalid, which is how a crash
                # can leave a block that was allocated but never written.
                break
            raise ReceiptStoreError(
                f"{path} line {line_number} is not a valid signed receipt ({error}); "
                "the store is corrupt, so restore the file from a backup or move it aside"
            ) from error
        receipts.append(receipt)
        valid_length += len(line) + 1

    for position, receipt in enumerate(receipts):
        if receipt.worker_id != worker_id or receipt.epoch != epoch:
            raise ReceiptStoreError(
                f"{path} line {position + 1} contains a receipt of worker {receipt.worker_id} "
                f"epoch {receipt.epoch}, expected worker {worker_id} epoch {epoch}; "
                "the file was moved or edited, so restore it from a backup"
            )
        if position > 0 and receipt.sequence != receipts[position - 1].sequence + 1:
            raise ReceiptStoreError(
                f"{path} line {position + 1} has sequence {receipt.sequence} after "
                f"{receipts[position - 1].sequence}; sequences must increase by 1, so "
                "restore the file from a backup"
            )
    return _EpochFile(receipts=receipts, valid_length=valid_length, file_length=len(data))


class ReceiptStore:
    """Append-only receipt store under `root_dir`, for one EIP-712 domain.

    `domain` is needed to compute receipt digests for Merkle roots. The first
    open writes it to `domain.json`, and later opens with another domain
    raise ReceiptStoreError, so receipts of two deployments never mix. With
    `verify_signatures`, `append` rejects a receipt whose signature was not
    made by its `signer`.

    Methods are thread-safe, with one lock per worker. Only one ReceiptStore
    may be open on a directory at a time, in any process, because the next
    sequence number is cached in memory. Opening a second one raises
    ReceiptStoreError. Call `close` (or use `with`) to release the directory.
    """

    def __init__(self, root_dir: Path, domain: Domain, *, verify_signatures: bool = True) -> None:
        self._root = Path(root_dir)
        self._domain = domain
        self._verify_signatures = verify_signatures
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self._states: dict[int, _WorkerState] = {}

        self._root.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[bytes] | None = self._acquire_directory_lock()
        try:
            self._check_domain()
        except BaseException:
            self.close()
            raise

    # Opening and closing

    def _acquire_directory_lock(self) -> IO[bytes]:
        # The file stays open, and so locked, until close().
        lock_file = open(self._root / _LOCK_FILE, "ab")
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            lock_file.close()
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ReceiptStoreError(
                    f"receipt store {self._root} is already open in this or another process; "
                    "close the other ReceiptStore or stop the other node first"
                ) from error
            raise
        return lock_file

    def _check_domain(self) -> None:
        path = self._root / _DOMAIN_FILE
        expected = {
            "chain_id": self._domain.chain_id,
            "verifying_contract": self._domain.verifying_contract,
        }
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise ReceiptStoreError(
                    f"could not read {path}: {error}; restore it or start a new store directory"
                ) from error
            if stored != expected:
                raise ReceiptStoreError(
                    f"receipt store {self._root} belongs to domain {stored}, not {expected}; "
                    "use a separate directory for each chain and DealManager"
                )
            return

        temporary = path.with_suffix(".json.tmp")
        with open(temporary, "w") as file:
            json.dump(expected, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _fsync_directory(self._root)

    def close(self) -> None:
        """Release the directory lock. Later calls on this store raise ReceiptStoreError."""
        with self._guard:
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def root_dir(self) -> Path:
        """Directory of the store."""
        return self._root

    @property
    def domain(self) -> Domain:
        """EIP-712 domain of every stored receipt."""
        return self._domain

    # Paths and per-worker state

    def _worker_dir(self, worker_id: int) -> Path:
        return self._root / f"worker-{worker_id}"

    def _epoch_path(self, worker_id: int, epoch: int) -> Path:
        return self._worker_dir(worker_id) / f"epoch-{epoch}.jsonl"

    def _check_open(self) -> None:
        if self._lock_file is None:
            raise ReceiptStoreError(f"receipt store {self._root} is closed; open a new ReceiptStore")

    def _worker_lock(self, worker_id: int) -> threading.Lock:
        with self._guard:
            self._check_open()
            lock = self._locks.get(worker_id)
            if lock is None:
                lock = self._locks[worker_id] = threading.Lock()
            return lock

    def _list_epochs(self, worker_id: int) -> list[int]:
        try:
            names = os.listdir(self._worker_dir(worker_id))
        except FileNotFoundError:
            return []
        epochs = []
        for name in names:
            match = _EPOCH_FILE.fullmatch(name)
            if match is not None:
                epochs.append(int(match.group(1)))
        return sorted(epochs)

    def _read_epoch(self, state: _WorkerState, worker_id: int, epoch: int) -> list[SignedReceipt]:
        path = self._epoch_path(worker_id, epoch)
        parsed = _parse_epoch_file(path, worker_id, epoch)
        if parsed.torn:
            state.torn_files[path] = min(
                parsed.valid_length, state.torn_files.get(path, parsed.valid_length)
            )
            if (path, parsed.file_length) not in state.warned:
                state.warned.add((path, parsed.file_length))
                logger.warning(
                    "Ignoring torn last line of %s (bytes %d to %d), likely from a crash "
                    "during an append; the next append for worker %d truncates it",
                    path,
                    parsed.valid_length,
                    parsed.file_length,
                    worker_id,
                )
        return parsed.receipts

    def _state(self, worker_id: int) -> _WorkerState:
        """Return the worker's cached state, loading it from disk on first use. Needs the worker lock."""
        state = self._states.get(worker_id)
        if state is not None:
            return state

        state = _WorkerState(next_sequence=0, last_epoch=None)
        # Appends only ever go to the newest epoch, so the newest file with a
        # valid line contains the last sequence. Newer files can contain only a torn line.
        for epoch in reversed(self._list_epochs(worker_id)):
            receipts = self._read_epoch(state, worker_id, epoch)
            if receipts:
                state.next_sequence = receipts[-1].sequence + 1
                state.last_epoch = epoch
                break
        self._states[worker_id] = state
        return state

    # Appending

    def _repair_torn_files(self, state: _WorkerState, worker_id: int) -> None:
        for path, valid_length in list(state.torn_files.items()):
            if valid_length == 0:
                path.unlink(missing_ok=True)
            else:
                with open(path, "r+b") as file:
                    file.truncate(valid_length)
                    file.flush()
                    os.fsync(file.fileno())
            _fsync_directory(path.parent)
            logger.info(
                "Truncated torn last line of %s for worker %d to %d bytes",
                path,
                worker_id,
                valid_length,
            )
            del state.torn_files[path]

    @staticmethod
    def _roll_back(state: _WorkerState, file: IO[bytes], path: Path, length: int) -> None:
        """Cut a failed append off `file`, or leave that to the next append if this fails too."""
        try:
            file.truncate(length)
            os.fsync(file.fileno())
        except OSError as error:
            # NOTE: until the next append truncates it, reads may return the
            # receipt whose append raised, if all of its line reached the file.
            state.torn_files[path] = length
            logger.error(
                "Could not truncate %s to %d bytes after a failed append: %s", path, length, error
            )

    def _append_locked(self, state: _WorkerState, receipt: SignedReceipt) -> None:
        worker_id = receipt.worker_id
        if receipt.sequence != state.next_sequence:
            raise ReceiptStoreError(
                f"receipt sequence {receipt.sequence} for worker {worker_id} is out of order, "
                f"expected {state.next_sequence}; sign receipts with next_sequence() or "
                "use append_next()"
            )
        if state.last_epoch is not None and receipt.epoch < state.last_epoch:
            raise ReceiptStoreError(
                f"receipt epoch {receipt.epoch} for worker {worker_id} is before epoch "
                f"{state.last_epoch}, which already has receipts; sign it in the current epoch"
            )
        if self._verify_signatures:
            receipt.verify(self._domain)

        directory = self._worker_dir(worker_id)
        path = self._epoch_path(worker_id, receipt.epoch)
        line = receipt.to_json().encode() + b"\n"
        try:
            self._repair_torn_files(state, worker_id)
            created_directory = not directory.exists()
            created_file = not path.exists()
            directory.mkdir(parents=True, exist_ok=True)
            if created_directory:
                _fsync_directory(self._root)
            with open(path, "ab") as file:
                length_before = file.seek(0, os.SEEK_END)
                try:
                    file.write(line)
                    file.flush()
                    os.fsync(file.fileno())
                    if created_file:
                        _fsync_directory(directory)
                except OSError:
                    self._roll_back(state, file, path, length_before)
                    raise
        except OSError as error:
            raise ReceiptStoreError(
                f"could not append receipt {receipt.sequence} of worker {worker_id} to {path}: "
                f"{error}; check free disk space and permissions, then append it again"
            ) from error

        state.next_sequence += 1
        state.last_epoch = receipt.epoch

    def append(self, receipt: SignedReceipt) -> None:
        """Append `receipt` durably: it is on disk when this returns.

        Raises ReceiptStoreError when `receipt.sequence` is not `next_sequence`,
        when its epoch is before the worker's last epoch, or when the write
        fails. Raises InvalidSignatureError when signatures are verified and
        this one is not by `receipt.signer`.
        """
        with self._worker_lock(receipt.worker_id):
            self._append_locked(self._state(receipt.worker_id), receipt)

    def append_next(
        self, worker_id: int, build: Callable[[int], SignedReceipt]
    ) -> SignedReceipt:
        """Build the worker's next receipt with `build(sequence)` and append it, atomically.

        Holding the worker lock from choosing the sequence to writing the line
        keeps concurrent calls from taking the same sequence. `build` runs
        under that lock, so it should only sign.
        """
        with self._worker_lock(worker_id):
            state = self._state(worker_id)
            receipt = build(state.next_sequence)
            if receipt.worker_id != worker_id:
                raise ReceiptStoreError(
                    f"append_next for worker {worker_id} got a receipt of worker "
                    f"{receipt.worker_id}; build it with the worker id that was passed in"
                )
            self._append_locked(state, receipt)
            return receipt

    # Reading

    def next_sequence(self, worker_id: int) -> int:
        """Return the sequence that the worker's next receipt must have (0 for a new worker)."""
        with self._worker_lock(worker_id):
            return self._state(worker_id).next_sequence

    def receipts(self, worker_id: int, epoch: int) -> list[SignedReceipt]:
        """Return the worker's receipts of `epoch` in sequence order, or [] when it has none."""
        with self._worker_lock(worker_id):
            return self._read_epoch(self._state(worker_id), worker_id, epoch)

    def epochs(self, worker_id: int) -> list[int]:
        """Return the epochs that have a file for this worker, in ascending order.

        An epoch whose file holds only a torn line is listed until the next
        append for the worker removes that file.
        """
        with self._worker_lock(worker_id):
            return self._list_epochs(worker_id)

    def workers(self) -> list[int]:
        """Return the ids of the workers that have a directory in the store, in ascending order."""
        with self._guard:
            self._check_open()
        workers = []
        for entry in os.listdir(self._root):
            match = _WORKER_DIR.fullmatch(entry)
            if match is not None:
                workers.append(int(match.group(1)))
        return sorted(workers)

    def tree(self, worker_id: int, epoch: int) -> ReceiptMerkleTree:
        """Build the Merkle tree of the worker's receipts of `epoch`, leaves in sequence order."""
        receipts = self.receipts(worker_id, epoch)
        return ReceiptMerkleTree((receipt.digest(self._domain), receipt.fuel_used) for receipt in receipts)

    def root(self, worker_id: int, epoch: int) -> bytes:
        """Return the Merkle root of the worker's receipts of `epoch`, `EMPTY_ROOT` when none."""
        return self.tree(worker_id, epoch).root

    def summary(self, worker_id: int, epoch: int) -> EpochSummary:
        """Return the Merkle root, receipt count and total fuel of the worker's `epoch`."""
        tree = self.tree(worker_id, epoch)
        return EpochSummary(root=tree.root, calls=len(tree), fuel_total=tree.total_fuel)
