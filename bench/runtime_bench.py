"""Wasm runtime benchmark: module cache and per-call cost, measured side by side.

    .venv/bin/python bench/runtime_bench.py [--rounds 5] [--calls 20]

Prints, for the penguins package (real Rust module, 200 KB):
- load time with no cache (compile), from the disk cache (deserialize) and
  from the in-memory cache, and the ratio compile / disk;
- time per call for `summarize` over the full Palmer Penguins CSV and for a
  tiny `echo` call (limits package), both with a fresh store and instance per
  call, and the fuel each uses.
Run `make setup` first so functions/dist/*.wasm exist.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from cloudless.runtime.engine import WasmRuntime
from cloudless.runtime.package import build_package_from_dir

ROOT = Path(__file__).resolve().parents[1]


def build(name: str) -> bytes:
    return build_package_from_dir(ROOT / "functions" / "examples" / name, ROOT / "functions" / "dist")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_loads(package: bytes, rounds: int) -> dict[str, float]:
    cold, disk, memory = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache_dir:
            with WasmRuntime(Path(cache_dir)) as runtime:
                start = time.perf_counter()
                runtime.load(package)
                cold.append(time.perf_counter() - start)

                start = time.perf_counter()
                runtime.load(package)
                memory.append(time.perf_counter() - start)

            with WasmRuntime(Path(cache_dir)) as runtime:
                start = time.perf_counter()
                runtime.load(package)
                disk.append(time.perf_counter() - start)
                assert runtime.compile_count == 0, "the second runtime compiled instead of using the disk cache"
    return {"compile": median_ms(cold), "disk": median_ms(disk), "memory": median_ms(memory)}


def bench_calls(package: bytes, function: str, payload: bytes, calls: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as cache_dir, WasmRuntime(Path(cache_dir)) as runtime:
        loaded = runtime.load(package)
        runtime.call(loaded, function, payload)  # warm-up
        samples, fuel = [], 0
        for _ in range(calls):
            start = time.perf_counter()
            result = runtime.call(loaded, function, payload)
            samples.append(time.perf_counter() - start)
            fuel = result.fuel_used
    return median_ms(samples), fuel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="load measurements per mode")
    parser.add_argument("--calls", type=int, default=20, help="calls per function")
    args = parser.parse_args()

    penguins, limits = build("penguins"), build("limits")
    loads = bench_loads(penguins, args.rounds)
    csv_text = (resources.files("palmerpenguins") / "data" / "penguins.csv").read_text()
    summarize_ms, summarize_fuel = bench_calls(penguins, "summarize", json.dumps({"csv": csv_text}).encode(), args.calls)
    echo_ms, echo_fuel = bench_calls(limits, "echo", b'{"value": 1}', args.calls)

    print(f"package load (penguins, {len(penguins)} bytes), median of {args.rounds}:")
    print(f"  compile (no cache)   {loads['compile']:8.1f} ms")
    print(f"  disk cache           {loads['disk']:8.1f} ms")
    print(f"  memory cache         {loads['memory']:8.3f} ms")
    print(f"  compile / disk       {loads['compile'] / loads['disk']:8.1f} x")
    print(f"calls, fresh instance each, median of {args.calls}:")
    print(f"  summarize (344 rows) {summarize_ms:8.2f} ms  {summarize_fuel:,} fuel")
    print(f"  echo                 {echo_ms:8.2f} ms  {echo_fuel:,} fuel")
    print(f"  summarize / echo     {summarize_ms / echo_ms:8.1f} x")


if __name__ == "__main__":
    main()
