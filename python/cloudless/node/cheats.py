"""Deliberate protocol violations, for tests and demonstrations of the proof system only.

A node config may list cheats under `cheat`. Each one makes the node break one
rule in a way that a verifier, a challenge or a fraud proof should catch:

    fabricate_call     once per epoch with calls, add a receipt for a request that no caller signed
    inflate_usage      report twice the real fuel plus 1000 in proofs of epochs with calls (the tree stays honest)
    wrong_output       return a made-up output and sign the receipt over it
    skip_proofs        never submit epoch proofs
    replay_epoch       copy the previous epoch's receipts into the current epoch, re-signed
    replay_deal        copy a receipt of one deal's request into a worker of another deal
    equivocate         for every call, also store a second receipt with another output hash
    ignore_challenges  never answer challenges

Cheats that add receipts store them like real ones, with a request and input,
so the receipts endpoint serves them and the challenge answerer opens them
like any other receipt.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from cloudless.node.evidence_store import CallEvidence, EvidenceStore
from cloudless.receipts.eip712 import SIGNATURE_LENGTH, CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.receipts.store import EpochSummary, ReceiptStore

if TYPE_CHECKING:
    from cloudless.node.prover import EpochClock
    from cloudless.node.workers import TrackedWorker, WorkerTracker

__all__ = ["CHEAT_NAMES", "Cheats", "check_cheat_names"]

logger = logging.getLogger("cloudless.node")

CHEAT_NAMES: Final = (
    "fabricate_call",
    "inflate_usage",
    "wrong_output",
    "skip_proofs",
    "replay_epoch",
    "replay_deal",
    "equivocate",
    "ignore_challenges",
)

_UINT64_MAX: Final = 2**64 - 1
# Output that `wrong_output` returns in place of the real one: valid JSON, so
# callers and gateways parse it, and different from any real output of the examples.
WRONG_OUTPUT: Final = b'{"wrong_output":true}'
_FABRICATED_INPUT: Final = b'{"fabricated":true}'
_FABRICATED_OUTPUT: Final = b'{"fabricated":true}'
_EQUIVOCATED_OUTPUT: Final = b'{"equivocated":true}'
# A request signature of 65 zero bytes recovers no signer, on chain or here.
NO_SIGNATURE: Final = bytes(SIGNATURE_LENGTH)
_NO_SIGNER: Final = "0x" + "00" * 20


def check_cheat_names(names: Iterable[str]) -> list[str]:
    """Return the names without repeats, in the given order; raise ValueError naming an unknown one."""
    checked: list[str] = []
    for name in names:
        if name not in CHEAT_NAMES:
            raise ValueError(f"unknown cheat {name!r}; allowed values: {', '.join(CHEAT_NAMES)}")
        if name not in checked:
            checked.append(name)
    return checked


class Cheats:
    """The active cheats and their hooks in the call path, the prover, the loop and the answerer.

    The hooks that add receipts need the stores, the EIP-712 domain, the peer
    signer keys (checksum address to key), the tracker and the epoch clock.
    Without any cheat every hook does nothing.
    """

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        store: ReceiptStore | None = None,
        evidence: EvidenceStore | None = None,
        domain: Domain | None = None,
        signer_keys: Mapping[str, str] | None = None,
        tracker: WorkerTracker | None = None,
        clock: EpochClock | None = None,
    ) -> None:
        self.names = frozenset(check_cheat_names(names))
        self._store = store
        self._evidence = evidence
        self._domain = domain
        self._signer_keys = dict(signer_keys or {})
        self._tracker = tracker
        self._clock = clock
        self._lock = threading.Lock()
        # (worker id, epoch) pairs that a once-per-epoch cheat already handled.
        self._fabricated: set[tuple[int, int]] = set()
        self._replayed_epochs: set[tuple[int, int]] = set()
        self._replayed_deals: set[tuple[int, int]] = set()

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self.names)

    def log_active(self) -> None:
        """Log a warning for each active cheat, so nobody runs one by mistake."""
        for name in sorted(self.names):
            logger.warning(
                "cheat %r is active: this node breaks the protocol on purpose and will be slashed; "
                "remove it from the `cheat` list of the config unless this is a test",
                name,
            )

    # Hooks without receipts

    def proof_summary(self, summary: EpochSummary) -> EpochSummary:
        """Return the totals to submit in an epoch proof: `inflate_usage` raises the fuel of epochs with calls.

        Epochs without calls keep 0, because the DealManager rejects usage
        without calls outright.
        """
        if "inflate_usage" not in self.names or summary.calls == 0:
            return summary
        inflated = min(summary.fuel_total * 2 + 1000, _UINT64_MAX)
        return summary._replace(fuel_total=inflated)

    def call_output(self, output: bytes) -> bytes:
        """Return the output to sign and send for a successful call: `wrong_output` replaces it."""
        return WRONG_OUTPUT if "wrong_output" in self.names else output

    @property
    def skip_proofs(self) -> bool:
        return "skip_proofs" in self.names

    @property
    def ignore_challenges(self) -> bool:
        return "ignore_challenges" in self.names

    # Hooks that add receipts

    def _append(
        self, worker_id: int, epoch: int, key: str, receipt_fields: dict[str, object], call: CallEvidence
    ) -> SignedReceipt:
        """Store `call`, then a receipt of `receipt_fields` with the worker's next sequence. Needs the worker's clock lock."""
        assert self._store is not None and self._domain is not None
        if self._evidence is not None:
            self._evidence.append(worker_id, epoch, call)
        domain = self._domain

        def build(sequence: int) -> SignedReceipt:
            receipt = Receipt(worker_id=worker_id, epoch=epoch, sequence=sequence, **receipt_fields)  # type: ignore[arg-type]
            return SignedReceipt.sign(receipt, key, domain)

        return self._store.append_next(worker_id, build)

    def after_receipt(self, tracked: TrackedWorker, call: CallEvidence, receipt: SignedReceipt) -> None:
        """Add `fabricate_call` and `equivocate` receipts next to a real one. Runs under the worker's clock lock."""
        if not self.names & {"fabricate_call", "equivocate"}:
            return
        key = self._signer_keys[tracked.signer]
        worker_id, epoch = receipt.worker_id, receipt.epoch
        if "equivocate" in self.names:
            second = self._append(
                worker_id,
                epoch,
                key,
                {
                    "request_hash": receipt.request_hash,
                    "app_cid": receipt.app_cid,
                    "output_hash": hash_output(_EQUIVOCATED_OUTPUT),
                    "fuel_used": receipt.fuel_used,
                },
                call,
            )
            logger.warning(
                "cheat equivocate: stored a second receipt (sequence %d) for request %s of worker %d epoch %d",
                second.sequence,
                receipt.request_hash.hex()[:12],
                worker_id,
                epoch,
            )
        if "fabricate_call" in self.names:
            with self._lock:
                if (worker_id, epoch) in self._fabricated:
                    return
                self._fabricated.add((worker_id, epoch))
            self._fabricate(tracked, key, call, receipt)

    def _fabricate(self, tracked: TrackedWorker, key: str, call: CallEvidence, receipt: SignedReceipt) -> None:
        assert self._domain is not None
        request = CallRequest.for_input(
            deal_id=tracked.deal_id,
            function_name=call.request.function_name,
            input=_FABRICATED_INPUT,
            nonce=secrets.randbits(256),
            deadline=call.request.deadline,
        )
        signed = SignedCallRequest.from_request(request, NO_SIGNATURE, _NO_SIGNER)
        fabricated_call = CallEvidence(request_hash=signed.digest(self._domain), request=signed, input=_FABRICATED_INPUT)
        fabricated = self._append(
            receipt.worker_id,
            receipt.epoch,
            key,
            {
                "request_hash": fabricated_call.request_hash,
                "app_cid": receipt.app_cid,
                "output_hash": hash_output(_FABRICATED_OUTPUT),
                "fuel_used": receipt.fuel_used,
            },
            fabricated_call,
        )
        logger.warning(
            "cheat fabricate_call: stored receipt %d for unsigned request %s of worker %d epoch %d",
            fabricated.sequence,
            fabricated_call.request_hash.hex()[:12],
            receipt.worker_id,
            receipt.epoch,
        )

    def after_call(self, tracked: TrackedWorker, call: CallEvidence, receipt: SignedReceipt) -> None:
        """Copy a real receipt into a worker of another deal (`replay_deal`). Runs without any clock lock held."""
        if "replay_deal" not in self.names:
            return
        assert self._tracker is not None and self._clock is not None
        for other in self._tracker.all():
            if other.deal_id == tracked.deal_id or other.signer not in self._signer_keys:
                continue
            with self._clock.lock(other.worker_id):
                epoch = self._clock.current()
                if not other.serves_calls(epoch):
                    continue
                with self._lock:
                    if (other.worker_id, epoch) in self._replayed_deals:
                        return
                    self._replayed_deals.add((other.worker_id, epoch))
                copy = self._append(
                    other.worker_id,
                    epoch,
                    self._signer_keys[other.signer],
                    {
                        "request_hash": receipt.request_hash,
                        "app_cid": receipt.app_cid,
                        "output_hash": receipt.output_hash,
                        "fuel_used": receipt.fuel_used,
                    },
                    call,
                )
            logger.warning(
                "cheat replay_deal: copied request %s of deal %d into worker %d of deal %d (epoch %d, sequence %d)",
                receipt.request_hash.hex()[:12],
                tracked.deal_id,
                other.worker_id,
                other.deal_id,
                epoch,
                copy.sequence,
            )
            return

    def before_proofs(self, tracked: TrackedWorker) -> int:
        """Copy the previous epoch's receipts into the current one (`replay_epoch`); return how many were copied."""
        if "replay_epoch" not in self.names:
            return 0
        assert self._store is not None and self._clock is not None
        worker_id = tracked.worker_id
        key = self._signer_keys.get(tracked.signer)
        if key is None:
            return 0
        with self._clock.lock(worker_id):
            epoch = self._clock.current()
            if epoch == 0 or (worker_id, epoch) in self._replayed_epochs or not tracked.serves_calls(epoch):
                return 0
            self._replayed_epochs.add((worker_id, epoch))
            previous = self._store.receipts(worker_id, epoch - 1)
            replayed = {receipt.request_hash for receipt in self._store.receipts(worker_id, epoch)}
            calls = self._evidence.calls(worker_id, epoch - 1) if self._evidence is not None else {}
            copied = 0
            for receipt in previous:
                # A restarted node finds the copies it made before the restart.
                if receipt.request_hash in replayed or receipt.request_hash not in calls:
                    continue
                self._append(
                    worker_id,
                    epoch,
                    key,
                    {
                        "request_hash": receipt.request_hash,
                        "app_cid": receipt.app_cid,
                        "output_hash": receipt.output_hash,
                        "fuel_used": receipt.fuel_used,
                    },
                    calls[receipt.request_hash],
                )
                copied += 1
        if copied:
            logger.warning(
                "cheat replay_epoch: copied %d receipts of worker %d from epoch %d into epoch %d",
                copied,
                worker_id,
                epoch - 1,
                epoch,
            )
        return copied
