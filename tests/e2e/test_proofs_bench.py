"""The proof benchmark runs in quick mode and prints well-formed tables and a positive final rate.

It starts its own anvil, gateway and nodes on 127.0.0.1. The checks are on the
form and sign of the numbers, never on timing targets, so a busy machine
does not fail the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIGNING_PATHS = ("eth_account", "eth_account typed data", "eip712 module (per call)", "fast path")
GAS_OPERATIONS = (
    "submitEpochProofs, 1 entry",
    "submitEpochProofs, 10 entries",
    "challengeReceipt",
    "answerChallenge, tree of 1",
    "answerChallenge, tree of 16",
    "answerChallenge, tree of 1024",
    "challengeSample",
    "reportMissedProof",
    "proveEquivocation",
    "proveDisagreement, 2 against 1",
    "resolveUnanswered",
)


def _number(text: str) -> float:
    return float(text.replace(",", "").removesuffix("x").removesuffix(" ms").strip())


def _row(stdout: str, label: str) -> list[str]:
    """Return the cells after `label` in the table row that starts with it."""
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no table row {label!r} in the output:\n{stdout}")


@pytest.fixture(scope="module")
def bench_output() -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "proofs_bench.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_last_line_is_positive_rate(bench_output: str) -> None:
    last_line = bench_output.splitlines()[-1]

    assert re.fullmatch(r"receipts verified per second: [1-9][0-9]*", last_line), last_line


def test_last_line_matches_fast_path_row(bench_output: str) -> None:
    rate = int(bench_output.splitlines()[-1].rsplit(" ", 1)[1])
    _, verified, _, _ = _row(bench_output, "fast path")

    assert round(_number(verified)) == rate


@pytest.mark.parametrize("path", SIGNING_PATHS)
def test_signing_row_has_positive_rates(bench_output: str, path: str) -> None:
    signed, verified, signing_ratio, verifying_ratio = _row(bench_output, path)

    assert _number(signed) > 0
    assert _number(verified) > 0
    assert _number(signing_ratio) > 0
    assert _number(verifying_ratio) > 0


def test_signing_ratios_are_against_eth_account(bench_output: str) -> None:
    _, _, signing_ratio, verifying_ratio = _row(bench_output, "eth_account")

    assert signing_ratio == "1.00x"
    assert verifying_ratio == "1.00x"


def test_target_verdict_printed(bench_output: str) -> None:
    assert re.search(r"^verification target: [0-9,]+/s on one core, target >= 10,000/s: (pass|fail)$", bench_output, re.M), bench_output


@pytest.mark.parametrize("operation", GAS_OPERATIONS)
def test_gas_row_is_positive(bench_output: str, operation: str) -> None:
    gas, _ = _row(bench_output, operation)

    assert re.fullmatch(r"[1-9][0-9]{0,2}(,[0-9]{3})+", gas), gas


def test_answer_gas_grows_with_tree(bench_output: str) -> None:
    answers = [_number(_row(bench_output, f"answerChallenge, tree of {size}")[0]) for size in (16, 1024)]

    assert answers[0] < answers[1]


@pytest.mark.parametrize("replication", ["1", "2", "3"])
def test_replication_row_has_latency(bench_output: str, replication: str) -> None:
    latency, extra, ratio = _row(bench_output, replication)

    assert _number(latency) > 0
    assert _number(ratio) > 0
    if replication == "1":
        assert extra == ""
    else:
        assert re.fullmatch(r"[+-][0-9]+\.[0-9]{2} ms", extra), extra
