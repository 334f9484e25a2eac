"""Gas benchmark: gas used by the Cloudless contracts, read from the receipts of real transactions.

    make gas                          # runs `make setup` first
    .venv/bin/python bench/gas_bench.py   # after `make setup`, with node_modules/.bin on PATH

Starts its own anvil on a free 127.0.0.1 port, deploys the contracts with a
proof window of 100 epochs, registers three providers with one peer each and
prints:
1. the gas of each user-facing transaction, per worker or epoch where one
   transaction covers several,
2. the reference lifecycle (a 3-worker deal over 10 epochs, every epoch proven
   and claimed) step by step, and beside it iExec PoCo's published gas
   averages with the ratios,
3. the gas of settling N idle epochs and of claiming N epochs, N = 1, 10, 100.
The run fails (exit code 1) when a step does not do what it should, or when
settlement cost grows with idle epochs or claim cost grows faster than
linearly. The last line is `lifecycle gas: N`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cloudless.exceptions import CloudlessError
from gas_market import PROOF_WINDOW_EPOCHS, gas_market
from gas_scenarios import (
    LIFECYCLE_EPOCHS,
    PROOF_BATCH_SIZE,
    Measurement,
    check_scaling,
    measure_claim_scaling,
    measure_idle_settlement,
    measure_lifecycle,
    measure_one_peer_many_workers,
    measure_operations,
)

# Average gas per call of iExec PoCo as iExec published them. This benchmark
# does not run PoCo. `claim` is PoCo's refund of a failed task to the requester.
# NOTE: the publication is not linked here because it was not re-checked.
IEXEC_MATCH_ORDERS = 761_000
IEXEC_INITIALIZE = 226_000
IEXEC_CONTRIBUTE_AND_FINALIZE = 643_000
IEXEC_CLAIM = 182_000
IEXEC_TASK = IEXEC_MATCH_ORDERS + IEXEC_INITIALIZE + IEXEC_CONTRIBUTE_AND_FINALIZE

STEPS = 6  # progress steps: set-up, two groups of operations, lifecycle, settlement, claims


@dataclass(frozen=True)
class Results:
    operations: list[Measurement]
    lifecycle: list[Measurement]
    idle_settlement: dict[int, int]  # idle epochs -> gas of the top-up that settles them
    claim_gas: dict[int, int]  # epochs claimed -> gas of the claim

    @property
    def lifecycle_total(self) -> int:
        return sum(step.gas for step in self.lifecycle)


def main() -> int:
    started = time.monotonic()
    try:
        results = run_scenarios()
        check_scaling(results.idle_settlement, results.claim_gas)
    except (CloudlessError, RuntimeError) as error:
        Console(stderr=True).print(f"[bold red]gas benchmark failed:[/] {error}", highlight=False)
        return 1

    output = Console()
    if not output.is_terminal:
        output = Console(width=120)  # room for the widest table when the output goes to a file or pipe
    print_tables(output, results)
    output.print(
        f"{anvil_version()}, proof window {PROOF_WINDOW_EPOCHS} epochs, "
        f"measured in {time.monotonic() - started:.1f} s",
        highlight=False,
    )
    print(f"lifecycle gas: {results.lifecycle_total}", flush=True)
    return 0


def run_scenarios() -> Results:
    """Run every scenario on one fresh chain, showing progress on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[{task.completed}/{task.total}]"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("starting anvil, deploying, registering 3 providers", total=STEPS)

        def report(description: str) -> None:
            progress.update(task, description=description)

        with gas_market() as market:
            progress.advance(task)
            operations = measure_operations(market, report)
            progress.advance(task)
            operations += measure_one_peer_many_workers(market, report)
            progress.advance(task)
            lifecycle = measure_lifecycle(market, report)
            progress.advance(task)
            idle_settlement = measure_idle_settlement(market, report)
            progress.advance(task)
            claim_gas = measure_claim_scaling(market, report)
            progress.advance(task)
    return Results(operations, lifecycle, idle_settlement, claim_gas)


def print_tables(output: Console, results: Results) -> None:
    total = results.lifecycle_total
    lifecycle_heading = f"Reference lifecycle: 3 workers on 3 providers, {LIFECYCLE_EPOCHS} epochs, all proven and claimed"
    claim_heading = f"Claim of N epochs in one claim transaction (proven in batches of {PROOF_BATCH_SIZE})"
    sections = [
        ("Gas per transaction (gasUsed from receipts)", operations_table(results.operations)),
        (lifecycle_heading, lifecycle_table(results.lifecycle, total)),
        ("The lifecycle beside iExec PoCo (published averages, not measured here)", iexec_table(results.lifecycle, total)),
        ("Settlement of N idle epochs: a top-up after N epochs without a transaction", settlement_table(results.idle_settlement)),
        (claim_heading, claim_table(results.claim_gas)),
    ]
    for heading, table in sections:
        output.print(f"\n[bold]{heading}[/]", highlight=False)
        output.print(table)


