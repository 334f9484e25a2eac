"""Hostile guests: each must fail with its own typed error and leave the runtime serving good calls.

All tests in this file share one WasmRuntime. After every hostile call, a
test calls `echo` of a separate good package on that runtime and checks its
output and fuel count against a baseline taken before any hostile call.
Where the hostile package loaded, its own `echo` must work too.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

import hostile_guests as guests
from cloudless.exceptions import (
    FuelExhaustedError,
    ImportNotAllowedError,
    InvalidOutputError,
    MemoryLimitError,
    OutputTooLargeError,
    PackageFormatError,
    StackOverflowError,
    WallTimeExceededError,
    WasmCallError,
    WasmTrapError,
)
from cloudless.runtime import LoadedPackage, WasmRuntime

GOOD_INPUT = b'{"text": "caf\xc3\xa9", "values": [1, 2.5, null]}'
# The runtime re-serializes the output as ASCII JSON with sorted keys.
GOOD_OUTPUT = b'{"text":"caf\\u00e9","values":[1,2.5,null]}'
DEFAULT_MAX_OUTPUT_BYTES = 4 * guests.MIB
DEFAULT_STDOUT_LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    with WasmRuntime() as shared_runtime:
        yield shared_runtime


@pytest.fixture(scope="module")
def assert_serves_good_call(runtime: WasmRuntime) -> Callable[[], None]:
    """Return a check that the shared runtime still runs a good package's `echo` exactly as before."""
    package = runtime.load(guests.good_package())
    baseline = runtime.call(package, "echo", GOOD_INPUT)
    assert baseline.output == GOOD_OUTPUT

    def check() -> None:
        result = runtime.call(package, "echo", GOOD_INPUT)
        assert result.output == GOOD_OUTPUT
        assert result.fuel_used == baseline.fuel_used
        assert result.stdout == b""
        assert result.stderr == b""

    return check


def assert_package_echoes(runtime: WasmRuntime, package: LoadedPackage) -> None:
    result = runtime.call(package, "echo", GOOD_INPUT)
    assert result.output == GOOD_OUTPUT
    # `echo` writes nothing, so any output here was left over from an earlier call.
    assert result.stdout == b""
    assert result.stderr == b""


def load(runtime: WasmRuntime, wasm: bytes, *functions: str, **package_options: object) -> LoadedPackage:
    """Package `wasm` with `echo` and `functions` declared, and load it into `runtime`."""
    return runtime.load(guests.package_of(wasm, ("echo", *functions), **package_options))  # type: ignore[arg-type]


# --- limits -----------------------------------------------------------------------------------


