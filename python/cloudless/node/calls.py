"""Running one signed call on a worker: checks, the Wasm call and the durable signed receipt."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cloudless.exceptions import (
    CallRejectedError,
    ChainError,
    FunctionNotFoundError,
    InvalidInputError,
    InvalidSignatureError,
    PackageUnavailableError,
    RequestExpiredError,
    WasmCallError,
)
from cloudless.node.callers import CallerPolicy
from cloudless.node.cheats import Cheats
from cloudless.node.evidence_store import CallEvidence, EvidenceStore
from cloudless.node.models import CallBody, CallReply, ErrorInfo, error_envelope
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock
from cloudless.node.workers import TrackedWorker, WorkerTracker
from cloudless.receipts.eip712 import Domain, Receipt, hash_input, hash_output
from cloudless.receipts.models import SignedReceipt
from cloudless.receipts.store import ReceiptStore
from cloudless.runtime import CallContext

__all__ = ["BUSY_RETRY_AFTER_SECONDS", "CallAdmission", "CallOutcome", "CallService", "ReplayGuard"]

logger = logging.getLogger("cloudless.node")

# HTTP status of a call that ran but failed, by error kind. Kinds not listed get 200 with ok=false.
_FAILED_CALL_STATUS = {FunctionNotFoundError.kind: 404, InvalidInputError.kind: 400}


# Retry-After of a "busy" rejection, in seconds. An estimate: the example functions
# run in milliseconds, but one call may run up to its manifest's timeout_ms.
BUSY_RETRY_AFTER_SECONDS = 1


class CallAdmission:
    """Count of calls running on the node, which may not exceed `limit`.

    `try_enter` never waits: past the limit it returns False, and the node
    rejects the call as busy instead of queueing it. Thread-safe.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the concurrent call limit must be at least 1, got {limit}")
        self.limit = limit
        self.rejected = 0
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def try_enter(self) -> bool:
        """Take a slot and return True, or count a rejection and return False when all `limit` slots are taken."""
        with self._lock:
            if self._running >= self.limit:
                self.rejected += 1
                return False
            self._running += 1
            return True

    def leave(self) -> None:
        """Free the slot that a successful `try_enter` took."""
        with self._lock:
            if self._running == 0:
                raise RuntimeError("CallAdmission.leave called more often than try_enter succeeded")
            self._running -= 1

    def busy_message(self) -> str:
        return f"node busy: {self.running} calls running, the limit is {self.limit}; retry later"


class ReplayGuard:
    """Request digests that this node has already accepted.

    NOTE: the set only grows. A digest can never be replayed after its
    deadline anyway, but the node does not prune expired ones.
    """

    def __init__(self, seen: Iterable[bytes] = ()) -> None:
        self._seen: set[bytes] = set(seen)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def reserve(self, digest: bytes) -> bool:
        """Mark `digest` as seen, and return False if it already was."""
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            return True

    def release(self, digest: bytes) -> None:
        """Forget a digest whose call did not run, so that the caller may send it again."""
        with self._lock:
            self._seen.discard(digest)

    @classmethod
    def from_store(cls, store: ReceiptStore, also_seen: Iterable[bytes] = ()) -> ReplayGuard:
        """Seed the guard with the request hash of every stored receipt and with `also_seen`.

        `also_seen` is for requests whose receipts were pruned while their
        deadline had not passed: a second receipt for one of them would be
        proof of a replay against the provider.
        """
        seen = [
            receipt.request_hash
            for worker_id in store.workers()
            for epoch in store.epochs(worker_id)
            for receipt in store.receipts(worker_id, epoch)
        ]
        return cls([*seen, *also_seen])


@dataclass(frozen=True)
class CallOutcome:
    """HTTP status and reply of a call that ran and got a receipt."""

    status: int
    reply: CallReply


