"""Durable, append-only store of signed receipts, one JSON Lines file per worker and epoch.

Layout under `root_dir`:

    domain.json                 EIP-712 domain that every stored receipt is signed under
    .lock                       held with flock while a ReceiptStore is open
    worker-<id>/epoch-<n>.jsonl one SignedReceipt JSON object per line, in sequence order
    worker-<id>/pruned.json     which epochs `prune_epochs` deleted, and the next sequence

Each append writes one line, flushes and fsyncs it before returning, and fsyncs
the directory when it creates a file. A crash during an append can leave a
last line without its newline (or a complete last line that is not valid
JSON, such as zeros in a block that was allocated but never written). Reads
skip such a torn last line with a logged warning, and the next append for that
worker truncates it. An invalid line anywhere else is corruption and raises
ReceiptStoreError.

Sequence numbers are per worker, start at 0 and have no gaps across epochs,
and epochs never go backwards. `append` enforces both, so after a restart the
next sequence is the last stored one plus 1. Pruning deletes whole epoch
files; `pruned.json` keeps the next sequence, so it survives even when every
file of the worker is gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, NamedTuple

from cloudless.exceptions import ReceiptError, ReceiptStoreError
from cloudless.receipts.eip712 import Domain
from cloudless.receipts.files import (
    AppendRollbackError,
    InvalidLineError,
    LockedDirectoryStore,
    append_line,
    fsync_directory,
    lock_directory,
    parse_json_lines,
    truncate_file,
    write_json_atomically,
)
from cloudless.receipts.merkle import ReceiptMerkleTree
from cloudless.receipts.models import SignedReceipt

__all__ = [
    "EpochSummary",
    "PrunedEpochs",
    "ReceiptStore",
]

logger = logging.getLogger(__name__)

_DOMAIN_FILE: Final = "domain.json"
_PRUNED_FILE: Final = "pruned.json"
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


@dataclass(frozen=True, slots=True)
class PrunedEpochs:
    """Epochs of one worker whose files `prune_epochs` deleted: all below `below` except `kept`."""

    below: int = 0
    kept: frozenset[int] = frozenset()

    def __contains__(self, epoch: object) -> bool:
        return isinstance(epoch, int) and epoch < self.below and epoch not in self.kept


@dataclass(slots=True)
class _WorkerState:
    """Cached state of one worker, guarded by the worker's lock."""

    next_sequence: int
    last_epoch: int | None
    pruned: PrunedEpochs = field(default_factory=PrunedEpochs)
    # Files with a torn last line, mapped to the length to truncate them to.
    torn_files: dict[Path, int] = field(default_factory=dict)
    # (path, file length) pairs already warned about, so repeated reads log once.
    warned: set[tuple[Path, int]] = field(default_factory=set)


def _parse_epoch_file(path: Path, worker_id: int, epoch: int) -> _EpochFile:
    """Parse one epoch file and check that its receipts belong to it and are in order."""
    try:
        parsed = parse_json_lines(path, SignedReceipt.from_json, (ReceiptError,))
    except InvalidLineError as error:
        raise ReceiptStoreError(
            f"{path} line {error.line_number} is not a valid signed receipt ({error.cause}); "
            "the store is corrupt, so restore the file from a backup or move it aside"
        ) from error
    receipts = parsed.items

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
    return _EpochFile(receipts=receipts, valid_length=parsed.valid_length, file_length=parsed.file_length)


