"""The host functions that guests import from the "cloudless" namespace.

* `call_params(ptr: i32, len: i32) -> i32` writes the call parameters as
  UTF-8 JSON `{"deal_id": int, "caller": str, "function": str,
  "request_id": str}` to guest memory at `ptr` when `len` is at least the
  JSON's length, and always returns that length. A guest calls it once with
  `len` 0 to learn the size, allocates, then calls it again.
* `log(level: i32, ptr: i32, len: i32)` records one message. Levels are
  0 error, 1 warn, 2 info, 3 debug and 4 trace. Invalid UTF-8 is replaced
  with U+FFFD. A call keeps at most `MAX_LOG_RECORDS` records and
  `MAX_LOG_BYTES` bytes of messages, and counts the records that it drops.

Both functions read and write the calling module's export named "memory".
A pointer range outside that memory or an unknown log level traps the call.

The linker that defines these functions is shared by every call, so each
function finds the state of its call in a thread-local variable that the
runtime sets for the duration of the call.

NOTE: wasmtime-py 38 turns an exception raised in a host function into a
trap and keeps the exception in one process-wide variable until the call
returns. When two threads trap at the same moment, one call may report the
other's host-function error.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import wasmtime

from cloudless.runtime.manifest import HOST_NAMESPACE

__all__ = [
    "HOST_FUNCTION_ARITIES",
    "LOG_LEVELS",
    "MAX_LOG_BYTES",
    "MAX_LOG_RECORDS",
    "CallContext",
    "CallState",
    "active_call",
    "define_host_functions",
    "host_function_type",
]

LOG_LEVELS = ("error", "warn", "info", "debug", "trace")
MAX_LOG_RECORDS = 64
MAX_LOG_BYTES = 16 * 1024

# Parameter and result counts of each host function, all of type i32.
HOST_FUNCTION_ARITIES = {"call_params": (2, 1), "log": (3, 0)}


@dataclass(frozen=True)
class CallContext:
    """The deal, caller and request of one call: the parameters that `cloudless.call_params` returns.

    `deal_id` is the on-chain deal id, `caller` the caller's address and
    `request_id` the request digest, both as 0x-prefixed hex. `function`
    must name the function being called.
    """

    deal_id: int
    caller: str
    function: str
    request_id: str

    def __post_init__(self) -> None:
        if isinstance(self.deal_id, bool) or not isinstance(self.deal_id, int) or self.deal_id < 0:
            raise ValueError(f"invalid CallContext.deal_id={self.deal_id!r}: expected a non-negative int")
        for name in ("caller", "function", "request_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"invalid CallContext.{name}={value!r}: expected a str")


class CallState:
    """The host-side state of one call: its parameters and the log records the guest wrote."""

    __slots__ = ("_context", "_function", "_params_json", "dropped_logs", "log_bytes", "logs")

    def __init__(self, function: str, context: CallContext | None) -> None:
        self._function = function
        self._context = context
        self._params_json: bytes | None = None
        self.logs: list[tuple[str, str]] = []
        self.log_bytes = 0
        self.dropped_logs = 0

    def params_json(self) -> bytes:
        """Return the UTF-8 JSON of the call parameters, built on first use."""
        if self._params_json is None:
            context = self._context
            if context is None:
                params = {"deal_id": 0, "caller": "", "function": self._function, "request_id": ""}
            else:
                params = {
                    "deal_id": context.deal_id,
                    "caller": context.caller,
                    "function": context.function,
                    "request_id": context.request_id,
                }
            self._params_json = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._params_json

    def has_room_for_log(self, message_bytes: int) -> bool:
        """Return True if one more record of `message_bytes` bytes stays within the call's log limits."""
        return len(self.logs) < MAX_LOG_RECORDS and self.log_bytes + message_bytes <= MAX_LOG_BYTES

    def add_log(self, level: int, message: bytes) -> None:
        """Keep one log record. The caller checks `has_room_for_log` first."""
        self.logs.append((LOG_LEVELS[level], message.decode("utf-8", errors="replace")))
        self.log_bytes += len(message)


class _ActiveCall(threading.local):
    state: CallState | None = None


active_call = _ActiveCall()


def host_function_type(name: str) -> wasmtime.FuncType:
    """Return a new FuncType of the host function `name`.

    Each linker needs its own FuncType objects: passing one FuncType to the
    linkers of two engines aborted the process with wasmtime-py 38.
    """
    params, results = HOST_FUNCTION_ARITIES[name]
    return wasmtime.FuncType([wasmtime.ValType.i32()] * params, [wasmtime.ValType.i32()] * results)


def define_host_functions(linker: wasmtime.Linker) -> None:
    """Define `cloudless.call_params` and `cloudless.log` in `linker`."""
    for name, function in (("call_params", _call_params), ("log", _log)):
        linker.define_func(HOST_NAMESPACE, name, host_function_type(name), function, access_caller=True)


def _call_params(caller: wasmtime.Caller, ptr: int, length: int) -> int:
    state = _current_state("call_params")
    params = state.params_json()
    # wasmtime passes i32 arguments as signed ints, but guest pointers and lengths are unsigned.
    if length & 0xFFFFFFFF >= len(params):
        memory = _caller_memory(caller, "call_params")
        start = ptr & 0xFFFFFFFF
        _check_range(caller, memory, start, len(params), "call_params")
        memory.write(caller, params, start)
    return len(params)


def _log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
    state = _current_state("log")
    if not 0 <= level < len(LOG_LEVELS):
        raise wasmtime.Trap(
            f"cloudless.log called with level {level}; expected 0 (error), 1 (warn), 2 (info), 3 (debug) or 4 (trace)"
        )
    memory = _caller_memory(caller, "log")
    start = ptr & 0xFFFFFFFF
    size = length & 0xFFFFFFFF
    _check_range(caller, memory, start, size, "log")
    if not state.has_room_for_log(size):
        state.dropped_logs += 1
        return
    state.add_log(level, bytes(memory.read(caller, start, start + size)))


def _current_state(function: str) -> CallState:
    state = active_call.state
    if state is None:
        raise wasmtime.Trap(f"cloudless.{function} was called outside a Cloudless call")
    return state


def _caller_memory(caller: wasmtime.Caller, function: str) -> wasmtime.Memory:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise wasmtime.Trap(
            f"cloudless.{function} needs the calling module to export its linear memory as 'memory', "
            "but it does not"
        )
    return memory


def _check_range(caller: wasmtime.Caller, memory: wasmtime.Memory, start: int, size: int, function: str) -> None:
    memory_len = memory.data_len(caller)
    if start + size > memory_len:
        raise wasmtime.Trap(
            f"cloudless.{function} was given {size} bytes at address {start}, past the end of linear memory "
            f"({memory_len} bytes)"
        )
