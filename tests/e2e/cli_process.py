"""Run the `cloudless` CLI as a real process against a chain, with a private project root."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    output: str  # stdout and stderr together


def private_root(directory: Path) -> Path:
    """Make `directory` a project root (CLOUDLESS_ROOT) that shares the compiled contracts but has its own deployments/."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".build").symlink_to(ROOT / ".build")
    return directory


def run_cli(project_root: Path, rpc_url: str, *args: str) -> CliResult:
    """Run `python -m cloudless ARGS` with the test account keys (CLOUDLESS_PRIVATE_KEY unset)."""
    env = {**os.environ, "CLOUDLESS_ROOT": str(project_root), "CLOUDLESS_RPC_URL": rpc_url}
    env.pop("CLOUDLESS_PRIVATE_KEY", None)
    completed = subprocess.run(
        [sys.executable, "-m", "cloudless", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    return CliResult(exit_code=completed.returncode, output=completed.stdout + completed.stderr)