class ReceiptStore(LockedDirectoryStore):
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
        message = (
            f"receipt store {self._root} is already open in this or another process; "
            "close the other ReceiptStore or stop the other node first"
        )
        try:
            return lock_directory(self._root, message)
        except BlockingIOError as error:
            raise ReceiptStoreError(message) from error

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

        write_json_atomically(path, expected)

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

        state = self._read_pruned_file(worker_id)
        # Appends only ever go to the newest epoch, so the newest file with a
        # valid line contains the last sequence. Newer files can contain only a torn line.
        for epoch in reversed(self._list_epochs(worker_id)):
            receipts = self._read_epoch(state, worker_id, epoch)
            if receipts:
                state.next_sequence = max(state.next_sequence, receipts[-1].sequence + 1)
                state.last_epoch = max(epoch, state.last_epoch or 0)
                break
        self._states[worker_id] = state
        return state

    def _read_pruned_file(self, worker_id: int) -> _WorkerState:
        """Return the state that the worker's `pruned.json` records, or an empty state without one."""
        path = self._worker_dir(worker_id) / _PRUNED_FILE
        try:
            record = json.loads(path.read_text())
            return _WorkerState(
                next_sequence=int(record["next_sequence"]),
                last_epoch=None if record["last_epoch"] is None else int(record["last_epoch"]),
                pruned=PrunedEpochs(below=int(record["below"]), kept=frozenset(int(e) for e in record["kept"])),
            )
        except FileNotFoundError:
            return _WorkerState(next_sequence=0, last_epoch=None)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ReceiptStoreError(
                f"could not read {path}: {error}; the store is corrupt, so restore the file from a backup"
            ) from error

    # Appending

    def _repair_torn_files(self, state: _WorkerState, worker_id: int) -> None:
        for path, valid_length in list(state.torn_files.items()):
            truncate_file(path, valid_length)
            logger.info(
                "Truncated torn last line of %s for worker %d to %d bytes",
                path,
                worker_id,
                valid_length,
            )
            del state.torn_files[path]

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
        if receipt.epoch in state.pruned:
            raise ReceiptStoreError(
                f"receipt epoch {receipt.epoch} for worker {worker_id} was already pruned; "
                "sign it in the current epoch"
            )
        if self._verify_signatures:
            receipt.verify(self._domain)

        path = self._epoch_path(worker_id, receipt.epoch)
        line = receipt.to_json().encode() + b"\n"
        try:
            self._repair_torn_files(state, worker_id)
            append_line(path, line)
        except AppendRollbackError as error:
            # NOTE: until the next append truncates it, reads may return the
            # receipt whose append raised, if all of its line reached the file.
            state.torn_files[path] = error.length
            logger.error("Could not truncate %s to %d bytes after a failed append: %s", path, error.length, error.cause)
            raise ReceiptStoreError(
                f"could not append receipt {receipt.sequence} of worker {worker_id} to {path}: "
                f"{error.__cause__}; check free disk space and permissions, then append it again"
            ) from error
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

    # Pruning

    def pruned_epochs(self, worker_id: int) -> PrunedEpochs:
        """Return the worker's epochs that `prune_epochs` deleted."""
        with self._worker_lock(worker_id):
            return self._state(worker_id).pruned

    def is_pruned(self, worker_id: int, epoch: int) -> bool:
        """Return whether `prune_epochs` deleted the worker's `epoch`."""
        return epoch in self.pruned_epochs(worker_id)

    def prune_epochs(self, worker_id: int, below: int, keep: Collection[int] = ()) -> list[int]:
        """Delete the worker's epochs before `below`, except those in `keep`; return the epochs whose files went.

        An epoch that an earlier call kept is deleted once it is no longer in
        `keep`. A deleted epoch stays pruned: `is_pruned` is true for it and
        `append` rejects receipts of it. The record of pruned epochs and of
        the next sequence is written before any file is deleted, so a crash in
        between leaves files that the next call deletes.
        """
        with self._worker_lock(worker_id):
            state = self._state(worker_id)
            old = state.pruned
            new_below = max(old.below, below)
            # An epoch deleted earlier cannot be kept again.
            kept = frozenset(
                epoch for epoch in keep if epoch < new_below and (epoch >= old.below or epoch in old.kept)
            )
            pruned = PrunedEpochs(below=new_below, kept=kept)
            if pruned != old:
                self._write_pruned_file(worker_id, state, pruned)
                state.pruned = pruned

            deleted = []
            for epoch in self._list_epochs(worker_id):
                if epoch in pruned:
                    path = self._epoch_path(worker_id, epoch)
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        continue
                    state.torn_files.pop(path, None)
                    deleted.append(epoch)
            if deleted:
                fsync_directory(self._worker_dir(worker_id))
            return deleted

    def _write_pruned_file(self, worker_id: int, state: _WorkerState, pruned: PrunedEpochs) -> None:
        directory = self._worker_dir(worker_id)
        record = {
            "below": pruned.below,
            "kept": sorted(pruned.kept),
            "next_sequence": state.next_sequence,
            "last_epoch": state.last_epoch,
        }
        try:
            if not directory.exists():
                directory.mkdir(parents=True)
                fsync_directory(self._root)
            write_json_atomically(directory / _PRUNED_FILE, record)
        except OSError as error:
            raise ReceiptStoreError(
                f"could not record the pruned epochs of worker {worker_id} in {directory}: {error}; "
                "check free disk space and permissions"
            ) from error
