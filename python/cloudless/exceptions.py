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


class ChainError(CloudlessError, RuntimeError):
    """A chain call failed or the chain is not in the expected state."""


class PackageError(CloudlessError, ValueError):
    """A function package is malformed or does not match its CID."""


class WasmCallError(CloudlessError, RuntimeError):
    """A function call failed inside the Wasm runtime.

    `kind` is a stable, machine-readable name (for example "fuel_exhausted")
    that the node puts into the error envelope it returns to callers.
    """

    kind = "wasm_error"

    def __init__(self, message: str, *, fuel_used: int = 0) -> None:
        super().__init__(message)
        self.fuel_used = fuel_used


class ReceiptError(CloudlessError, ValueError):
    """A call request, receipt or Merkle proof is invalid."""


class ServiceError(CloudlessError, RuntimeError):
    """A provider node, gateway or matcher could not do its job."""