def operations_table(rows: list[Measurement]) -> Table:
    table = Table()
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("per worker or epoch", justify="right")
    table.add_column("notes")
    for row in rows:
        per_unit = f"{row.per_unit:,.0f} / {row.unit}" if row.unit else ""
        table.add_row(row.operation, f"{row.gas:,}", per_unit, row.note)
    return table


def lifecycle_table(steps: list[Measurement], total: int) -> Table:
    table = Table(show_footer=True)
    table.add_column("step", footer="total")
    table.add_column("gas", justify="right", footer=f"{total:,}")
    table.add_column("covers", justify="right")
    for step in steps:
        covers = f"{step.units} {step.unit}s" if step.unit else ""
        table.add_row(step.operation, f"{step.gas:,}", covers)
    return table


def iexec_table(steps: list[Measurement], total: int) -> Table:
    """Compare the lifecycle with iExec PoCo's published averages, step by comparable step."""
    gas = {step.operation: step.gas for step in steps}
    opening = gas["createDeal"] + gas["matchDeal, 3 workers"]
    proving_and_paying = sum(
        step.gas for step in steps if step.operation.startswith(("submitEpochProofs", "claimAndWithdraw"))
    )
    refund = gas["withdraw of the remainder"]
    worker_epochs = 3 * LIFECYCLE_EPOCHS

    table = Table()
    table.add_column("Cloudless step")
    table.add_column("gas", justify="right")
    table.add_column("iExec PoCo")
    table.add_column("gas", justify="right")
    table.add_column("ours / theirs", justify="right")
    rows = [
        ("createDeal + matchDeal (3 workers)", opening, "matchOrders", IEXEC_MATCH_ORDERS),
        ("none: a worker starts when matched", 0, "initialize", IEXEC_INITIALIZE),
        ("3 proof batches + 3 claimAndWithdraw", proving_and_paying, "contributeAndFinalize", IEXEC_CONTRIBUTE_AND_FINALIZE),
        ("owner's withdraw of the remainder", refund, "claim (refund)", IEXEC_CLAIM),
        (f"whole lifecycle ({worker_epochs} worker-epochs)", total, "one task", IEXEC_TASK),
        ("lifecycle per worker-epoch", total // worker_epochs, "one task", IEXEC_TASK),
    ]
    for ours_label, ours, theirs_label, theirs in rows:
        table.add_row(ours_label, f"{ours:,}", theirs_label, f"{theirs:,}", f"{ours / theirs:.2f}")
    return table


def settlement_table(gas_by_epochs: dict[int, int]) -> Table:
    table = Table()
    table.add_column("idle epochs N", justify="right")
    table.add_column("top-up gas", justify="right")
    table.add_column("ratio to N = 1", justify="right")
    base = gas_by_epochs[1]
    for epochs, gas in gas_by_epochs.items():
        table.add_row(str(epochs), f"{gas:,}", f"{gas / base:.3f}")
    return table


def claim_table(gas_by_epochs: dict[int, int]) -> Table:
    """Tabulate claim gas with the average per epoch and the gas each epoch adds beyond the first."""
    table = Table()
    table.add_column("epochs N", justify="right")
    table.add_column("claim gas", justify="right")
    table.add_column("gas per epoch", justify="right")
    table.add_column("added per epoch after the first", justify="right")
    table.add_column("ratio to N = 1", justify="right")
    base = gas_by_epochs[1]
    for epochs, gas in gas_by_epochs.items():
        added = f"{(gas - base) / (epochs - 1):,.0f}" if epochs > 1 else ""
        table.add_row(str(epochs), f"{gas:,}", f"{gas / epochs:,.0f}", added, f"{gas / base:.2f}")
    return table


def anvil_version() -> str:
    anvil = shutil.which("anvil") or "anvil"
    completed = subprocess.run([anvil, "--version"], capture_output=True, text=True, check=False)
    lines = completed.stdout.strip().splitlines()
    return lines[0] if lines else "anvil (version unknown)"


if __name__ == "__main__":
    sys.exit(main())
