"""Proof benchmark: receipt signing and verification rates, challenge game gas, replication latency.

    make bench-proofs
    .venv/bin/python bench/proofs_bench.py [--quick] [--receipts 5000] [--rounds 5] ...

Prints three tables, each measured side by side in one run:

1. receipts signed and verified per second on one core, with the process
   pinned to one CPU. The fast path (`cloudless.receipts.fast`) runs beside
   the eth_account path (eth_abi digests, eth_account signing, eth_keys
   recovery), eth_account's typed-data API and the public eip712 functions,
   with the ratios to the eth_account path. The target is at least 10,000
   verifications per second with the fast path.
2. gas of epoch proofs, SAMPLE and RECEIPT challenges, answers for trees of
   1, 16 and 1024 receipts, resolveUnanswered and the fraud proofs, read from
   the receipts of real transactions on an anvil that the benchmark starts on
   127.0.0.1 (bench/proofs_gas.py has the timeline).
3. the latency of a call through the gateway with replication k = 1, 2 and 3
   over three provider node processes on 127.0.0.1, and what k = 2 and
   k = 3 add.

The run fails (exit code 1) when a step does not do what it should, such as
a path signing differently or a challenge not ending as expected. A missed
target shows as fail and does not change the exit code. The last line is
`receipts verified per second: N`, the fast path's rate on one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gas_market import BenchError  # noqa: E402
from proofs_gas import TREE_SIZES, ProofGasResults, measure_proof_gas  # noqa: E402
from proofs_replication import REPLICATIONS, ReplicationResults, measure_replication  # noqa: E402
from proofs_signing import ETH_ACCOUNT, FAST, SigningBenchError, SigningResults, measure_signing  # noqa: E402

from cloudless.exceptions import CloudlessError  # noqa: E402
from cloudless.receipts.fast import KECCAK_BACKEND  # noqa: E402

VERIFY_TARGET_PER_SECOND = 10_000


def verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[red]fail[/]"


def machine_line() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{package} {metadata.version(package)}" for package in ("coincurve", "eth-account", "eth-keys", "web3")
    )
    return (
        f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {versions}, "
        f"keccak from {KECCAK_BACKEND}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, for tests: about 20 s instead of 70 s")
    parser.add_argument("--receipts", type=int, default=5000, help="receipts signed and verified per path and round (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="signing and verifying rounds, reported as median rates (default 5)")
    parser.add_argument(
        "--typed-data-receipts", type=int, default=500, help="receipts per round for the slow typed-data path (default 500)"
    )
    parser.add_argument("--replication-calls", type=int, default=30, help="timed gateway calls per k and round (default 30)")
    parser.add_argument("--replication-rounds", type=int, default=3, help="rounds over k = 1, 2, 3 (default 3)")
    args = parser.parse_args()
    if args.quick:
        args.receipts, args.rounds, args.typed_data_receipts = 400, 2, 50
        args.replication_calls, args.replication_rounds = 4, 1
    for name in ("receipts", "rounds", "typed_data_receipts", "replication_calls", "replication_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(args, name)}")
    return args


def run(args: argparse.Namespace) -> tuple[SigningResults, ProofGasResults, ReplicationResults]:
    """Run the three parts one after another, showing progress on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("signing and verifying receipts")

        def report(description: str) -> None:
            progress.update(task, description=description)

        signing = measure_signing(args.receipts, args.rounds, typed_data_count=args.typed_data_receipts, report=report)
        gas = measure_proof_gas(report)
        replication = measure_replication(args.replication_calls, args.replication_rounds, report)
    return signing, gas, replication


def signing_table(results: SigningResults) -> Table:
    reference = results.path(ETH_ACCOUNT)
    table = Table(
        title=(
            f"Receipts per second, one core ({results.pinning}), median of {results.rounds} rounds of "
            f"{results.receipts:,} receipts; eth_keys backend {results.eth_keys_backend}"
        )
    )
    for column in ("path", "signed/s", "verified/s", "signing vs eth_account", "verifying vs eth_account"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for path in results.paths:
        table.add_row(
            path.label,
            f"{path.signed_per_second:,.0f}",
            f"{path.verified_per_second:,.0f}",
            f"{path.signed_per_second / reference.signed_per_second:.2f}x",
            f"{path.verified_per_second / reference.verified_per_second:.2f}x",
        )
    return table


def gas_table(results: ProofGasResults) -> Table:
    table = Table(title="Gas of proofs, challenges and fraud proofs (gasUsed from receipts)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("notes")
    for row in results.rows:
        table.add_row(row.operation, f"{row.gas:,}", row.note)
    return table


def replication_table(results: ReplicationResults) -> Table:
    table = Table(
        title=f"Gateway call latency with replication k, 3 provider nodes on 127.0.0.1 (median of {results.calls} calls)"
    )
    for column in ("k", "latency", "extra over k = 1", "k / k = 1"):
        table.add_column(column, justify="right")
    base = results.latency_ms[1]
    for replication in REPLICATIONS:
        extra = f"{results.extra_ms(replication):+.2f} ms" if replication > 1 else ""
        table.add_row(
            str(replication), f"{results.latency_ms[replication]:.2f} ms", extra, f"{results.latency_ms[replication] / base:.2f}"
        )
    return table


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    try:
        signing, gas, replication = run(args)
    except (BenchError, SigningBenchError, CloudlessError) as error:
        Console(stderr=True).print(f"[bold red]proof benchmark failed:[/] {error}", highlight=False)
        return 1

    output = Console()
    if not output.is_terminal:
        output = Console(width=130)  # room for the widest table when the output goes to a file or pipe
    output.print(f"Proof benchmark on {machine_line()}", highlight=False)

    output.print(signing_table(signing))
    fast = signing.path(FAST)
    eth_account = signing.path(ETH_ACCOUNT)
    output.print(
        f"fast path / eth_account: {fast.verified_per_second / eth_account.verified_per_second:.2f}x verifications, "
        f"{fast.signed_per_second / eth_account.signed_per_second:.2f}x signatures per second",
        highlight=False,
    )
    passed = fast.verified_per_second >= VERIFY_TARGET_PER_SECOND
    output.print(
        f"verification target: {fast.verified_per_second:,.0f}/s on one core, "
        f"target >= {VERIFY_TARGET_PER_SECOND:,}/s: {verdict(passed)}",
        highlight=False,
    )

    output.print(gas_table(gas))
    smallest, _, largest = TREE_SIZES
    output.print(
        f"answer gas per doubling of the tree: {gas.gas_per_tree_level():,.0f} "
        f"(from {TREE_SIZES[1]} to {largest} receipts; a tree of {smallest} has no Merkle path and no next leaf)",
        highlight=False,
    )

    output.print(replication_table(replication))
    for k in REPLICATIONS[1:]:
        output.print(f"replication k = {k} adds {replication.extra_ms(k):.2f} ms per call over k = 1", highlight=False)
    output.print("(each node runs in its own process, and all share this machine's cores with the gateway and anvil)", highlight=False)

    output.print(f"measured in {time.monotonic() - started:.1f} s", highlight=False)
    print(f"receipts verified per second: {fast.verified_per_second:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
