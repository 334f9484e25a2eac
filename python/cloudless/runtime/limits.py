"""Host-side maxima for what a package manifest and a call may request."""

from __future__ import annotations

from dataclasses import dataclass, fields

from cloudless.exceptions import ConfigError

__all__ = ["HostLimits", "MAX_PACKAGE_BYTES"]

MIB = 1024 * 1024

# A package tar (manifest plus all modules) larger than this is rejected
# before it is parsed or hashed.
MAX_PACKAGE_BYTES = 32 * MIB


@dataclass(frozen=True)
class HostLimits:
    """Maxima that a provider node accepts. A manifest that requests more is rejected.

    Units:

    * `max_fuel`: wasmtime fuel units. Wasmtime charges one unit for most Wasm
      operators and nothing for a few (such as `nop` and `drop`), so this is
      roughly a count of executed instructions.
    * `max_memory_bytes`: bytes of linear memory. Wasmtime applies the limit to
      each linear memory of the call's store, not to their sum.
    * `max_timeout_ms`: milliseconds of wall time per call.
    * `max_stdout_limit_bytes`: bytes of stdout, and separately of stderr, that
      a call may capture.
    * `max_input_bytes` and `max_output_bytes`: bytes of call input and of the
      JSON output that the guest writes.
    """

    max_fuel: int = 10_000_000_000
    max_memory_bytes: int = 512 * MIB
    max_timeout_ms: int = 60_000
    max_stdout_limit_bytes: int = 1 * MIB
    max_input_bytes: int = 4 * MIB
    max_output_bytes: int = 4 * MIB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"invalid HostLimits.{field.name}={value!r}: expected a positive int")