def test_infinite_loop_exhausts_fuel(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.infinite_loop_module(), "spin")

    with pytest.raises(FuelExhaustedError) as caught:
        runtime.call(package, "spin", b"{}")

    error = caught.value
    fuel_limit = guests.DEFAULT_LIMITS["fuel"]
    assert error.kind == "fuel_exhausted"
    assert error.fuel_used == fuel_limit
    assert error.fuel_limit == fuel_limit
    assert "'spin' ran out of fuel" in str(error)
    assert f"all {fuel_limit} units of limits.fuel" in str(error)
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_infinite_loop_huge_fuel_times_out(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]
) -> None:
    package = load(runtime, guests.infinite_loop_module(), "spin", limits={"fuel": guests.HUGE_FUEL, "timeout_ms": 200})
    started = time.perf_counter()

    with pytest.raises(WallTimeExceededError) as caught:
        runtime.call(package, "spin", b"{}")

    elapsed_ms = (time.perf_counter() - started) * 1000
    error = caught.value
    assert error.kind == "timeout"
    assert error.timeout_ms == 200
    assert "'spin' timed out" in str(error)
    assert "limits.timeout_ms=200 ms" in str(error)
    assert 0 < error.fuel_used < guests.HUGE_FUEL
    assert elapsed_ms >= 200
    # One 10 ms epoch tick of slack, plus room for a loaded machine.
    assert elapsed_ms < 3_000
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_memory_bomb_hits_memory_limit(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.memory_bomb_module(), "grow_forever")

    with pytest.raises(MemoryLimitError) as caught:
        runtime.call(package, "grow_forever", b"{}")

    error = caught.value
    memory_limit = guests.DEFAULT_LIMITS["memory_bytes"]
    assert error.kind == "memory_limit"
    assert error.memory_limit_bytes == memory_limit
    assert f"'grow_forever' hit the memory limit of limits.memory_bytes={memory_limit} bytes" in str(error)
    assert 0 < error.fuel_used < guests.DEFAULT_LIMITS["fuel"]
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_initial_memory_above_limit(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    pages = guests.DEFAULT_LIMITS["memory_bytes"] // guests.PAGE + 1
    package = load(runtime, guests.guest_with_memory(pages))

    with pytest.raises(MemoryLimitError) as caught:
        runtime.call(package, "echo", GOOD_INPUT)

    assert caught.value.kind == "memory_limit"
    assert str(guests.DEFAULT_LIMITS["memory_bytes"]) in str(caught.value)
    assert_serves_good_call()


def test_deep_recursion_overflows_stack(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.deep_recursion_module(), "recurse")

    with pytest.raises(StackOverflowError) as caught:
        runtime.call(package, "recurse", b"{}")

    error = caught.value
    assert error.kind == "stack_overflow"
    assert "'recurse'" in str(error)
    assert "stack" in str(error)
    assert 0 < error.fuel_used < guests.DEFAULT_LIMITS["fuel"]
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


# --- output -----------------------------------------------------------------------------------


def test_huge_output_is_output_too_large(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    length = DEFAULT_MAX_OUTPUT_BYTES + 1
    package = load(runtime, guests.huge_output_module(length), "huge_output", limits={"memory_bytes": 8 * guests.MIB})

    with pytest.raises(OutputTooLargeError) as caught:
        runtime.call(package, "huge_output", b"{}")

    error = caught.value
    assert error.kind == "output_too_large"
    assert error.output_bytes == length
    assert error.max_output_bytes == DEFAULT_MAX_OUTPUT_BYTES
    assert "'huge_output'" in str(error)
    assert str(length) in str(error)
    assert str(DEFAULT_MAX_OUTPUT_BYTES) in str(error)
    assert error.fuel_used > 0
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_output_at_max_size_is_accepted(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    """Control for the oversized-output test: one byte less passes, so the limit is exact."""
    length = DEFAULT_MAX_OUTPUT_BYTES
    package = load(runtime, guests.huge_output_module(length), "huge_output", limits={"memory_bytes": 8 * guests.MIB})

    result = runtime.call(package, "huge_output", b"{}")

    assert json.loads(result.output) == "a" * (length - len(b'{"ok":""}'))
    assert_serves_good_call()


def test_invalid_utf8_output_rejected(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.invalid_utf8_output_module(), "fixed_output")

    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(package, "fixed_output", b"{}")

    error = caught.value
    assert error.kind == "invalid_output"
    assert "'fixed_output' returned output that is not valid UTF-8" in str(error)
    assert "byte 0xff at offset 7" in str(error)
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_invalid_json_output_rejected(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.invalid_json_output_module(), "fixed_output")

    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(package, "fixed_output", b"{}")

    error = caught.value
    assert error.kind == "invalid_output"
    assert "'fixed_output' returned output that is not valid JSON" in str(error)
    assert "Expecting ',' delimiter" in str(error)
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


# One page of memory is 65536 bytes, so each location below ends past it.
# The third would wrap to 0x10 in 32-bit arithmetic, and the fourth sets
# the sign bit of the packed i64.
OUT_OF_BOUNDS_LOCATIONS = {
    "past_end": (guests.PAGE, 1),
    "straddles_end": (guests.PAGE - 10, 100),
    "wraps_32_bits": (0xFFFFFFF0, 0x20),
    "sign_bit": (0x80000000, 16),
}


@pytest.mark.parametrize("pointer, length", OUT_OF_BOUNDS_LOCATIONS.values(), ids=OUT_OF_BOUNDS_LOCATIONS.keys())
def test_output_location_out_of_bounds(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], pointer: int, length: int
) -> None:
    package = load(runtime, guests.output_location_module(pointer, length), "bad_location")

    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(package, "bad_location", b"{}")

    error = caught.value
    assert error.kind == "invalid_output"
    assert f"returned output at {pointer} of {length} bytes, past the end of linear memory" in str(error)
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


@pytest.mark.parametrize("pointer", [guests.PAGE, 0xFFFFFFF0], ids=["past_end", "wraps_32_bits"])
def test_allocator_pointer_out_of_bounds(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], pointer: int
) -> None:
    package = load(runtime, guests.bad_allocator_module(pointer))

    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(package, "echo", GOOD_INPUT)

    error = caught.value
    assert error.kind == "invalid_output"
    assert f"cloudless_alloc({len(GOOD_INPUT)}) returned {pointer}, outside linear memory" in str(error)
    assert_serves_good_call()


def test_stdout_flood_is_truncated(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    chunk_bytes = 512 * 1024
    writes = 32
    wasm = guests.stream_flood_module(1, chunk_bytes, writes)
    package = load(runtime, wasm, "flood", limits={"memory_bytes": chunk_bytes + 2 * guests.PAGE})

    tracemalloc.start()
    try:
        result = runtime.call(package, "flood", b"{}")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.output == b"true"
    assert result.stdout == b"x" * DEFAULT_STDOUT_LIMIT_BYTES
    assert result.stderr == b""
    # The guest wrote 16 MiB. Reading it all into Python would show up here.
    assert peak_bytes < 2 * guests.MIB
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_stderr_flood_then_trap_keeps_message_short(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]
) -> None:
    chunk_bytes = 256 * 1024
    wasm = guests.stream_flood_module(2, chunk_bytes, 8, trap_after=True)
    # One spare page, because the runtime reports a trap in a memory that
    # cannot grow by another page as a memory-limit hit.
    package = load(runtime, wasm, "flood", limits={"memory_bytes": chunk_bytes + 3 * guests.PAGE})

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(package, "flood", b"{}")

    error = caught.value
    assert error.kind == "trap"
    assert "unreachable" in str(error)
    assert "xxxx" in str(error)
    assert len(str(error)) < 1_000
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


# --- traps ------------------------------------------------------------------------------------


def test_unreachable_raises_trap(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.unreachable_module(), "crash")

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(package, "crash", b"{}")

    error = caught.value
    assert error.kind == "trap"
    assert "'crash' trapped: wasm trap: wasm `unreachable` instruction executed" in str(error)
    assert error.fuel_used > 0
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_unreachable_with_full_memory_is_trap(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]
) -> None:
    package = load(runtime, guests.unreachable_module(), "crash", limits={"memory_bytes": guests.PAGE})

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(package, "crash", b"{}")

    assert caught.value.kind == "trap"
    assert "unreachable" in str(caught.value)
    assert_serves_good_call()


