"""The verifier's state file, `<state dir>/state.json`: what it checked, what it challenged, where it stopped.

Every save writes a temporary file, fsyncs it and renames it over the old
one, so a crash leaves either the old or the new state, never a mix. The
file names the chain and DealManager it belongs to, and loading it against
another deployment is an error.

A lost or deleted state file is safe: the verifier scans proofs again from
the deployment block, and `Actor.load_own_challenges` reads its own
`ChallengeOpened` logs, so it does not challenge a proof twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudless.chain.types import EpochProofEntry, ProofBatch
from cloudless.exceptions import ConfigError

__all__ = [
    "BatchRecord",
    "ChallengeRecord",
    "EntryRecord",
    "FraudRecord",
    "HeldFraud",
    "PendingChallenge",
    "ProofRecord",
    "StateFile",
    "VerifierState",
    "lock_state_dir",
    "worker_epoch_key",
]

logger = logging.getLogger("cloudless.verifier")

STATE_VERSION = 1


def worker_epoch_key(worker_id: int, epoch: int) -> str:
    return f"{worker_id}:{epoch}"


def lock_state_dir(directory: Path) -> IO[bytes]:
    """Take an exclusive lock on `directory/.lock` and return the open file that holds it; close it to release.

    Two verifiers on one state directory would both act on the same
    findings, so the second one raises ConfigError.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / ".lock", "ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"another verifier is using state directory {directory}; stop it or pass another --state-dir"
        ) from None
    return handle


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntryRecord(_Record):
    """One entry of a proof batch, as its `EpochProofsSubmitted` log has it."""

    worker_id: int
    epoch: int
    root: str  # 0x-hex
    calls: int
    usage: int

    @classmethod
    def of(cls, entry: EpochProofEntry) -> EntryRecord:
        return cls(
            worker_id=entry.worker_id,
            epoch=entry.epoch,
            root="0x" + entry.receipts_root.hex(),
            calls=entry.calls,
            usage=entry.usage,
        )

    def to_entry(self) -> EpochProofEntry:
        return EpochProofEntry(
            worker_id=self.worker_id,
            epoch=self.epoch,
            receipts_root=bytes.fromhex(self.root[2:]),
            calls=self.calls,
            usage=self.usage,
        )


class BatchRecord(_Record):
    """A recorded proof batch: a challenge must send all of its entries."""

    block: int
    entries: list[EntryRecord]


class PendingChallenge(_Record):
    """A challenge waiting for the proof's challenge window: the finding it acts on and, for RECEIPT, the receipt."""

    remedy: str  # Remedy value
    finding: str  # FindingKind value
    message: str
    receipt_json: str | None = None


class ProofRecord(_Record):
    """One worker epoch proof and how far the verifier got with it.

    `status` is "new" before the first fetch, "unserved" while the node does
    not serve it (it is fetched again each pass), "checked" once checked, and
    "closed" when its challenge window is over. A kept challenge is in
    `pending` until it is sent or given up.
    """

    worker_id: int
    epoch: int
    deal_id: int
    batch_hash: str
    entry_index: int
    status: str = "new"
    attempts: int = 0
    last_error: str = ""
    findings: list[str] = Field(default_factory=list)
    pending: PendingChallenge | None = None


class ChallengeRecord(_Record):
    """A challenge this verifier opened."""

    challenge_id: int
    kind: str
    tx: str = ""


class FraudRecord(_Record):
    """A fraud proof or missed-proof report, by fraud key; `status` is "proven", "settled" (by anyone) or "failed"."""

    fault: str
    worker_id: int
    epoch: int
    status: str
    tx: str = ""
    detail: str = ""


