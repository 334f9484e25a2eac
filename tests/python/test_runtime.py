"""WasmRuntime: limits, traps, WASI capture, linking, isolation and the compile cache.

The first part runs hand-written WAT guests, so each case is exact. The second
part runs the Rust example modules from functions/dist, which a session
fixture builds with functions/build.sh when they are missing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from cloudless.exceptions import (
    FuelExhaustedError,
    FunctionNotFoundError,
    GuestError,
    InvalidInputError,
    InvalidOutputError,
    MemoryLimitError,
    OutputTooLargeError,
    PackageFormatError,
    PackageIntegrityError,
    StackOverflowError,
    WallTimeExceededError,
    WasmCallError,
    WasmTrapError,
)
from cloudless.cid import compute_cid
from cloudless.runtime.cache import ENTRY_MAGIC
from cloudless.runtime import (
    HostLimits,
    LoadedPackage,
    WasmRuntime,
    build_package,
    build_package_from_dir,
    read_package,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
DIST_DIR = FUNCTIONS_DIR / "dist"
EXAMPLES_DIR = FUNCTIONS_DIR / "examples"
BUILD_SCRIPT = FUNCTIONS_DIR / "build.sh"
RUST_MODULES = ("limits", "penguins", "text")

PAGE = 65536
MIB = 1024 * 1024

# --- WAT guests -------------------------------------------------------------

# Constant strings in the guest's data segments: (offset, text).
OK_PREFIX = (0, '{"ok":')
GUEST_ERROR = (16, '{"error":"bad input"}')
FIXED_OUTPUT = (64, '{"ok":{"b":1,"a":[true,null,2.5]}}')
NOT_JSON = (128, "not json")
STDOUT_LINE = (160, "hello from stdout\n")
NOT_ENVELOPE = (192, '{"result":1}')
NAN_OUTPUT = (224, '{"ok":NaN}')


def wat_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def data_segment(segment: tuple[int, str]) -> str:
    offset, text = segment
    return f'(data (i32.const {offset}) "{wat_string(text)}")'


def packed_constant(segment: tuple[int, str]) -> str:
    """WAT that returns the packed (ptr << 32) | len of a data segment."""
    offset, text = segment
    return f"(call $pack (i32.const {offset}) (i32.const {len(text.encode())}))"


def guest_wat(abi_version: int = 1, extra_imports: str = "", extra_functions: str = "") -> str:
    """A guest module that follows guest ABI v1, with one export per test case."""
    segments = "\n  ".join(
        data_segment(segment)
        for segment in (OK_PREFIX, GUEST_ERROR, FIXED_OUTPUT, NOT_JSON, STDOUT_LINE, NOT_ENVELOPE, NAN_OUTPUT)
    )
    stdout_offset, stdout_text = STDOUT_LINE
    return f"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  {extra_imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (global $calls (mut i32) (i32.const 0))
  {segments}

  (func (export "cloudless_abi_version") (result i32) (i32.const {abi_version}))

  ;; Bump allocator; returns 0 (null) when the memory cannot grow.
  (func $alloc (export "cloudless_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const {PAGE})))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.div_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const {PAGE})))
                                               (i32.const {PAGE}))
                                    (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "cloudless_free") (param i32 i32))

  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; Writes {{"ok":<n>}} for a signed n into a fresh buffer.
  (func $ok_i32 (param $n i32) (result i64)
    (local $buffer i32)
    (local $pos i32)
    (local $negative i32)
    (local $rest i32)
    (local.set $buffer (call $alloc (i32.const 24)))
    (local.set $pos (i32.add (local.get $buffer) (i32.const 23)))
    (i32.store8 (local.get $pos) (i32.const 125))
    (local.set $negative (i32.lt_s (local.get $n) (i32.const 0)))
    (local.set $rest (select (i32.sub (i32.const 0) (local.get $n)) (local.get $n) (local.get $negative)))
    (loop $digits
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos) (i32.add (i32.const 48) (i32.rem_u (local.get $rest) (i32.const 10))))
      (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
      (br_if $digits (local.get $rest)))
    (if (local.get $negative)
      (then
        (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
        (i32.store8 (local.get $pos) (i32.const 45))))
    (local.set $pos (i32.sub (local.get $pos) (i32.const 6)))
    (memory.copy (local.get $pos) (i32.const 0) (i32.const 6))
    (call $pack (local.get $pos) (i32.sub (i32.add (local.get $buffer) (i32.const 24)) (local.get $pos))))

  ;; {{"ok":<input>}}: the input must itself be JSON.
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 7))))
    (memory.copy (local.get $out) (i32.const 0) (i32.const 6))
    (memory.copy (i32.add (local.get $out) (i32.const 6)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 6)) (local.get $len)) (i32.const 125))
    (call $pack (local.get $out) (i32.add (local.get $len) (i32.const 7))))

  (func (export "input_length") (param $ptr i32) (param $len i32) (result i64)
    (call $ok_i32 (local.get $len)))

  (func (export "fixed") (param i32 i32) (result i64) {packed_constant(FIXED_OUTPUT)})
  (func (export "fail") (param i32 i32) (result i64) {packed_constant(GUEST_ERROR)})
  (func (export "not_json") (param i32 i32) (result i64) {packed_constant(NOT_JSON)})
  (func (export "not_envelope") (param i32 i32) (result i64) {packed_constant(NOT_ENVELOPE)})
  (func (export "nan") (param i32 i32) (result i64) {packed_constant(NAN_OUTPUT)})
  (func (export "out_of_bounds") (param i32 i32) (result i64)
    (call $pack (i32.const {PAGE - 10}) (i32.const 100)))

  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (unreachable))

  ;; A fresh instance per call starts the global at 0, so this returns 1.
  (func (export "count_calls") (param i32 i32) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $ok_i32 (global.get $calls)))

  ;; Returns memory.grow's result for 100 pages: the old size, or -1.
  (func (export "grow") (param i32 i32) (result i64)
    (call $ok_i32 (memory.grow (i32.const 100))))

  ;; Grows one page at a time and aborts, like a failed Rust allocation,
  ;; once memory.grow returns -1.
  (func (export "grow_until_abort") (param i32 i32) (result i64)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable))

  (func (export "trap") (param i32 i32) (result i64)
    (unreachable))

  (func (export "divide_by_zero") (param $ptr i32) (param $len i32) (result i64)
    (call $ok_i32 (i32.div_s (i32.const 1) (i32.sub (local.get $len) (local.get $len)))))

  (func (export "exit") (param i32 i32) (result i64)
    (call $proc_exit (i32.const 7))
    (unreachable))

  ;; Writes the stdout line to stdout and to stderr once per input byte.
  (func (export "print") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32)
    (i32.store (i32.const 1000) (i32.const {stdout_offset}))
    (i32.store (i32.const 1004) (i32.const {len(stdout_text)}))
    (block $done
      (loop $write
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (drop (call $fd_write (i32.const 1) (i32.const 1000) (i32.const 1) (i32.const 1008)))
        (drop (call $fd_write (i32.const 2) (i32.const 1000) (i32.const 1) (i32.const 1008)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $write)))
    (call $ok_i32 (local.get $len)))

  ;; Reads stdin once; returns the bytes read, or -errno.
  (func (export "read_stdin") (param i32 i32) (result i64)
    (local $errno i32)
    (i32.store (i32.const 1016) (i32.const 2048))
    (i32.store (i32.const 1020) (i32.const 64))
    (local.set $errno (call $fd_read (i32.const 0) (i32.const 1016) (i32.const 1) (i32.const 1024)))
    (if (result i64) (local.get $errno)
      (then (call $ok_i32 (i32.sub (i32.const 0) (local.get $errno))))
      (else (call $ok_i32 (i32.load (i32.const 1024))))))

  (func (export "env_count") (param i32 i32) (result i64)
    (drop (call $environ_sizes_get (i32.const 1032) (i32.const 1036)))
    (call $ok_i32 (i32.load (i32.const 1032))))

  {extra_functions}
)
"""