@pytest.mark.parametrize("function", ["load_past_end", "store_at_top"])
def test_out_of_bounds_access_raises_trap(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], function: str
) -> None:
    package = load(runtime, guests.out_of_bounds_module(), "load_past_end", "store_at_top")

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(package, function, b"{}")

    error = caught.value
    assert error.kind == "trap"
    assert f"'{function}' trapped: wasm trap: out of bounds memory access" in str(error)
    assert_package_echoes(runtime, package)
    assert_serves_good_call()


def test_start_function_trap(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.start_function_module("(unreachable)"))

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(package, "echo", GOOD_INPUT)

    error = caught.value
    assert error.kind == "trap"
    assert "'echo' trapped: wasm trap: wasm `unreachable` instruction executed" in str(error)
    assert_serves_good_call()


def test_start_function_infinite_loop(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    package = load(runtime, guests.start_function_module("(loop $forever (br $forever))"))

    with pytest.raises(FuelExhaustedError) as caught:
        runtime.call(package, "echo", GOOD_INPUT)

    assert caught.value.kind == "fuel_exhausted"
    assert caught.value.fuel_used == guests.DEFAULT_LIMITS["fuel"]
    assert_serves_good_call()


# --- imports ----------------------------------------------------------------------------------


def test_non_wasi_import_rejected(runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]) -> None:
    wasm = guests.importing_module("env", "host_secret", "(result i32)")

    with pytest.raises(PackageFormatError) as caught:
        load(runtime, wasm)

    message = str(caught.value)
    assert "module 'guest' imports env.host_secret" in message
    assert "neither WASI" in message
    assert_serves_good_call()


# (import name, grant that would allow it)
UNGRANTED_WASI_IMPORTS = {
    "clock_time_get": "clock",
    "clock_res_get": "clock",
    "poll_oneoff": "clock",
    "random_get": "random",
}


@pytest.mark.parametrize("name, grant", UNGRANTED_WASI_IMPORTS.items(), ids=UNGRANTED_WASI_IMPORTS.keys())
def test_ungranted_wasi_import_rejected(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], name: str, grant: str
) -> None:
    wasm = guests.importing_module(guests.WASI_MODULE, name, guests.WASI_SIGNATURES[name])

    with pytest.raises(ImportNotAllowedError) as caught:
        load(runtime, wasm)

    error = caught.value
    assert error.module == "guest"
    assert error.import_name == f"{guests.WASI_MODULE}.{name}"
    assert error.grant == grant
    assert f"module 'guest' imports {guests.WASI_MODULE}.{name}" in str(error)
    # The grant must be named on its own, not only as part of the import's name.
    assert f"'{grant}' grant" in str(error)
    assert_serves_good_call()


@pytest.mark.parametrize("name, grant", UNGRANTED_WASI_IMPORTS.items(), ids=UNGRANTED_WASI_IMPORTS.keys())
def test_granted_wasi_import_loads(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], name: str, grant: str
) -> None:
    """Control for the rejection test: with its grant, the same module loads and runs."""
    wasm = guests.importing_module(guests.WASI_MODULE, name, guests.WASI_SIGNATURES[name])

    package = load(runtime, wasm, grants=[grant])

    assert_package_echoes(runtime, package)
    assert_serves_good_call()


