"""Turn wasmtime traps and errors into Cloudless call errors.

Fuel exhaustion and epoch interruption are recognized by the trap code that
the wasmtime C API reports. Wasmtime-py 38's `Trap.trap_code` cannot be used
for fuel: its `TrapCode` enum stops at INTERRUPT (10), so it raises
ValueError for OUT_OF_FUEL (12). The raw code is read through the same C
function instead.

A trap with a code is described from that code, not from `str(trap)`. With
RUST_BACKTRACE=1 set, wasmtime formats a symbolized native backtrace into the
message, which took about 0.2 s per trap on a 2-CPU Linux VM.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import wasmtime
from wasmtime import _ffi as wasmtime_ffi

from cloudless.exceptions import (
    FuelExhaustedError,
    MemoryLimitError,
    StackOverflowError,
    WallTimeExceededError,
    WasmCallError,
    WasmTrapError,
)
from cloudless.runtime.manifest import Limits

__all__ = [
    "TRAP_CODE_INTERRUPT",
    "TRAP_CODE_OUT_OF_FUEL",
    "TRAP_CODE_STACK_OVERFLOW",
    "FailureContext",
    "classify_failure",
    "describe_wasmtime_error",
    "raw_trap_code",
]

# Raw trap codes of the wasmtime C API, numbered from 0 in the order that
# wasmtime-py 38's `_bindings.py` lists `wasmtime_trap_code_enum`. A `loop
# br 0` out of fuel reported 12, an epoch interrupt reported 10, and
# unbounded recursion reported 0.
TRAP_CODE_STACK_OVERFLOW = 0
TRAP_CODE_INTERRUPT = 10
TRAP_CODE_OUT_OF_FUEL = 12

# Short descriptions of the trap codes, in the order of wasmtime-py's TrapCode enum.
_TRAP_DESCRIPTIONS = {
    TRAP_CODE_STACK_OVERFLOW: "call stack exhausted",
    1: "out of bounds memory access",
    2: "misaligned atomic memory access",
    3: "out of bounds table access",
    4: "indirect call to a null table entry",
    5: "indirect call signature mismatch",
    6: "integer overflow",
    7: "integer divide by zero",
    8: "invalid conversion to integer",
    9: "wasm `unreachable` instruction executed",
    TRAP_CODE_INTERRUPT: "interrupted at the epoch deadline",
    TRAP_CODE_OUT_OF_FUEL: "all fuel consumed",
}

# Rust's default allocation-error hook prints this to stderr before it
# aborts, which on wasm32-wasip1 is an `unreachable` trap.
_RUST_ALLOC_FAILURE = re.compile(rb"memory allocation of \d+ bytes failed")
# Rust's default panic hook prints "thread '<name>' panicked at <location>:".
_RUST_PANIC = b"panicked at"
# Instantiation fails with this when a module's initial memory is over the limit.
_INSTANTIATION_MEMORY_LIMIT = "exceeds memory limits"
_STDERR_TAIL_CHARS = 300


@dataclass(frozen=True)
class FailureContext:
    """State of a failed call that decides which error it becomes."""

    function: str
    limits: Limits
    fuel_used: int
    stderr: bytes
    # True when a linear memory of the call grew beyond its initial size
    # and cannot grow by one more 64 KiB page without passing
    # limits.memory_bytes.
    memory_at_limit: bool


def raw_trap_code(trap: wasmtime.Trap) -> int | None:
    """Return the C API trap code of `trap`, or None if it has none."""
    code = wasmtime_ffi.wasmtime_trap_code_t()
    if wasmtime_ffi.wasmtime_trap_code(trap.ptr(), ctypes.byref(code)):
        return int(code.value)
    return None


def describe_wasmtime_error(error: Exception) -> str:
    """Return a one-line summary of a wasmtime error without its native stack backtrace.

    With RUST_BACKTRACE set, wasmtime appends a long native backtrace to every
    message. The summary keeps the error and its "Caused by" chain.
    """
    text = str(error).split("Stack backtrace:", 1)[0].strip()
    header, _, causes = text.partition("Caused by:")
    cause_lines = [line.strip() for line in causes.splitlines() if line.strip()]
    header_lines = [line.strip() for line in header.splitlines() if line.strip()]
    if header_lines and header_lines[0].startswith("error while executing at wasm backtrace"):
        # The wasm frames are bare addresses, so the cause is more useful.
        header_lines = []
    parts = header_lines[:1] + cause_lines
    return ": ".join(parts) if parts else type(error).__name__


def classify_failure(error: Exception, context: FailureContext) -> WasmCallError:
    """Map a wasmtime Trap or WasmtimeError raised during a call to a WasmCallError subclass."""
    function = context.function
    limits = context.limits
    code = raw_trap_code(error) if isinstance(error, wasmtime.Trap) else None
    if code is not None:
        detail = "wasm trap: " + _TRAP_DESCRIPTIONS.get(code, f"trap code {code}")
    elif isinstance(error, wasmtime.ExitTrap):
        detail = f"proc_exit with status {error.code}"
    else:
        detail = describe_wasmtime_error(error)

    if code == TRAP_CODE_OUT_OF_FUEL or (code is None and "all fuel consumed" in detail):
        return FuelExhaustedError(
            f"function {function!r} ran out of fuel: it used all {limits.fuel} units of limits.fuel before "
            "returning; raise limits.fuel in the manifest or reduce the work per call",
            fuel_used=context.fuel_used,
            fuel_limit=limits.fuel,
        )

    if code == TRAP_CODE_INTERRUPT:
        return WallTimeExceededError(
            f"function {function!r} timed out: it ran longer than limits.timeout_ms={limits.timeout_ms} ms "
            "of wall time; raise limits.timeout_ms in the manifest or reduce the work per call",
            fuel_used=context.fuel_used,
            timeout_ms=limits.timeout_ms,
        )

    if code == TRAP_CODE_STACK_OVERFLOW:
        return StackOverflowError(
            f"function {function!r} overflowed the Wasm call stack ({detail}), usually through deep or "
            "unbounded recursion; make the recursion iterative or bound its depth",
            fuel_used=context.fuel_used,
        )

    if isinstance(error, wasmtime.ExitTrap):
        return WasmTrapError(
            f"function {function!r} called proc_exit with status {error.code} instead of returning"
            f"{_stderr_tail(context.stderr)}; return an error envelope instead of exiting",
            fuel_used=context.fuel_used,
        )

    # A Rust allocation failure is a memory-limit hit. A Rust panic is a
    # trap even when memory happens to be full. Without either message, a
    # trap while some memory that grew cannot grow by another page is taken
    # as a failed memory.grow.
    # NOTE: a guest that is not Rust std, whose large memory.grow failed
    # well below the limit, or whose memory started at the limit, is
    # reported as WasmTrapError.
    alloc_failed = _RUST_ALLOC_FAILURE.search(context.stderr) is not None
    panicked = _RUST_PANIC in context.stderr
    memory_hit = (
        alloc_failed
        or _INSTANTIATION_MEMORY_LIMIT in detail
        or (context.memory_at_limit and not panicked)
    )
    if memory_hit:
        return MemoryLimitError(
            f"function {function!r} hit the memory limit of limits.memory_bytes={limits.memory_bytes} bytes "
            f"({detail}); raise limits.memory_bytes in the manifest or process a smaller input",
            fuel_used=context.fuel_used,
            memory_limit_bytes=limits.memory_bytes,
        )

    return WasmTrapError(
        f"function {function!r} trapped: {detail}{_stderr_tail(context.stderr)}; "
        "fix the guest code (a Rust panic prints its message to stderr)",
        fuel_used=context.fuel_used,
    )


def _stderr_tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    if not text:
        return ""
    if len(text) > _STDERR_TAIL_CHARS:
        text = "..." + text[-_STDERR_TAIL_CHARS:]
    return f" (stderr: {text!r})"