GUEST_FUNCTIONS = (
    "echo",
    "input_length",
    "fixed",
    "fail",
    "not_json",
    "not_envelope",
    "nan",
    "out_of_bounds",
    "spin",
    "count_calls",
    "grow",
    "grow_until_abort",
    "trap",
    "divide_by_zero",
    "exit",
    "print",
    "read_stdin",
    "env_count",
)

HELPER_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"""

LINKED_FACADE_IMPORTS = '(import "helper" "add" (func $add (param i32 i32) (result i32)))'
LINKED_FACADE_FUNCTIONS = """
  (func (export "sum") (param i32 i32) (result i64)
    (call $ok_i32 (call $add (i32.const 40) (i32.const 2))))
"""

DEFAULT_LIMITS = {"fuel": 5_000_000, "memory_bytes": 4 * PAGE, "timeout_ms": 5_000}


def guest_template(
    functions: tuple[str, ...] = GUEST_FUNCTIONS,
    modules: tuple[str, ...] = ("guest",),
    limits: dict[str, int] | None = None,
    wasi: dict[str, Any] | None = None,
    grants: list[str] | None = None,
) -> dict[str, Any]:
    """Return a manifest template. `grants`, when given, is set on every module."""
    module_entries: list[dict[str, Any]] = [{"name": name} for name in modules]
    if grants is not None:
        for entry in module_entries:
            entry["grants"] = list(grants)
    template: dict[str, Any] = {
        "abi": 1,
        "name": "wat-guest",
        "version": "1.0.0",
        "modules": module_entries,
        "functions": [{"name": name, "description": f"Test case {name}."} for name in functions],
        "limits": dict(DEFAULT_LIMITS, **(limits or {})),
    }
    if wasi is not None:
        template["wasi"] = wasi
    return template


def guest_package(
    limits: dict[str, int] | None = None, wasi: dict[str, Any] | None = None, grants: list[str] | None = None
) -> bytes:
    wasm = wasmtime.wat2wasm(guest_wat())
    return build_package(guest_template(limits=limits, wasi=wasi, grants=grants), {"guest": wasm})


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    with WasmRuntime() as shared_runtime:
        yield shared_runtime


@pytest.fixture(scope="module")
def guest(runtime: WasmRuntime) -> LoadedPackage:
    return runtime.load(guest_package())


def call_json(runtime: WasmRuntime, package: LoadedPackage, function: str, value: Any = None) -> Any:
    result = runtime.call(package, function, json.dumps(value).encode())
    return json.loads(result.output)


# --- WAT: successful calls --------------------------------------------------


def test_call_echo_round_trips_json(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    value = {"text": "héllo", "numbers": [1, 2.5, -3], "nested": {"z": None, "a": True}}

    result = runtime.call(guest, "echo", json.dumps(value).encode())

    assert json.loads(result.output) == value
    assert result.output == json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    assert result.fuel_used > 0
    assert result.wall_ms > 0


def test_call_output_is_compact_with_sorted_keys(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    result = runtime.call(guest, "fixed", b"")

    assert result.output == b'{"a":[true,null,2.5],"b":1}'


def test_call_passes_input_length(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    assert call_json(runtime, guest, "input_length", "x" * 1000) == 1002
    assert runtime.call(guest, "input_length", b"").output == b"0"


def test_call_fuel_used_is_deterministic(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    first = runtime.call(guest, "echo", b'{"a": 1}')
    second = runtime.call(guest, "echo", b'{"a": 1}')

    assert first.fuel_used == second.fuel_used


def test_call_store_isolation_resets_globals(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    counts = [call_json(runtime, guest, "count_calls") for _ in range(5)]

    assert counts == [1, 1, 1, 1, 1]


def test_call_memory_grow_within_limit(runtime: WasmRuntime) -> None:
    package = runtime.load(guest_package(limits={"memory_bytes": 200 * PAGE}))

    assert call_json(runtime, package, "grow") == 1


# --- WAT: limits --------------------------------------------------------------


def test_call_infinite_loop_exhausts_fuel(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(FuelExhaustedError) as caught:
        runtime.call(guest, "spin", b"")

    error = caught.value
    assert error.kind == "fuel_exhausted"
    assert error.fuel_used == DEFAULT_LIMITS["fuel"]
    assert error.fuel_limit == DEFAULT_LIMITS["fuel"]
    assert str(DEFAULT_LIMITS["fuel"]) in str(error)
    assert "limits.fuel" in str(error)
    assert isinstance(error.__cause__, wasmtime.Trap)


def test_call_memory_grow_beyond_limit_returns_minus_one(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    assert call_json(runtime, guest, "grow") == -1


def test_call_memory_exhaustion_raises_memory_limit(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(MemoryLimitError) as caught:
        runtime.call(guest, "grow_until_abort", b"")

    error = caught.value
    assert error.kind == "memory_limit"
    assert error.memory_limit_bytes == DEFAULT_LIMITS["memory_bytes"]
    assert str(DEFAULT_LIMITS["memory_bytes"]) in str(error)
    assert 0 < error.fuel_used < DEFAULT_LIMITS["fuel"]


def test_call_input_exceeding_guest_memory(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(MemoryLimitError, match="cloudless_alloc"):
        runtime.call(guest, "input_length", b"x" * (8 * PAGE))


def test_call_initial_memory_above_limit(runtime: WasmRuntime) -> None:
    wasm = wasmtime.wat2wasm(guest_wat().replace('(memory (export "memory") 1)', '(memory (export "memory") 8)'))
    package = runtime.load(build_package(guest_template(limits={"memory_bytes": 4 * PAGE}), {"guest": wasm}))

    with pytest.raises(MemoryLimitError):
        runtime.call(package, "fixed", b"")


def test_call_epoch_timeout_with_huge_fuel(runtime: WasmRuntime) -> None:
    package = runtime.load(guest_package(limits={"fuel": 10_000_000_000, "timeout_ms": 200}))
    started = time.perf_counter()

    with pytest.raises(WallTimeExceededError) as caught:
        runtime.call(package, "spin", b"")

    elapsed_ms = (time.perf_counter() - started) * 1000
    error = caught.value
    assert error.kind == "timeout"
    assert error.timeout_ms == 200
    assert "200 ms" in str(error)
    assert 0 < error.fuel_used < 10_000_000_000
    assert elapsed_ms >= 200
    # One 10 ms tick of slack plus generous room for a loaded machine.
    assert elapsed_ms < 3_000


def test_call_unreachable_raises_trap(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError) as caught:
        runtime.call(guest, "trap", b"")

    assert caught.value.kind == "trap"
    assert "unreachable" in str(caught.value)
    assert "Stack backtrace" not in str(caught.value)
    assert caught.value.fuel_used > 0


def test_call_divide_by_zero_raises_trap(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError, match="divide by zero"):
        runtime.call(guest, "divide_by_zero", b"")


def test_call_proc_exit_raises_trap(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError, match="status 7"):
        runtime.call(guest, "exit", b"")


# --- WAT: envelopes and ABI -------------------------------------------------


def test_call_error_envelope_raises_guest_error(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(GuestError) as caught:
        runtime.call(guest, "fail", b"")

    assert caught.value.kind == "guest_error"
    assert caught.value.guest_message == "bad input"
    assert "bad input" in str(caught.value)
    assert caught.value.fuel_used > 0


@pytest.mark.parametrize("function", ["not_json", "not_envelope", "nan", "out_of_bounds"])
def test_call_malformed_output_raises_invalid_output(
    runtime: WasmRuntime, guest: LoadedPackage, function: str
) -> None:
    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(guest, function, b"")

    assert caught.value.kind == "invalid_output"
    assert caught.value.fuel_used > 0


def test_call_wrong_abi_version_raises_invalid_output(runtime: WasmRuntime) -> None:
    wasm = wasmtime.wat2wasm(guest_wat(abi_version=2))
    package = runtime.load(build_package(guest_template(), {"guest": wasm}))

    with pytest.raises(InvalidOutputError, match="version 2"):
        runtime.call(package, "fixed", b"")


def test_load_rejects_function_with_wrong_signature(runtime: WasmRuntime) -> None:
    wasm = wasmtime.wat2wasm(
        guest_wat(extra_functions='(func (export "wrong") (param i32) (result i32) (local.get 0))')
    )
    package_bytes = build_package(guest_template(functions=("wrong",)), {"guest": wasm})

    with pytest.raises(PackageFormatError, match="wrong"):
        runtime.load(package_bytes)


def test_call_missing_function_raises_not_found(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(FunctionNotFoundError) as caught:
        runtime.call(guest, "does_not_exist", b"{}")

    error = caught.value
    assert error.kind == "function_not_found"
    assert error.fuel_used == 0
    assert error.available == GUEST_FUNCTIONS
    assert "'does_not_exist'" in str(error)
    assert "echo" in str(error)


def test_call_undeclared_export_not_found(runtime: WasmRuntime) -> None:
    package = runtime.load(
        build_package(guest_template(functions=("echo",)), {"guest": wasmtime.wat2wasm(guest_wat())})
    )

    with pytest.raises(FunctionNotFoundError):
        runtime.call(package, "fixed", b"")


def test_call_rejects_input_over_four_mib(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(InvalidInputError) as caught:
        runtime.call(guest, "input_length", b"x" * (4 * MIB + 1))

    assert caught.value.kind == "invalid_input"
    assert caught.value.fuel_used == 0
    assert str(4 * MIB) in str(caught.value)


def test_call_rejects_non_bytes_input(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    with pytest.raises(InvalidInputError):
        runtime.call(guest, "echo", "not bytes")  # type: ignore[arg-type]


def test_call_accepts_input_at_host_limit() -> None:
    with WasmRuntime(host_limits=HostLimits(max_input_bytes=64)) as small_runtime:
        package = small_runtime.load(guest_package())

        assert small_runtime.call(package, "input_length", b"x" * 64).output == b"64"
        with pytest.raises(InvalidInputError):
            small_runtime.call(package, "input_length", b"x" * 65)


# --- WAT: WASI ------------------------------------------------------------------


def test_call_captures_stdout_and_stderr(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    result = runtime.call(guest, "print", b"xyz")

    assert result.stdout == STDOUT_LINE[1].encode() * 3
    assert result.stderr == STDOUT_LINE[1].encode() * 3


def test_call_truncates_stdout_to_limit(runtime: WasmRuntime) -> None:
    package = runtime.load(guest_package(wasi={"stdout_limit_bytes": 20}))

    result = runtime.call(package, "print", b"x" * 10)

    assert result.stdout == (STDOUT_LINE[1].encode() * 10)[:20]
    assert len(result.stderr) == 20


def test_call_stdin_is_empty(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    assert call_json(runtime, guest, "read_stdin") == 0


def test_call_env_is_empty_unless_granted(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    env = {"GREETING": "hi", "LANG": "C"}
    # Manifests from before grants existed set wasi.env without the "env"
    # grant. They still load, but their modules no longer see the variables.
    without_grant = runtime.load(guest_package(wasi={"env": env}))
    granted = runtime.load(guest_package(wasi={"env": env}, grants=["env"]))

    assert call_json(runtime, guest, "env_count") == 0
    assert call_json(runtime, without_grant, "env_count") == 0
    assert call_json(runtime, granted, "env_count") == 2


# --- WAT: multi-module linking ------------------------------------------------


def linked_package(module_order: tuple[str, ...] = ("helper", "facade")) -> bytes:
    facade = wasmtime.wat2wasm(guest_wat(extra_imports=LINKED_FACADE_IMPORTS, extra_functions=LINKED_FACADE_FUNCTIONS))
    helper = wasmtime.wat2wasm(HELPER_WAT)
    template = guest_template(functions=("sum", "echo"), modules=module_order)
    return build_package(template, {"helper": helper, "facade": facade})


def test_call_facade_uses_helper_module(runtime: WasmRuntime) -> None:
    package = runtime.load(linked_package())

    assert [name for name, _ in package.modules] == ["helper", "facade"]
    assert call_json(runtime, package, "sum") == 42
    assert call_json(runtime, package, "echo", [1, 2]) == [1, 2]


def test_load_rejects_import_from_later_module(runtime: WasmRuntime) -> None:
    facade = wasmtime.wat2wasm(guest_wat(extra_imports=LINKED_FACADE_IMPORTS, extra_functions=LINKED_FACADE_FUNCTIONS))
    helper = wasmtime.wat2wasm(guest_wat())
    # "facade" is now first, so nothing defines "helper" when it is instantiated.
    template = guest_template(functions=("echo",), modules=("facade", "helper"))
    package_bytes = build_package(template, {"facade": facade, "helper": helper})

    with pytest.raises(PackageFormatError, match="helper"):
        runtime.load(package_bytes)


def test_load_rejects_unknown_import(runtime: WasmRuntime) -> None:
    wasm = wasmtime.wat2wasm(guest_wat(extra_imports='(import "env" "host_secret" (func (result i32)))'))

    with pytest.raises(PackageFormatError, match="env.host_secret"):
        runtime.load(build_package(guest_template(), {"guest": wasm}))


# --- WAT: loading, concurrency and lifecycle --------------------------------------


def test_load_verifies_cid(runtime: WasmRuntime) -> None:
    package_bytes = guest_package()

    loaded = runtime.load(package_bytes, cid=compute_cid(package_bytes))

    assert loaded.cid == compute_cid(package_bytes)
    with pytest.raises(PackageIntegrityError):
        runtime.load(package_bytes, cid=compute_cid(b"other"))


def test_call_concurrent_threads_are_isolated(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    def run(index: int) -> tuple[int, Any, int]:
        echoed = call_json(runtime, guest, "echo", {"thread": index})
        count = call_json(runtime, guest, "count_calls")
        try:
            runtime.call(guest, "spin", b"")
        except FuelExhaustedError as error:
            return count, echoed, error.fuel_used
        raise AssertionError("spin returned without exhausting its fuel")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(32)))

    for index, (count, echoed, fuel_used) in enumerate(results):
        assert count == 1
        assert echoed == {"thread": index}
        assert fuel_used == DEFAULT_LIMITS["fuel"]


def test_call_timeout_spares_concurrent_call(runtime: WasmRuntime, guest: LoadedPackage) -> None:
    slow = runtime.load(guest_package(limits={"fuel": 10_000_000_000, "timeout_ms": 300}))
    errors: list[Exception] = []

    def spin_until_timeout() -> None:
        try:
            runtime.call(slow, "spin", b"")
        except WallTimeExceededError as error:
            errors.append(error)

    spinner = threading.Thread(target=spin_until_timeout)
    spinner.start()
    echoed = [call_json(runtime, guest, "echo", index) for index in range(20)]
    spinner.join()

    assert echoed == list(range(20))
    assert len(errors) == 1


def test_call_after_close_raises() -> None:
    closed_runtime = WasmRuntime()
    package = closed_runtime.load(guest_package())
    closed_runtime.close()
    closed_runtime.close()

    with pytest.raises(WasmCallError, match="closed"):
        closed_runtime.call(package, "fixed", b"")


def test_runtime_close_stops_ticker_thread() -> None:
    before = {thread.ident for thread in threading.enumerate() if thread.name == "cloudless-epoch-ticker"}
    with WasmRuntime():
        during = {thread.ident for thread in threading.enumerate() if thread.name == "cloudless-epoch-ticker"}
    after = {thread.ident for thread in threading.enumerate() if thread.name == "cloudless-epoch-ticker"}

    assert len(during - before) == 1
    assert after == before


def test_every_call_error_has_kind_and_fuel_used() -> None:
    kinds = {
        FunctionNotFoundError: "function_not_found",
        FuelExhaustedError: "fuel_exhausted",
        MemoryLimitError: "memory_limit",
        WallTimeExceededError: "timeout",
        WasmTrapError: "trap",
        StackOverflowError: "stack_overflow",
        GuestError: "guest_error",
        InvalidInputError: "invalid_input",
        InvalidOutputError: "invalid_output",
        OutputTooLargeError: "output_too_large",
    }
    for error_class, kind in kinds.items():
        error = error_class("message", fuel_used=5)
        assert issubclass(error_class, WasmCallError)
        assert error.kind == kind
        assert error.fuel_used == 5


# --- compile cache ------------------------------------------------------------------


def test_load_second_time_uses_memory_cache(tmp_path: Path) -> None:
    package_bytes = linked_package()
    with WasmRuntime(cache_dir=tmp_path) as cached_runtime:
        cached_runtime.load(package_bytes)
        cached_runtime.load(package_bytes)

        assert cached_runtime.compile_count == 2
        assert cached_runtime.disk_cache_hits == 0


def test_load_uses_disk_cache_in_fresh_runtime(tmp_path: Path) -> None:
    package_bytes = linked_package()
    cid = compute_cid(package_bytes)

    with WasmRuntime(cache_dir=tmp_path) as first_runtime:
        first_runtime.load(package_bytes)
        cache_files = [first_runtime.cache_file(cid, name) for name in ("helper", "facade")]
        assert first_runtime.compile_count == 2

    for cache_file in cache_files:
        assert cache_file is not None
        assert cache_file.is_file()
        assert cache_file.read_bytes().startswith(ENTRY_MAGIC)
        assert cid in cache_file.name
        assert wasmtime_version() in cache_file.name

    with WasmRuntime(cache_dir=tmp_path) as second_runtime:
        package = second_runtime.load(package_bytes)

        assert second_runtime.compile_count == 0
        assert second_runtime.disk_cache_hits == 2
        assert call_json(second_runtime, package, "sum") == 42


def test_load_recompiles_corrupt_cache_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    package_bytes = guest_package()
    cid = compute_cid(package_bytes)
    with WasmRuntime(cache_dir=tmp_path) as first_runtime:
        first_runtime.load(package_bytes)
        cache_file = first_runtime.cache_file(cid, "guest")
    assert cache_file is not None
    good_bytes = cache_file.read_bytes()
    corrupted = bytearray(good_bytes)
    corrupted[len(corrupted) // 2] ^= 0xFF
    cache_file.write_bytes(bytes(corrupted))

    with caplog.at_level(logging.WARNING, logger="cloudless.runtime"):
        with WasmRuntime(cache_dir=tmp_path) as second_runtime:
            package = second_runtime.load(package_bytes)

            assert second_runtime.compile_count == 1
            assert second_runtime.disk_cache_hits == 0
            assert call_json(second_runtime, package, "echo", "ok") == "ok"

    assert any("corrupt" in record.getMessage() and str(cache_file) in record.getMessage() for record in caplog.records)
    assert cache_file.read_bytes() != bytes(corrupted)
    with WasmRuntime(cache_dir=tmp_path) as third_runtime:
        third_runtime.load(package_bytes)
        assert third_runtime.compile_count == 0


def test_load_recompiles_undeserializable_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    package_bytes = guest_package()
    cid = compute_cid(package_bytes)
    with WasmRuntime(cache_dir=tmp_path) as first_runtime:
        first_runtime.load(package_bytes)
        cache_file = first_runtime.cache_file(cid, "guest")
    assert cache_file is not None
    # Garbage with a matching digest passes the digest check, so wasmtime's
    # own header check must catch it.
    garbage = b"this is not a serialized wasmtime module"
    cache_file.write_bytes(ENTRY_MAGIC + hashlib.sha256(garbage).digest() + garbage)

    with caplog.at_level(logging.WARNING, logger="cloudless.runtime"):
        with WasmRuntime(cache_dir=tmp_path) as second_runtime:
            second_runtime.load(package_bytes)
            assert second_runtime.compile_count == 1

    assert any("rejected" in record.getMessage() for record in caplog.records)


def wasmtime_version() -> str:
    return importlib.metadata.version("wasmtime")


# --- Rust example modules from functions/dist ---------------------------------------


@pytest.fixture(scope="session")
def dist_dir() -> Path:
    """Return functions/dist, running functions/build.sh first if a module is missing."""
    missing = [name for name in RUST_MODULES if not (DIST_DIR / f"{name}.wasm").is_file()]
    if missing:
        completed = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
        )
        if completed.returncode != 0:
            pytest.fail(
                f"functions/build.sh failed with exit status {completed.returncode} while building {missing}:\n"
                f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
            )
        still_missing = [name for name in RUST_MODULES if not (DIST_DIR / f"{name}.wasm").is_file()]
        if still_missing:
            pytest.fail(f"functions/build.sh succeeded but did not produce {still_missing} in {DIST_DIR}")
    return DIST_DIR


def example_package(dist_dir: Path, example: str) -> bytes:
    """Build the package of functions/examples/<example> from its manifest.json and dist module."""
    return build_package_from_dir(EXAMPLES_DIR / example, dist_dir)


@pytest.fixture(scope="module")
def limits_module(runtime: WasmRuntime, dist_dir: Path) -> LoadedPackage:
    return runtime.load(example_package(dist_dir, "limits"))


@pytest.mark.parametrize("example", RUST_MODULES)
def test_example_manifest_builds_package(dist_dir: Path, example: str) -> None:
    package_bytes = example_package(dist_dir, example)

    package = read_package(package_bytes, expected_cid=compute_cid(package_bytes))

    assert package.manifest.name == example
    assert package.facade.name == example
    assert package_bytes == example_package(dist_dir, example)


def test_rust_echo_round_trips(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    value = {"b": [1, 2, {"c": "ü"}], "a": None, "n": -7.25}

    result = runtime.call(limits_module, "echo", json.dumps(value).encode())

    assert json.loads(result.output) == value
    assert result.output == json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def test_rust_spin_with_iterations_returns(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    assert call_json(runtime, limits_module, "spin", {"iterations": 1000}) == 1000


def test_rust_spin_exhausts_fuel(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    with pytest.raises(FuelExhaustedError) as caught:
        runtime.call(limits_module, "spin", b"{}")

    assert caught.value.fuel_used == limits_module.manifest.limits.fuel


def test_rust_alloc_bomb_hits_memory_limit(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    with pytest.raises(MemoryLimitError) as caught:
        runtime.call(limits_module, "alloc_bomb", b"null")

    assert caught.value.memory_limit_bytes == limits_module.manifest.limits.memory_bytes
    assert caught.value.fuel_used > 0


def test_rust_panic_raises_trap_with_message(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError) as caught:
        runtime.call(limits_module, "panic", b"null")

    assert "panics on every call" in str(caught.value)


def test_rust_invalid_input_returns_guest_error(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    with pytest.raises(GuestError):
        runtime.call(limits_module, "spin", b'{"unknown_field": 1}')


def test_rust_missing_function_raises_not_found(runtime: WasmRuntime, limits_module: LoadedPackage) -> None:
    with pytest.raises(FunctionNotFoundError) as caught:
        runtime.call(limits_module, "summarize", b"{}")

    assert caught.value.available == ("spin", "alloc_bomb", "panic", "echo")


def test_rust_text_fail_raises_guest_error(runtime: WasmRuntime, dist_dir: Path) -> None:
    package = runtime.load(example_package(dist_dir, "text"))

    with pytest.raises(GuestError) as caught:
        runtime.call(package, "fail", b"{}")

    assert "fail always returns an error" in caught.value.guest_message
    assert call_json(runtime, package, "reverse", {"text": "abc"}) == {"text": "cba"}


def test_rust_penguins_summarize_real_csv(runtime: WasmRuntime, dist_dir: Path) -> None:
    csv_text = (importlib.resources.files("palmerpenguins") / "data" / "penguins.csv").read_text()
    package = runtime.load(example_package(dist_dir, "penguins"))

    summary = call_json(runtime, package, "summarize", {"csv": csv_text})

    species = [group["group"] for group in summary["groups"]]
    assert species == ["Adelie", "Chinstrap", "Gentoo"]
    assert summary["rows"] == 344
    assert sum(group["rows"] for group in summary["groups"]) == 344
