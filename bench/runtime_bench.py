"""Wasm runtime benchmark: per-call overhead, cold start and throughput, measured side by side.

    make bench-runtime
    .venv/bin/python bench/runtime_bench.py [--echo-rounds 400] [--http-rounds 60] [--seconds 2] ...

Two functions run in every part: `echo` of the `limits` example (a trivial
call) and `summarize` of the `penguins` example over the full Palmer
Penguins CSV (344 rows). Each part prints a table:

- warm call: WasmRuntime.call against bare wasmtime-py running the same
  compiled module with the same engine settings, each with a fresh store
  and instance per call, alternating call by call;
- cold start: a new WasmRuntime, package load and first call, with an
  empty cache directory and with the compiled modules on disk;
- calls per second from one thread with the process pinned to one core;
- the same calls over HTTP through a provider node on 127.0.0.1
  (bench/node_harness.py: the real node app without a chain).

All times are medians. The last line is `warm overhead: R`, the ratio of
WasmRuntime.call to bare wasmtime-py for warm `echo` calls. The targets
(warm overhead <= 1.5x, cold start from a warm disk cache < 10 ms) show as
pass or fail, and a failed target does not change the exit code.
Run `make setup` first so functions/dist/*.wasm exist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
import wasmtime
from eth_keys.backends import get_backend as eth_keys_backend
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from node_harness import DOMAIN, SIGNER_KEY, LocalNode, local_node  # noqa: E402

from cloudless.cid import cid_to_bytes, compute_cid  # noqa: E402
from cloudless.node.models import CallBody  # noqa: E402
from cloudless.receipts.eip712 import Receipt  # noqa: E402
from cloudless.receipts.models import SignedReceipt  # noqa: E402
from cloudless.runtime.cache import WASMTIME_VERSION  # noqa: E402
from cloudless.runtime.engine import LoadedPackage, WasmRuntime  # noqa: E402
from cloudless.runtime.package import build_package_from_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARM_OVERHEAD_TARGET = 1.5
COLD_START_TARGET_MS = 10.0
ECHO_INPUT = b'{"value": 1}'


@dataclass(frozen=True)
class Workload:
    """One function of one package and its input."""

    label: str
    package: bytes
    function: str
    input_bytes: bytes


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[red]fail[/]"


# --- bare wasmtime-py ---------------------------------------------------------------------


class BareCaller:
    """Run a package function with wasmtime-py only, as a host without Cloudless would.

    It uses WasmRuntime's engine settings (fuel metering and epoch
    interruption) and, per call, a fresh store with the manifest's fuel,
    memory limit and a far epoch deadline, a fresh WASI context and fresh
    instances. It calls `_initialize`, `cloudless_alloc` and the function,
    and copies the output bytes. It skips what the runtime adds: stdout and
    stderr capture, the ABI version check, envelope decoding and failure
    classification.
    """

    def __init__(self, loaded: LoadedPackage, serialized: dict[str, bytes]) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.modules = [(name, wasmtime.Module.deserialize(self.engine, serialized[name])) for name, _ in loaded.modules]
        self.limits = loaded.manifest.limits
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def call(self, function: str, input_bytes: bytes) -> bytes:
        store = wasmtime.Store(self.engine)
        store.set_fuel(self.limits.fuel)
        store.set_limits(memory_size=self.limits.memory_bytes)
        store.set_epoch_deadline(2**62)
        store.set_wasi(wasmtime.WasiConfig())
        # A linker that defines earlier modules' instances belongs to one store, so link order needs its own.
        linker = self.linker
        if len(self.modules) > 1:
            linker = wasmtime.Linker(self.engine)
            linker.define_wasi()
        instance = None
        for name, module in self.modules:
            instance = linker.instantiate(store, module)
            exports = instance.exports(store)
            initialize = exports.get("_initialize")
            if isinstance(initialize, wasmtime.Func):
                initialize(store)
            if len(self.modules) > 1:
                linker.define_instance(store, name, instance)
        assert instance is not None
        exports = instance.exports(store)
        pointer = exports["cloudless_alloc"](store, len(input_bytes)) & 0xFFFFFFFF
        memory = exports["memory"]
        memory.write(store, input_bytes, pointer)
        packed = exports[function](store, pointer, len(input_bytes)) & 0xFFFFFFFFFFFFFFFF
        output_pointer, output_length = packed >> 32, packed & 0xFFFFFFFF
        return bytes(memory.read(store, output_pointer, output_pointer + output_length))


# --- measurements -----------------------------------------------------------------------------


@contextmanager
def runtime_with(workloads: list[Workload]) -> Iterator[tuple[WasmRuntime, dict[str, LoadedPackage], Path]]:
    with tempfile.TemporaryDirectory() as cache_dir, WasmRuntime(Path(cache_dir)) as runtime:
        loaded = {workload.label: runtime.load(workload.package) for workload in workloads}
        yield runtime, loaded, Path(cache_dir)


def serialized_modules(runtime: WasmRuntime, loaded: LoadedPackage) -> dict[str, bytes]:
    return {name: bytes(module.serialize()) for name, module in loaded.modules}


def warm_calls(workload: Workload, runtime: WasmRuntime, loaded: LoadedPackage, rounds: int) -> dict[str, float]:
    """Time WasmRuntime.call and BareCaller.call in alternation and return their medians in ms."""
    bare = BareCaller(loaded, serialized_modules(runtime, loaded))
    project_output = runtime.call(loaded, workload.function, workload.input_bytes).output
    bare_output = bare.call(workload.function, workload.input_bytes)
    if json.loads(project_output) != json.loads(bare_output)["ok"]:
        raise SystemExit(f"{workload.label}: bare wasmtime-py returned another output than WasmRuntime")

    project, plain = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        runtime.call(loaded, workload.function, workload.input_bytes)
        project.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare.call(workload.function, workload.input_bytes)
        plain.append(time.perf_counter() - started)
    return {"runtime": median_ms(project), "bare": median_ms(plain)}


def cold_start_ms(workload: Workload, cache_dir: Path) -> float:
    """Time a new WasmRuntime on `cache_dir`, the package load and the first call."""
    started = time.perf_counter()
    runtime = WasmRuntime(cache_dir)
    loaded = runtime.load(workload.package)
    runtime.call(loaded, workload.function, workload.input_bytes)
    elapsed = time.perf_counter() - started
    runtime.close()
    return elapsed


def cold_starts(workload: Workload, empty_rounds: int, warm_rounds: int) -> dict[str, float]:
    empty, warm = [], []
    for _ in range(empty_rounds):
        with tempfile.TemporaryDirectory() as cache_dir:
            empty.append(cold_start_ms(workload, Path(cache_dir)))
    with tempfile.TemporaryDirectory() as cache_dir:
        cold_start_ms(workload, Path(cache_dir))  # fills the disk cache
        for _ in range(warm_rounds):
            warm.append(cold_start_ms(workload, Path(cache_dir)))
    return {"empty": median_ms(empty), "warm": median_ms(warm)}


@contextmanager
def one_core() -> Iterator[str]:
    """Pin this process, with the runtime's epoch ticker thread, to one CPU while the block runs."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    previous = os.sched_getaffinity(0)
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, previous)