class HeldFraud(_Record):
    """A fraud proof waiting until it can also forfeit the epochs it names; see `verifier.frauds`.

    `remedy` is "prove_equivocation", with `receipts` = [first, second], or
    "prove_disagreement", with `receipts` = [minority, *majority] and the
    caller-signed `request_json`. Receipts are SignedReceipt JSON. `worker_id`
    and `epoch` are what the contract names and slashes for. `send_from_epoch`
    is the first epoch after the proof windows of all epochs it forfeits.
    """

    remedy: str  # Remedy value
    worker_id: int
    epoch: int
    forfeits: list[int]  # epochs of `worker_id` that the contract forfeits
    send_from_epoch: int
    detail: str
    receipts: list[str]
    request_json: str | None = None


class StateFile(_Record):
    version: int = STATE_VERSION
    chain_id: int
    deal_manager: str
    proof_cursor: int | None = None  # next block to scan for EpochProofsSubmitted
    batches: dict[str, BatchRecord] = Field(default_factory=dict)
    proofs: dict[str, ProofRecord] = Field(default_factory=dict)
    challenges: dict[str, ChallengeRecord] = Field(default_factory=dict)  # worker_epoch_key -> own challenge
    failed_challenges: dict[str, str] = Field(default_factory=dict)  # worker_epoch_key -> why it failed for good
    fraud: dict[str, FraudRecord] = Field(default_factory=dict)  # 0x fraud key -> record
    held_frauds: dict[str, HeldFraud] = Field(default_factory=dict)  # 0x fraud key -> fraud proof not sent yet
    unprovable: list[str] = Field(default_factory=list)  # disagreement fraud keys given up on
    evidence_cursors: dict[str, int] = Field(default_factory=dict)  # gateway URL -> next item id
    challenge_scan_next: int = 1  # next challenge id to look at
    open_challenges: list[int] = Field(default_factory=list)


class VerifierState:
    """The state file and its in-memory copy; `save` writes it atomically."""

    def __init__(self, path: Path, data: StateFile) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path, *, chain_id: int, deal_manager: str) -> VerifierState:
        """Read the state file, or start a new state when there is none.

        Raises ConfigError when the file is unreadable, invalid or belongs to another deployment.
        """
        if not path.exists():
            logger.info("no verifier state at %s; starting from the deployment block", path)
            return cls(path, StateFile(chain_id=chain_id, deal_manager=deal_manager))
        try:
            data = StateFile.model_validate_json(path.read_bytes())
        except OSError as error:
            raise ConfigError(f"cannot read verifier state {path}: {error.strerror}") from error
        except ValidationError as error:
            raise ConfigError(
                f"verifier state {path} is not valid: {error}; move it away to start over "
                "(the verifier then reads its own challenges back from the chain)"
            ) from error
        if data.version != STATE_VERSION:
            raise ConfigError(f"verifier state {path} has version {data.version}, this verifier reads {STATE_VERSION}")
        if data.chain_id != chain_id or data.deal_manager.lower() != deal_manager.lower():
            raise ConfigError(
                f"verifier state {path} is for DealManager {data.deal_manager} on chain {data.chain_id}, "
                f"not {deal_manager} on chain {chain_id}: pass another --state-dir for this deployment"
            )
        return cls(path, data)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(self.data.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    # ------------------------------------------------------------- batches

    def add_batch(self, batch_hash: str, block: int, entries: list[EpochProofEntry]) -> None:
        self.data.batches[batch_hash] = BatchRecord(block=block, entries=[EntryRecord.of(entry) for entry in entries])

    def proof_batch(self, record: ProofRecord) -> ProofBatch:
        batch = self.data.batches[record.batch_hash]
        return ProofBatch(
            entries=tuple(entry.to_entry() for entry in batch.entries), index=record.entry_index, block=batch.block
        )

    def entry(self, record: ProofRecord) -> EpochProofEntry:
        return self.data.batches[record.batch_hash].entries[record.entry_index].to_entry()

    def prune(self) -> None:
        """Drop closed proofs and the batches that no open proof refers to."""
        for key in [key for key, record in self.data.proofs.items() if record.status == "closed"]:
            del self.data.proofs[key]
        used = {record.batch_hash for record in self.data.proofs.values()}
        for batch_hash in [batch_hash for batch_hash in self.data.batches if batch_hash not in used]:
            del self.data.batches[batch_hash]
