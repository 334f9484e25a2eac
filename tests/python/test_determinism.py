"""Determinism: the same package, function and input give the same output and fuel count.

Each case is checked over repeated calls in one runtime, across fresh
runtimes that compile the module separately (and one that loads it from
another's disk cache), and across two Python processes with different hash
seeds. The cases are a hand-written WAT checksum and the Rust `penguins`
example's `summarize` on the full Palmer Penguins CSV.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hostile_guests as guests
from cloudless.runtime import WasmRuntime, build_package_from_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_SOURCE_DIR = REPO_ROOT / "python"
DIST_DIR = REPO_ROOT / "functions" / "dist"
EXAMPLES_DIR = REPO_ROOT / "functions" / "examples"

REPEATED_CALLS = 5
CHECKSUM_ROUNDS = 100
FNV32_OFFSET_BASIS = 0x811C9DC5
FNV32_PRIME = 0x01000193

# Loads a package from a file, calls one function and prints the output's
# sha256 and the fuel used as JSON. Arguments: package path, function name,
# input path and compile-cache directory.
CALL_SCRIPT = """
import hashlib
import json
import sys
from pathlib import Path

from cloudless.runtime import WasmRuntime

package_path, function, input_path, cache_dir = sys.argv[1:5]
with WasmRuntime(cache_dir=Path(cache_dir)) as runtime:
    package = runtime.load(Path(package_path).read_bytes())
    result = runtime.call(package, function, Path(input_path).read_bytes())
    compile_count = runtime.compile_count
