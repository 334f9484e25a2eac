"""Every error that Cloudless raises on purpose.

One root, `CloudlessError`, and a base per domain. Each specific error also
derives from the built-in exception that fits it, builds its message from the
offending values, and says how to fix the problem.
"""

from __future__ import annotations


class CloudlessError(Exception):
    """Root of every error that Cloudless raises on purpose."""


class ConfigError(CloudlessError, ValueError):
    """A configuration file, flag or deployment record is missing or invalid."""


class UnsupportedChainError(ConfigError):
    """A command that only runs on local and test networks was pointed at another chain.

    `chain_id` is the chain id that the RPC endpoint reported.
    """

    def __init__(self, message: str, *, chain_id: int) -> None:
        super().__init__(message)
        self.chain_id = chain_id


class ChainError(CloudlessError, RuntimeError):
    """A chain call failed or the chain is not in the expected state."""


class PackageError(CloudlessError, ValueError):
    """A function package is malformed or does not match its CID."""


class InvalidCidError(PackageError):
    """A CID is malformed or is not a CIDv1 of raw bytes with a sha2-256 multihash."""


class PackageIntegrityError(PackageError):
    """Bytes do not match the CID or sha256 digest they were requested by.

    `expected` and `actual` are the two CIDs (or hex digests) compared.
    """

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class PackageFormatError(PackageError):
    """A function package is not a canonical package tar, is too large or contains invalid Wasm."""


class ImportNotAllowedError(PackageFormatError):
    """A module imports a host function that its grants do not allow, or that no grant allows.

    `module` is the importing module, `import_name` the import as
    "namespace.name" (for example "wasi_snapshot_preview1.clock_time_get"),
    and `grant` the manifest grant that would allow it, or None when no
    grant does (for example the WASI socket functions).
    """

    def __init__(self, message: str, *, module: str, import_name: str, grant: str | None) -> None:
        super().__init__(message)
        self.module = module
        self.import_name = import_name
        self.grant = grant


class ManifestError(PackageError):
    """A package manifest is missing, is not JSON, breaks the schema or exceeds host limits.

    `field` is the dotted path of the offending field (for example
    "limits.fuel"), or "" when the manifest as a whole is at fault.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class WasmCallError(CloudlessError, RuntimeError):
    """A function call failed inside the Wasm runtime.

    `kind` is a stable, machine-readable name (for example "fuel_exhausted")
    that the node puts into the error envelope it returns to callers.
    """

    kind = "wasm_error"

    def __init__(self, message: str, *, fuel_used: int = 0) -> None:
        super().__init__(message)
        self.fuel_used = fuel_used


class FunctionNotFoundError(WasmCallError):
    """The requested function is not declared in the package manifest.

    `available` lists the functions that the manifest declares.
    """

    kind = "function_not_found"

    def __init__(self, message: str, *, fuel_used: int = 0, available: tuple[str, ...] = ()) -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.available = available


class FuelExhaustedError(WasmCallError):
    """The call used all of its fuel (`fuel_limit`, in Wasm fuel units) before returning."""

    kind = "fuel_exhausted"

    def __init__(self, message: str, *, fuel_used: int = 0, fuel_limit: int = 0) -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.fuel_limit = fuel_limit


class MemoryLimitError(WasmCallError):
    """The guest needed more linear memory than `memory_limit_bytes` allows."""

    kind = "memory_limit"

    def __init__(self, message: str, *, fuel_used: int = 0, memory_limit_bytes: int = 0) -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.memory_limit_bytes = memory_limit_bytes


class WallTimeExceededError(WasmCallError):
    """The call ran longer than its wall-time limit (`timeout_ms`, in milliseconds)."""

    kind = "timeout"

    def __init__(self, message: str, *, fuel_used: int = 0, timeout_ms: int = 0) -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.timeout_ms = timeout_ms


class WasmTrapError(WasmCallError):
    """The guest trapped for a reason other than fuel, memory or time (for example a panic)."""

    kind = "trap"


class StackOverflowError(WasmTrapError):
    """The guest exhausted the Wasm call stack, usually by deep or unbounded recursion."""

    kind = "stack_overflow"


class GuestError(WasmCallError):
    """The guest function returned `{"error": ...}`, and `guest_message` is that error text."""

    kind = "guest_error"

    def __init__(self, message: str, *, fuel_used: int = 0, guest_message: str = "") -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.guest_message = guest_message


class InvalidInputError(WasmCallError, ValueError):
    """The call input was rejected before the guest ran (for example it is too large)."""

    kind = "invalid_input"


class InvalidOutputError(WasmCallError):
    """The guest broke the call ABI, for example with a bad output pointer or non-JSON output."""

    kind = "invalid_output"


class OutputTooLargeError(InvalidOutputError):
    """The guest returned more output bytes than the host accepts (`max_output_bytes`)."""

    kind = "output_too_large"

    def __init__(self, message: str, *, fuel_used: int = 0, output_bytes: int = 0, max_output_bytes: int = 0) -> None:
        super().__init__(message, fuel_used=fuel_used)
        self.output_bytes = output_bytes
        self.max_output_bytes = max_output_bytes


class ReceiptError(CloudlessError, ValueError):
    """A call request, receipt or Merkle proof is invalid."""


class ServiceError(CloudlessError, RuntimeError):
    """A provider node, gateway or matcher could not do its job."""


class ContractRevertError(ChainError):
    """A contract call reverted with a custom error.

    `error_name` and `error_args` are the decoded custom error, for example
    `DealNotPeerSigner` and `{"workerId": 1, "caller": "0x...", "signer": "0x..."}`.
    """

    def __init__(self, error_name: str, error_args: dict[str, object], hint: str = "") -> None:
        shown = ", ".join(f"{key}={value}" for key, value in error_args.items())
        message = f"contract call reverted with {error_name}({shown})"
        if hint:
            message += f": {hint}"
        super().__init__(message)
        self.error_name = error_name
        self.error_args = error_args


class TransactionFailedError(ChainError):
    """A transaction was mined but failed, or did not get mined in time."""


class InsufficientBalanceError(ChainError):
    """The signer has less of a token than an action needs.

    `balance` and `required` are in the token's base units.
    """

    def __init__(self, message: str, *, balance: int, required: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.required = required


class DepositBelowReserveError(ConfigError):
    """A new deal's deposit does not cover the reserve that `createDeal` requires.

    `deposit` and `reserve` are in payment-token base units.
    """

    def __init__(self, message: str, *, deposit: int, reserve: int) -> None:
        super().__init__(message)
        self.deposit = deposit
        self.reserve = reserve


class InvalidSignatureError(ReceiptError):
    """A signature is malformed or was not made by the expected signer."""


class RequestExpiredError(ReceiptError):
    """A call request arrived after its deadline."""


class MerkleProofError(ReceiptError):
    """A Merkle tree, proof or leaf is malformed, or a digest is not in the tree."""


class ReceiptStoreError(ReceiptError):
    """The receipt store on disk is corrupt or an append breaks its order."""


class PackageUnavailableError(ServiceError):
    """A deal's package is not loaded on the node, because no package source served valid bytes for its CID."""


class CallRejectedError(ServiceError):
    """A node or gateway rejected a call. `status` is the HTTP status and `kind` the error kind it returns."""

    def __init__(self, message: str, *, status: int, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class ReceiptVerificationError(ReceiptError):
    """A worker's receipt does not match the call request, the deal or the peer signer on chain."""