class CallService:
    """Check and run calls for the workers that `tracker` tracks.

    `signer_keys` maps each peer signer's checksum address to its private key.
    `runtime` is a `WasmRuntime`, which is safe to call from several threads.
    With `evidence`, each call's signed request and input are stored before
    its receipt. `cheats` are deliberate protocol violations for tests.
    """

    def __init__(
        self,
        *,
        tracker: WorkerTracker,
        packages: PackageCache,
        runtime: object,
        store: ReceiptStore,
        clock: EpochClock,
        domain: Domain,
        signer_keys: Mapping[str, str],
        replay: ReplayGuard,
        now: Callable[[], float] = time.time,
        deal_data_root: Path | None = None,
        evidence: EvidenceStore | None = None,
        cheats: Cheats | None = None,
        callers: CallerPolicy | None = None,
    ) -> None:
        self._tracker = tracker
        self._packages = packages
        self._runtime = runtime
        self._store = store
        self._clock = clock
        self._domain = domain
        self._signer_keys = dict(signer_keys)
        self._replay = replay
        self._now = now
        self._evidence = evidence
        self._cheats = cheats or Cheats()
        self._callers = callers or CallerPolicy(None)
        # Each deal's files live in `deal_data_root/deal-<id>`, which guests
        # with the "files" grant see at /data. None: no directory is mapped.
        self._deal_data_root = deal_data_root

    def handle(self, worker_id: int, body: CallBody) -> CallOutcome:
        """Check and run one call. Raises CallRejectedError when the call does not run."""
        tracked = self._check_worker(worker_id)
        request = body.request
        if request.deal_id != tracked.deal_id:
            raise CallRejectedError(
                f"request is for deal {request.deal_id} but worker {worker_id} serves deal {tracked.deal_id}",
                status=400,
                kind="wrong_deal",
            )
        self._check_signature(body)
        self._check_caller(body)
        input_bytes = self._check_input(body)

        digest = request.digest(self._domain)
        if not self._replay.reserve(digest):
            raise CallRejectedError(
                f"request 0x{digest.hex()} was already run; sign a new request with another nonce",
                status=409,
                kind="replay",
            )
        try:
            loaded = self._packages.get(tracked.app_cid)
        except PackageUnavailableError as error:
            self._replay.release(digest)
            raise CallRejectedError(str(error), status=503, kind="package_unavailable") from error

        try:
            return self._run(tracked, body, input_bytes, digest, loaded)
        except BaseException:
            # No receipt was stored, so the caller may send the same request again.
            self._replay.release(digest)
            raise

    def _deal_data_dir(self, deal_id: int) -> Path | None:
        if self._deal_data_root is None:
            return None
        directory = self._deal_data_root / f"deal-{deal_id}"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _check_worker(self, worker_id: int) -> TrackedWorker:
        tracked = self._tracker.get(worker_id)
        if tracked is None:
            raise CallRejectedError(
                f"worker {worker_id} is not on any peer of this node", status=404, kind="unknown_worker"
            )
        if not tracked.serves_calls(self._clock.current()):
            raise CallRejectedError(
                f"worker {worker_id} of deal {tracked.deal_id} is not active (deal status "
                f"{tracked.deal_status.name}); call another worker of the deal",
                status=409,
                kind="worker_not_active",
            )
        return tracked

    def _check_signature(self, body: CallBody) -> None:
        try:
            body.request.verify(self._domain, now=int(self._now()))
        except RequestExpiredError as error:
            raise CallRejectedError(str(error), status=400, kind="request_expired") from error
        except InvalidSignatureError as error:
            raise CallRejectedError(str(error), status=401, kind="invalid_signature") from error

    def _check_caller(self, body: CallBody) -> None:
        request = body.request
        try:
            allowed = self._callers.allows(request.deal_id, request.signer, self._clock.current())
        except ChainError as error:
            raise CallRejectedError(
                f"could not read the allowed callers of deal {request.deal_id}: {error}; retry later",
                status=503,
                kind="chain_unavailable",
            ) from error
        if not allowed:
            raise CallRejectedError(
                f"caller {request.signer} is not an allowed caller of deal {request.deal_id}; "
                "the deal's owner adds callers with `cloudless deal callers`",
                status=403,
                kind="caller_not_allowed",
            )

    @staticmethod
    def _check_input(body: CallBody) -> bytes:
        try:
            input_bytes = base64.b64decode(body.input_b64, validate=True)
        except binascii.Error as error:
            raise CallRejectedError(f"input_b64 is not valid base64: {error}", status=400, kind="invalid_request") from error
        if hash_input(input_bytes) != body.request.input_hash:
            raise CallRejectedError(
                f"keccak256 of the {len(input_bytes)} input bytes is 0x{hash_input(input_bytes).hex()}, "
                f"but the request signs input_hash 0x{body.request.input_hash.hex()}",
                status=400,
                kind="input_hash_mismatch",
            )
        return input_bytes

    def _run(
        self, tracked: TrackedWorker, body: CallBody, input_bytes: bytes, digest: bytes, loaded: object
    ) -> CallOutcome:
        function = body.request.function_name
        error: ErrorInfo | None = None
        status = 200
        stdout = b""
        started = time.perf_counter()
        context = CallContext(
            deal_id=tracked.deal_id,
            caller=body.request.signer,
            function=function,
            request_id="0x" + digest.hex(),
        )
        try:
            result = self._runtime.call(  # type: ignore[attr-defined]
                loaded, function, input_bytes, context=context, data_dir=self._deal_data_dir(tracked.deal_id)
            )
        except WasmCallError as failure:
            available = list(failure.available) if isinstance(failure, FunctionNotFoundError) else None
            error = ErrorInfo(kind=failure.kind, message=str(failure), available=available)
            output = error_envelope(failure.kind, str(failure))
            fuel_used = failure.fuel_used
            wall_ms = (time.perf_counter() - started) * 1000
            status = _FAILED_CALL_STATUS.get(failure.kind, 200)
        else:
            output = self._cheats.call_output(result.output)
            fuel_used = result.fuel_used
            stdout = result.stdout
            wall_ms = result.wall_ms

        call = CallEvidence(request_hash=digest, request=body.request, input=input_bytes)
        receipt = self._sign_and_store(tracked, call, output, fuel_used)
        reply = CallReply(
            ok=error is None,
            output_b64=base64.b64encode(output).decode("ascii"),
            receipt=receipt,
            error=error,
            stdout_b64=base64.b64encode(stdout).decode("ascii"),
            wall_ms=wall_ms,
        )
        logger.info(
            "call deal %d worker %d request %s function %s: status %d, %s, %d fuel, epoch %d, sequence %d, %.1f ms",
            tracked.deal_id,
            tracked.worker_id,
            digest.hex()[:12],
            function,
            status,
            "ok" if error is None else error.kind,
            fuel_used,
            receipt.epoch,
            receipt.sequence,
            wall_ms,
        )
        return CallOutcome(status=status, reply=reply)

    def _sign_and_store(self, tracked: TrackedWorker, call: CallEvidence, output: bytes, fuel_used: int) -> SignedReceipt:
        """Sign the receipt in the current chain epoch and store it and its call durably before the reply goes out.

        The call goes to disk first: a crash before the receipt leaves a call
        without a receipt, which is harmless, and never the reverse, which
        would leave a receipt that no challenge answer could open.
        """
        key = self._signer_keys[tracked.signer]
        output_hash = hash_output(output)
        worker_id = tracked.worker_id
        digest = call.request_hash
        with self._clock.lock(worker_id):
            epoch = self._clock.current()
            if self._evidence is not None:
                self._evidence.append(worker_id, epoch, call)

            def build(sequence: int) -> SignedReceipt:
                receipt = Receipt(
                    worker_id=worker_id,
                    request_hash=digest,
                    app_cid=tracked.deal.app_cid,
                    output_hash=output_hash,
                    fuel_used=fuel_used,
                    epoch=epoch,
                    sequence=sequence,
                )
                return SignedReceipt.sign(receipt, key, self._domain)

            receipt = self._store.append_next(worker_id, build)
            if self._cheats:
                self._run_cheat(self._cheats.after_receipt, tracked, call, receipt)
        if self._cheats:
            self._run_cheat(self._cheats.after_call, tracked, call, receipt)
        return receipt

    @staticmethod
    def _run_cheat(
        hook: Callable[[TrackedWorker, CallEvidence, SignedReceipt], None],
        tracked: TrackedWorker,
        call: CallEvidence,
        receipt: SignedReceipt,
    ) -> None:
        # The real call succeeded, so a failing cheat must not turn it into an error reply.
        try:
            hook(tracked, call, receipt)
        except Exception as error:  # noqa: BLE001
            logger.exception("cheat hook %s failed for worker %d: %s", hook.__name__, tracked.worker_id, error)