print(json.dumps({
    "sha256": hashlib.sha256(result.output).hexdigest(),
    "fuel_used": result.fuel_used,
    "compile_count": compile_count,
}))
"""

CHECKSUM_FUNCTION = f"""
  ;; Returns {{"ok":"<hex>"}} with the 32-bit FNV-1a hash of the input bytes,
  ;; hashed {CHECKSUM_ROUNDS} times over without resetting the state.
  (func (export "checksum") (param $ptr i32) (param $len i32) (result i64)
    (local $hash i32)
    (local $i i32)
    (local $round i32)
    (local $out i32)
    (local $digit i32)
    (local.set $hash (i32.const {FNV32_OFFSET_BASIS}))
    (loop $rounds
      (local.set $i (i32.const 0))
      (block $done
        (loop $bytes
          (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
          (local.set $hash
            (i32.mul (i32.xor (local.get $hash) (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
                     (i32.const {FNV32_PRIME})))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $bytes)))
      (local.set $round (i32.add (local.get $round) (i32.const 1)))
      (br_if $rounds (i32.lt_u (local.get $round) (i32.const {CHECKSUM_ROUNDS}))))
    (local.set $out (call $alloc (i32.const 17)))
    (memory.copy (local.get $out) (i32.const {guests.OK_STRING_PREFIX[0]}) (i32.const 7))
    (local.set $i (i32.const 0))
    (loop $hex
      (local.set $digit
        (i32.and (i32.shr_u (local.get $hash) (i32.sub (i32.const 28) (i32.mul (local.get $i) (i32.const 4))))
                 (i32.const 15)))
      ;; '0' is 48, and 'a' is 87 + 10.
      (i32.store8 (i32.add (local.get $out) (i32.add (i32.const 7) (local.get $i)))
        (i32.add (local.get $digit) (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $digit) (i32.const 10)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $hex (i32.lt_u (local.get $i) (i32.const 8))))
    ;; The bytes '"' (0x22) and '}}' (0x7d) as a little-endian i16.
    (i32.store16 (i32.add (local.get $out) (i32.const 15)) (i32.const 0x7d22))
    (call $pack (local.get $out) (i32.const 17)))
"""


@dataclass(frozen=True)
class DeterminismCase:
    """A package, the function to call and its input."""

    package_bytes: bytes
    function: str
    input_bytes: bytes


@dataclass(frozen=True)
class CallRecord:
    """What must not change between runs: the sha256 of the output and the fuel used."""

    output_sha256: str
    fuel_used: int


def fnv1a_checksum(data: bytes) -> str:
    """Compute in Python what the WAT `checksum` function returns, as 8 hex digits."""
    state = FNV32_OFFSET_BASIS
    for _ in range(CHECKSUM_ROUNDS):
        for byte in data:
            state = ((state ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return f"{state:08x}"


def checksum_case() -> DeterminismCase:
    wasm = guests.compile_wat(guests.abi_guest_wat(CHECKSUM_FUNCTION))
    package_bytes = guests.package_of(wasm, ("checksum",))
    input_bytes = json.dumps({"text": "The quick brown fox jumps over the lazy dog", "n": list(range(50))}).encode()
    return DeterminismCase(package_bytes, "checksum", input_bytes)


def penguins_case() -> DeterminismCase:
    if not (DIST_DIR / "penguins.wasm").is_file():
        pytest.skip(f"{DIST_DIR / 'penguins.wasm'} not found; run functions/build.sh to build the Rust examples")
    csv_text = (importlib.resources.files("palmerpenguins") / "data" / "penguins.csv").read_text()
    package_bytes = build_package_from_dir(EXAMPLES_DIR / "penguins", DIST_DIR)
    input_bytes = json.dumps({"csv": csv_text, "group_by": "island"}).encode()
    return DeterminismCase(package_bytes, "summarize", input_bytes)


CASES = {"wat_checksum": checksum_case, "rust_penguins_summarize": penguins_case}


@pytest.fixture(scope="module", params=CASES.keys())
def case(request: pytest.FixtureRequest) -> DeterminismCase:
    return CASES[request.param]()


@pytest.fixture(scope="module")
def first_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first-cache")


@pytest.fixture(scope="module")
def runtime(first_cache_dir: Path) -> Iterator[WasmRuntime]:
    with WasmRuntime(cache_dir=first_cache_dir) as shared_runtime:
        yield shared_runtime


@pytest.fixture(scope="module")
def baseline(runtime: WasmRuntime, case: DeterminismCase) -> CallRecord:
    """The record of the first call in this process, which every other run must match."""
    return call_once(runtime, case)


def call_once(runtime: WasmRuntime, case: DeterminismCase) -> CallRecord:
    package = runtime.load(case.package_bytes)
    result = runtime.call(package, case.function, case.input_bytes)
    return CallRecord(hashlib.sha256(result.output).hexdigest(), result.fuel_used)


def test_checksum_output_is_correct(runtime: WasmRuntime) -> None:
    """Check the WAT guest against Python, so that a test cannot pass on a consistently wrong result."""
    checksum = checksum_case()
    package = runtime.load(checksum.package_bytes)

    result = runtime.call(package, checksum.function, checksum.input_bytes)

    assert json.loads(result.output) == fnv1a_checksum(checksum.input_bytes)
    assert result.fuel_used > CHECKSUM_ROUNDS * len(checksum.input_bytes)


def test_repeated_calls_match(runtime: WasmRuntime, case: DeterminismCase, baseline: CallRecord) -> None:
    records = [call_once(runtime, case) for _ in range(REPEATED_CALLS)]

    assert records == [baseline] * REPEATED_CALLS


def test_fresh_runtimes_match(
    case: DeterminismCase, baseline: CallRecord, first_cache_dir: Path, tmp_path: Path
) -> None:
    records = []
    for cache_name in ("second-cache", "third-cache"):
        with WasmRuntime(cache_dir=tmp_path / cache_name) as fresh_runtime:
            records.append(call_once(fresh_runtime, case))
            assert fresh_runtime.compile_count == 1

    # Machine code deserialized from the first runtime's disk cache must
    # count fuel the same way as code compiled in this process.
    with WasmRuntime(cache_dir=first_cache_dir) as cached_runtime:
        records.append(call_once(cached_runtime, case))
        assert cached_runtime.compile_count == 0
        assert cached_runtime.disk_cache_hits == 1

    assert records == [baseline] * 3


def test_separate_processes_match(case: DeterminismCase, baseline: CallRecord, tmp_path: Path) -> None:
    package_path = tmp_path / "package.tar"
    package_path.write_bytes(case.package_bytes)
    input_path = tmp_path / "input.json"
    input_path.write_bytes(case.input_bytes)
    script_path = tmp_path / "call_once.py"
    script_path.write_text(CALL_SCRIPT)

    # Both processes run at once, each compiling into its own cache, with
    # different string hash seeds.
    processes = []
    for hash_seed in ("1", "2"):
        environment = dict(os.environ, PYTHONPATH=str(PYTHON_SOURCE_DIR), PYTHONHASHSEED=hash_seed)
        command = [
            sys.executable,
            str(script_path),
            str(package_path),
            case.function,
            str(input_path),
            str(tmp_path / f"cache-{hash_seed}"),
        ]
        processes.append(
            subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )

    records = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"call script failed with exit status {process.returncode}:\n{stderr[-3000:]}"
        printed = json.loads(stdout.strip().splitlines()[-1])
        assert printed["compile_count"] == 1
        records.append(CallRecord(printed["sha256"], printed["fuel_used"]))

    assert records == [baseline, baseline]
