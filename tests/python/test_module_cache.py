"""Disk cache of compiled modules: concurrent processes, corrupt entries and engine settings.

The package is the `limits` Rust example from functions/dist, built with
functions/build.sh when it is missing, so the cache holds real compiled code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

from cloudless.cid import compute_cid
from cloudless.runtime import WasmRuntime, build_package_from_dir
from cloudless.runtime.cache import ENTRY_MAGIC, WASMTIME_VERSION, ModuleCache, engine_fingerprint

REPO_ROOT = Path(__file__).resolve().parents[2]
DIST_DIR = REPO_ROOT / "functions" / "dist"
PROCESSES = 4
ECHO_INPUT = b'{"value": 1}'

# Each child process waits for the start file, loads the package into the
# shared cache directory, runs `echo` and prints what it saw as JSON.
CHILD_SCRIPT = """
import json, sys, time
from pathlib import Path
from cloudless.runtime import WasmRuntime

cache_dir, package_path, start_file = (Path(arg) for arg in sys.argv[1:4])
package_bytes = package_path.read_bytes()
while not start_file.exists():
    time.sleep(0.001)
with WasmRuntime(cache_dir) as runtime:
    loaded = runtime.load(package_bytes)
    result = runtime.call(loaded, "echo", b'{"value": 1}')
    print(json.dumps({
        "compiled": runtime.compile_count,
        "disk_hits": runtime.disk_cache_hits,
        "output": result.output.decode(),
        "cache_file": str(runtime.cache_file(loaded.cid, loaded.modules[-1][0])),
    }))
"""

# Rewrites one cache entry again and again from its own ModuleCache, so a
# reader in another process can check that it never sees a partial entry.
REWRITER_SCRIPT = """
import sys
from pathlib import Path
import wasmtime
from cloudless.runtime.cache import ModuleCache

cache_dir, wasm_path, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
config = wasmtime.Config()
config.consume_fuel = True
config.epoch_interruption = True
cache = ModuleCache(wasmtime.Engine(config), cache_dir)
module = wasmtime.Module(cache._engine, wasm_path.read_bytes())
path = cache.cache_file("bafkrewriter", "guest")
for _ in range(rounds):
    cache._store_on_disk(path, module)
print("done")
"""


def runtime_engine(*, consume_fuel: bool = True, opt_level: str | None = None) -> wasmtime.Engine:
    """Return an engine with WasmRuntime's settings, or with one of them changed."""
    config = wasmtime.Config()
    config.consume_fuel = consume_fuel
    config.epoch_interruption = True
    if opt_level is not None:
        config.cranelift_opt_level = opt_level
    return wasmtime.Engine(config)


@pytest.fixture(scope="module")
def limits_package() -> bytes:
    if not (DIST_DIR / "limits.wasm").is_file():
        subprocess.run(["bash", str(REPO_ROOT / "functions" / "build.sh")], check=True, cwd=REPO_ROOT, timeout=1800)
    return build_package_from_dir(REPO_ROOT / "functions" / "examples" / "limits", DIST_DIR)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "python"), env.get("PYTHONPATH", "")])
    return env


def cache_entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.cwasm"))


def load_echo(cache_dir: Path, package_bytes: bytes) -> tuple[WasmRuntime, bytes]:
    runtime = WasmRuntime(cache_dir)
    loaded = runtime.load(package_bytes)
    return runtime, runtime.call(loaded, "echo", ECHO_INPUT).output


# --- concurrent processes -----------------------------------------------------------


def test_processes_share_empty_cache(tmp_path: Path, limits_package: bytes) -> None:
    cache_dir = tmp_path / "compiled"
    package_path = tmp_path / "limits.tar"
    package_path.write_bytes(limits_package)
    start_file = tmp_path / "start"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, str(cache_dir), str(package_path), str(start_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for _ in range(PROCESSES)
    ]
    # Let every child import wasmtime and read the package before they start together.
    time.sleep(1.0)
    start_file.touch()
    reports = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        reports.append(json.loads(stdout.strip().splitlines()[-1]))

    outputs = {report["output"] for report in reports}
    assert len(outputs) == 1, outputs
    assert json.loads(outputs.pop()) == {"value": 1}
    assert len({report["cache_file"] for report in reports}) == 1
    # The flock lets one process compile while the others wait and read its entry.
    assert sum(report["compiled"] for report in reports) == 1
    assert sum(report["disk_hits"] for report in reports) == PROCESSES - 1

    entries = cache_entries(cache_dir)
    assert [entry.name for entry in entries] == [Path(reports[0]["cache_file"]).name]
    assert not list(cache_dir.glob("*.tmp"))
    runtime, output = load_echo(cache_dir, limits_package)
    with runtime:
        assert runtime.compile_count == 0
        assert runtime.disk_cache_hits == 1
    assert json.loads(output) == {"value": 1}


