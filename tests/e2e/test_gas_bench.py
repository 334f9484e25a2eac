"""The gas benchmark runs against its own anvil and ends with the lifecycle total."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gas_bench_prints_lifecycle_total() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gas_bench.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Reference lifecycle" in completed.stdout
    last_line = completed.stdout.splitlines()[-1]
    assert re.fullmatch(r"lifecycle gas: [1-9][0-9]*", last_line), last_line
