"""Re-execution of sampled calls with the project's Wasm runtime, byte for byte as a provider node runs them.

A node runs a call with `WasmRuntime.call(package, function, input,
context=CallContext(...))` and signs `keccak256(output)` and the fuel used.
A failed call's output is the error envelope that
`cloudless.node.models.error_envelope` builds from the error kind and message.
`Reexecutor.run` repeats exactly that, so an honest receipt's output hash and
fuel equal the re-execution's.

Two cases cannot be re-executed faithfully and give an `Inconclusive`
result: a package with the "files" grant (the call saw the node's per-deal
files, which the verifier does not have) and a call that hit its wall-time
limit (time depends on the machine).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

from cloudless.cid import cid_from_bytes
from cloudless.exceptions import InvalidCidError, PackageUnavailableError, WallTimeExceededError, WasmCallError
from cloudless.node.models import error_envelope
from cloudless.node.packages import PackageCache
from cloudless.receipts.eip712 import Domain, hash_input, hash_output
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.runtime import CallContext, WasmRuntime
from cloudless.verifier.findings import Finding, FindingKind

__all__ = ["Inconclusive", "Outcome", "Reexecutor", "outcome_finding", "sample_indices"]

logger = logging.getLogger("cloudless.verifier")


@dataclass(frozen=True)
class Outcome:
    """Output bytes (or error envelope) of one call and the fuel it used."""

    output: bytes
    fuel_used: int
    error_kind: str | None = None

    @property
    def output_hash(self) -> bytes:
        return hash_output(self.output)

    def matches(self, receipt: SignedReceipt) -> bool:
        """Return whether `receipt` commits to this output hash and fuel, which is what replicas must agree on."""
        return receipt.output_hash == self.output_hash and receipt.fuel_used == self.fuel_used


@dataclass(frozen=True)
class Inconclusive:
    """Reason that a call could not be re-executed."""

    reason: str


def sample_indices(count: int, rate: float, seed: str) -> list[int]:
    """Pick which of `count` receipts to re-execute, in ascending order.

    Picks ceil(`rate` x `count`) receipts, at least 1 when `count` > 0, and
    none when `rate` is 0. The same `seed` always picks the same receipts.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"sample rate must be from 0 to 1, got {rate}")
    if count == 0 or rate == 0:
        return []
    size = min(count, max(1, math.ceil(rate * count)))
    return sorted(random.Random(seed).sample(range(count), size))


def outcome_finding(receipt: SignedReceipt, outcome: Outcome, *, worker_id: int, epoch: int, leaf_index: int | None) -> Finding | None:
    """Return an OUTPUT_MISMATCH finding when the receipt's output hash or fuel differ from the re-execution."""
    if outcome.matches(receipt):
        return None
    return Finding(
        FindingKind.OUTPUT_MISMATCH,
        worker_id,
        epoch,
        f"receipt sequence {receipt.sequence} commits output 0x{receipt.output_hash.hex()} and {receipt.fuel_used} "
        f"fuel, re-execution gives 0x{outcome.output_hash.hex()} and {outcome.fuel_used} fuel"
        + (f" ({outcome.error_kind})" if outcome.error_kind else "")
        + "; provable on chain only with agreeing receipts of two other providers",
        leaf_index=leaf_index,
        receipt=receipt,
    )


class Reexecutor:
    """Runs calls on packages fetched by CID, cached under `package_dir`; compiled modules go to `compiled_dir`.

    The Wasm runtime starts on the first call, so a verifier that never
    re-executes never starts its epoch ticker thread. Call `close` to stop it.
    """

    def __init__(self, package_dir: Path, compiled_dir: Path, sources: list[str], domain: Domain) -> None:
        self._package_dir = package_dir
        self._compiled_dir = compiled_dir
        self._sources = list(sources)
        self._domain = domain
        self._runtime: WasmRuntime | None = None
        self._packages: PackageCache | None = None

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
            self._packages = None

    def _cache(self) -> PackageCache:
        if self._packages is None:
            self._runtime = WasmRuntime(self._compiled_dir)
            self._packages = PackageCache(self._runtime, self._package_dir, self._sources)
        return self._packages

    def run(self, app_cid: bytes, request: SignedCallRequest, input_bytes: bytes) -> Outcome | Inconclusive:
        """Run the call of `request` on `input_bytes` with package `app_cid` (binary CID), as a node would."""
        if hash_input(input_bytes) != request.input_hash:
            return Inconclusive(f"the input does not hash to the request's input hash 0x{request.input_hash.hex()}")
        try:
            cid = cid_from_bytes(app_cid)
        except InvalidCidError as error:
            return Inconclusive(f"invalid app CID 0x{app_cid.hex()}: {error}")

        packages = self._cache()
        if not packages.ensure(cid):
            sources = ", ".join(self._sources) or "none configured"
            return Inconclusive(f"package {cid} is not available from the package sources ({sources})")
        try:
            loaded = packages.get(cid)
        except PackageUnavailableError as error:
            return Inconclusive(str(error))
        if loaded.files_granted:
            return Inconclusive(f"package {cid} has the \"files\" grant, so its calls read the node's per-deal files")

        digest = request.digest(self._domain)
        # The same parameters that cloudless.node.calls.CallService passes.
        context = CallContext(
            deal_id=request.deal_id,
            caller=request.signer,
            function=request.function_name,
            request_id="0x" + digest.hex(),
        )
        assert self._runtime is not None
        try:
            result = self._runtime.call(loaded, request.function_name, input_bytes, context=context)
        except WallTimeExceededError as error:
            return Inconclusive(f"the call hit its wall-time limit, which depends on the machine: {error}")
        except WasmCallError as failure:
            return Outcome(error_envelope(failure.kind, str(failure)), failure.fuel_used, failure.kind)
        return Outcome(result.output, result.fuel_used)