@pytest.mark.parametrize("grants", [None, ["clock", "random", "env", "files"]], ids=["no_grants", "all_grants"])
def test_socket_import_always_rejected(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None], grants: list[str] | None
) -> None:
    wasm = guests.importing_module(guests.WASI_MODULE, "sock_accept", guests.WASI_SIGNATURES["sock_accept"])

    with pytest.raises(ImportNotAllowedError) as caught:
        load(runtime, wasm, grants=grants)

    error = caught.value
    assert error.module == "guest"
    assert error.import_name == f"{guests.WASI_MODULE}.sock_accept"
    assert error.grant is None
    assert f"module 'guest' imports {guests.WASI_MODULE}.sock_accept" in str(error)
    assert_serves_good_call()


def test_unknown_wasi_import_rejected_at_load(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]
) -> None:
    wasm = guests.importing_module(guests.WASI_MODULE, "no_such_function", "(result i32)")

    with pytest.raises(ImportNotAllowedError) as caught:
        load(runtime, wasm)

    error = caught.value
    assert error.module == "guest"
    assert error.grant is None
    assert f"module 'guest' imports {guests.WASI_MODULE}.no_such_function" in str(error)
    assert_serves_good_call()


# --- malformed Wasm ---------------------------------------------------------------------------

# (module bytes, function names for the manifest, text the error must contain)
MALFORMED_MODULES = {
    "bad_magic": (guests.bad_magic_wasm, ("echo",), "missing the \\0asm magic bytes"),
    "truncated": (guests.truncated_wasm, ("echo",), "is not a valid Wasm binary: needs"),
    "invalid_body": (guests.invalid_body_wasm, ("echo", "mismatch"), "type mismatch"),
}


@pytest.mark.parametrize("make_wasm, functions, expected", MALFORMED_MODULES.values(), ids=MALFORMED_MODULES.keys())
def test_malformed_wasm_rejected_by_load(
    runtime: WasmRuntime,
    assert_serves_good_call: Callable[[], None],
    make_wasm: Callable[[], bytes],
    functions: tuple[str, ...],
    expected: str,
) -> None:
    package_bytes = guests.unchecked_package_of(make_wasm(), functions)

    with pytest.raises(PackageFormatError) as caught:
        runtime.load(package_bytes)

    message = str(caught.value)
    assert "module 'guest'" in message
    assert expected in message
    assert "Stack backtrace" not in message
    # A failed load must not leave a broken module in the compile cache.
    with pytest.raises(PackageFormatError):
        runtime.load(package_bytes)
    assert_serves_good_call()


# --- concurrency ------------------------------------------------------------------------------


def test_hostile_calls_spare_concurrent_good_calls(
    runtime: WasmRuntime, assert_serves_good_call: Callable[[], None]
) -> None:
    hostile_calls = [
        (load(runtime, guests.infinite_loop_module(), "spin"), "spin", "fuel_exhausted"),
        (
            load(runtime, guests.infinite_loop_module(), "spin", limits={"fuel": guests.HUGE_FUEL, "timeout_ms": 150}),
            "spin",
            "timeout",
        ),
        (load(runtime, guests.memory_bomb_module(), "grow_forever"), "grow_forever", "memory_limit"),
        (load(runtime, guests.out_of_bounds_module(), "load_past_end", "store_at_top"), "store_at_top", "trap"),
        (load(runtime, guests.invalid_json_output_module(), "fixed_output"), "fixed_output", "invalid_output"),
    ]
    hostile_kinds: list[str] = []
    unexpected: list[BaseException] = []
    hostile_done = threading.Event()

    def run_hostile_calls() -> None:
        try:
            for package, function, _ in hostile_calls:
                try:
                    runtime.call(package, function, b"{}")
                except WasmCallError as error:
                    hostile_kinds.append(error.kind)
        except BaseException as error:  # reported by the main thread's assert
            unexpected.append(error)
        finally:
            hostile_done.set()

    hostile_thread = threading.Thread(target=run_hostile_calls, name="hostile-guest")
    hostile_thread.start()
    good_calls_during_hostile = 0
    while not hostile_done.is_set():
        assert_serves_good_call()
        good_calls_during_hostile += 1
    hostile_thread.join()

    assert unexpected == []
    assert hostile_kinds == [kind for _, _, kind in hostile_calls]
    # The timeout case alone spins for 150 ms, and a good call takes a few ms.
    assert good_calls_during_hostile >= 10