def test_reader_never_sees_partial_entry(tmp_path: Path) -> None:
    cache_dir = tmp_path / "compiled"
    wasm = (DIST_DIR / "limits.wasm").read_bytes() if (DIST_DIR / "limits.wasm").is_file() else None
    if wasm is None:
        pytest.skip("functions/dist/limits.wasm is missing; test_processes_share_empty_cache builds it")
    wasm_path = tmp_path / "limits.wasm"
    wasm_path.write_bytes(wasm)
    cache = ModuleCache(runtime_engine(), cache_dir)
    path = cache.cache_file("bafkrewriter", "guest")
    assert path is not None
    cache._store_on_disk(path, wasmtime.Module(runtime_engine(), wasm))

    rewriter = subprocess.Popen(
        [sys.executable, "-c", REWRITER_SCRIPT, str(cache_dir), str(wasm_path), "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    reads = 0
    while rewriter.poll() is None:
        reader = ModuleCache(runtime_engine(), cache_dir)
        module = reader._load_from_disk(path, "bafkrewriter", "guest")
        assert module is not None, f"read {reads + 1} saw a partial or corrupt entry"
        reads += 1
    _, stderr = rewriter.communicate(timeout=60)
    assert rewriter.returncode == 0, stderr
    assert reads > 0


# --- corrupt entries ------------------------------------------------------------------

CORRUPTIONS = [
    ("truncated to half", lambda entry: entry[: len(entry) // 2]),
    ("shorter than header", lambda entry: entry[:10]),
    ("empty", lambda entry: b""),
    ("flipped payload byte", lambda entry: entry[:-100] + bytes([entry[-100] ^ 0xFF]) + entry[-99:]),
    ("wrong magic", lambda entry: b"x" * len(ENTRY_MAGIC) + entry[len(ENTRY_MAGIC) :]),
    (
        "garbage with valid digest",
        lambda entry: ENTRY_MAGIC + hashlib.sha256(b"not a module").digest() + b"not a module",
    ),
]


@pytest.mark.parametrize(("case", "corrupt"), CORRUPTIONS, ids=[case for case, _ in CORRUPTIONS])
def test_corrupt_entry_is_rebuilt(
    tmp_path: Path, limits_package: bytes, caplog: pytest.LogCaptureFixture, case: str, corrupt: object
) -> None:
    first, _ = load_echo(tmp_path, limits_package)
    first.close()
    [entry_path] = cache_entries(tmp_path)
    good_entry = entry_path.read_bytes()
    entry_path.write_bytes(corrupt(good_entry))  # type: ignore[operator]

    with caplog.at_level(logging.WARNING, logger="cloudless.runtime"):
        second, output = load_echo(tmp_path, limits_package)
        second.close()

    assert second.compile_count == 1
    assert second.disk_cache_hits == 0
    assert json.loads(output) == {"value": 1}
    assert any(str(entry_path) in record.getMessage() for record in caplog.records), case
    assert entry_path.read_bytes().startswith(ENTRY_MAGIC)
    third, _ = load_echo(tmp_path, limits_package)
    third.close()
    assert third.compile_count == 0
    assert third.disk_cache_hits == 1


# --- engine settings --------------------------------------------------------------------


def test_fingerprint_follows_engine_settings() -> None:
    default = engine_fingerprint(runtime_engine())

    assert engine_fingerprint(runtime_engine()) == default
    assert engine_fingerprint(runtime_engine(consume_fuel=False)) != default
    assert engine_fingerprint(runtime_engine(opt_level="none")) != default


def test_other_engine_entry_not_used(tmp_path: Path, limits_package: bytes) -> None:
    cid = compute_cid(limits_package)
    first, _ = load_echo(tmp_path, limits_package)
    first.close()
    [runtime_entry] = cache_entries(tmp_path)
    runtime_bytes = runtime_entry.read_bytes()
    wasm = (DIST_DIR / "limits.wasm").read_bytes()

    other = ModuleCache(runtime_engine(consume_fuel=False), tmp_path)
    other.get(cid, "limits", wasm)

    assert other.compile_count == 1
    assert other.disk_hits == 0
    other_entry = other.cache_file(cid, "limits")
    assert other_entry is not None
    assert other_entry != runtime_entry
    assert f"wasmtime-{WASMTIME_VERSION}-" in other_entry.name
    assert other_entry.is_file()
    assert runtime_entry.read_bytes() == runtime_bytes


def test_misnamed_entry_is_rejected(tmp_path: Path, limits_package: bytes, caplog: pytest.LogCaptureFixture) -> None:
    cid = compute_cid(limits_package)
    wasm = (DIST_DIR / "limits.wasm").read_bytes()
    no_fuel = ModuleCache(runtime_engine(consume_fuel=False), tmp_path)
    no_fuel.get(cid, "limits", wasm)
    with_fuel = ModuleCache(runtime_engine(), tmp_path)
    source, target = no_fuel.cache_file(cid, "limits"), with_fuel.cache_file(cid, "limits")
    assert source is not None
    assert target is not None
    # An entry of the no-fuel engine under the fuel engine's name: its digest
    # is valid, so only wasmtime's own settings check can catch it.
    target.write_bytes(source.read_bytes())

    with caplog.at_level(logging.WARNING, logger="cloudless.runtime"):
        with_fuel.get(cid, "limits", wasm)

    assert with_fuel.compile_count == 1
    assert with_fuel.disk_hits == 0
    assert any("rejected" in record.getMessage() for record in caplog.records)