def calls_per_second(call: Callable[[], object], seconds: float) -> float:
    call()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        call()
        count += 1
    return count / (time.perf_counter() - started)


def signature_work_ms(node: LocalNode, rounds: int = 20) -> float:
    """Return the median time of the node's three secp256k1 operations per call.

    They are: recovering the request signer, signing the receipt, and the
    receipt store's check of that signature.
    """
    samples = []
    for _ in range(rounds):
        request = CallBody.model_validate(node.call_body(1, "echo", ECHO_INPUT)).request
        receipt = Receipt(
            worker_id=1,
            request_hash=request.digest(DOMAIN),
            app_cid=cid_to_bytes(compute_cid(b"signature benchmark")),
            output_hash=b"\x02" * 32,
            fuel_used=1,
            epoch=1,
            sequence=0,
        )
        started = time.perf_counter()
        request.verify(DOMAIN, now=int(time.time()))
        SignedReceipt.sign(receipt, SIGNER_KEY, DOMAIN).verify(DOMAIN)
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


def http_calls(workloads: list[Workload], rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    """Measure latency and sequential calls per second through a node on 127.0.0.1, one worker per workload."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as data_dir, local_node(
        Path(data_dir), [workload.package for workload in workloads], max_concurrent_calls=2
    ) as node, httpx.Client(timeout=30) as client:
        results["signatures"] = {"latency": signature_work_ms(node)}
        for worker_id, workload in enumerate(workloads, start=1):
            # Requests are signed before the clock starts: the caller's signing is not the node's cost.
            bodies = [node.call_body(worker_id, workload.function, workload.input_bytes) for _ in range(rounds + 1)]
            first = node.post(client, worker_id, bodies.pop())
            if first.status_code != 200 or not first.json()["ok"]:
                raise SystemExit(f"{workload.label} over HTTP failed: {first.status_code} {first.text[:300]}")
            samples = []
            for body in bodies:
                started = time.perf_counter()
                response = node.post(client, worker_id, body)
                samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"{workload.label} over HTTP failed: {response.status_code} {response.text[:300]}")

            # Enough signed requests for `seconds` at the measured latency, with a margin.
            needed = int(seconds / statistics.median(samples) * 1.5) + 10
            throughput_bodies = iter([node.call_body(worker_id, workload.function, workload.input_bytes) for _ in range(needed)])
            rate = calls_per_second(lambda: node.post(client, worker_id, next(throughput_bodies)), seconds)
            results[workload.label] = {"latency": median_ms(samples), "rate": rate}
    return results


# --- output -------------------------------------------------------------------------------------


def machine_line() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, wasmtime-py {WASMTIME_VERSION}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--echo-rounds", type=int, default=400, help="warm echo calls per mode (default 400)")
    parser.add_argument("--summarize-rounds", type=int, default=60, help="warm summarize calls per mode (default 60)")
    parser.add_argument("--cold-rounds", type=int, default=20, help="cold starts from a warm disk cache (default 20)")
    parser.add_argument("--compile-rounds", type=int, default=3, help="cold starts with an empty cache (default 3)")
    parser.add_argument("--http-rounds", type=int, default=60, help="HTTP calls per function for latency (default 60)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per calls-per-second run (default 2)")
    args = parser.parse_args()

    console = Console() if sys.stdout.isatty() else Console(width=120)
    dist = ROOT / "functions" / "dist"
    missing = [name for name in ("limits", "penguins") if not (dist / f"{name}.wasm").is_file()]
    if missing:
        Console(stderr=True).print(f"[red]missing functions/dist/{missing[0]}.wasm; run `make setup` first[/]")
        return 1
    csv_text = (resources.files("palmerpenguins") / "data" / "penguins.csv").read_text()
    workloads = [
        Workload("echo", build_package_from_dir(ROOT / "functions/examples/limits", dist), "echo", ECHO_INPUT),
        Workload(
            "summarize",
            build_package_from_dir(ROOT / "functions/examples/penguins", dist),
            "summarize",
            json.dumps({"csv": csv_text}).encode(),
        ),
    ]
    rounds = {"echo": args.echo_rounds, "summarize": args.summarize_rounds}
    console.print(f"Wasm runtime benchmark on {machine_line()}")
    started = time.perf_counter()

    with runtime_with(workloads) as (runtime, loaded, _):
        warm = {w.label: warm_calls(w, runtime, loaded[w.label], rounds[w.label]) for w in workloads}
        with one_core() as pinning:
            rates: dict[str, dict[str, float]] = {}
            for workload in workloads:
                bare = BareCaller(loaded[workload.label], serialized_modules(runtime, loaded[workload.label]))
                package = loaded[workload.label]
                rates[workload.label] = {
                    "runtime": calls_per_second(
                        lambda: runtime.call(package, workload.function, workload.input_bytes), args.seconds
                    ),
                    "bare": calls_per_second(lambda: bare.call(workload.function, workload.input_bytes), args.seconds),
                }
    cold = {w.label: cold_starts(w, args.compile_rounds, args.cold_rounds) for w in workloads}
    http = http_calls(workloads, args.http_rounds, args.seconds)
    signatures = http.pop("signatures")["latency"]

    table = Table(title=f"(a) Warm call, fresh store and instance per call (median of {args.echo_rounds} / {args.summarize_rounds})")
    for column in ("function", "WasmRuntime.call", "bare wasmtime-py", "runtime / bare", "target"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for label, result in warm.items():
        ratio = result["runtime"] / result["bare"]
        target = verdict(ratio <= WARM_OVERHEAD_TARGET) + f" (<= {WARM_OVERHEAD_TARGET}x)" if label == "echo" else ""
        table.add_row(label, f"{result['runtime']:.3f} ms", f"{result['bare']:.3f} ms", f"{ratio:.2f}x", target)
    console.print(table)

    table = Table(
        title=f"(b) Cold start: new WasmRuntime + load + first call (median of {args.compile_rounds} empty, {args.cold_rounds} warm)"
    )
    for column in ("package", "empty cache dir", "warm disk cache", "empty / warm", "target"):
        table.add_column(column, justify="left" if column == "package" else "right")
    for label, result in cold.items():
        target = verdict(result["warm"] < COLD_START_TARGET_MS) + f" (< {COLD_START_TARGET_MS:.0f} ms)"
        table.add_row(
            label, f"{result['empty']:.1f} ms", f"{result['warm']:.2f} ms", f"{result['empty'] / result['warm']:.0f}x", target
        )
    console.print(table)

    table = Table(title=f"(c) Calls per second, one thread, {pinning}, {args.seconds:g} s each")
    for column in ("function", "WasmRuntime.call", "bare wasmtime-py", "runtime / bare"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for label, result in rates.items():
        table.add_row(label, f"{result['runtime']:,.0f}/s", f"{result['bare']:,.0f}/s", f"{result['runtime'] / result['bare']:.2f}")
    console.print(table)

    table = Table(
        title=f"(d) Over HTTP through a provider node on 127.0.0.1, one client (latency: median of {args.http_rounds})"
    )
    for column in ("function", "latency (median)", "direct call", "HTTP / direct", "sequential calls/s"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for label, result in http.items():
        direct = warm[label]["runtime"]
        table.add_row(
            label, f"{result['latency']:.2f} ms", f"{direct:.3f} ms", f"{result['latency'] / direct:.1f}x", f"{result['rate']:,.0f}/s"
        )
    console.print(table)
    console.print(
        f"Each HTTP call also recovers the request signer, signs the receipt and checks that signature before "
        f"the store fsyncs it. These three secp256k1 operations take {signatures:.1f} ms per call "
        f"(eth_keys backend {type(eth_keys_backend()).__name__})."
    )

    console.print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    overhead = warm["echo"]["runtime"] / warm["echo"]["bare"]
    print(f"warm overhead: {overhead:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
