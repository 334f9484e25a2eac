"""The demo's whole flow with real processes: anvil, gateway, two nodes, matcher."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        handle = socket.socket()
        handle.bind(("127.0.0.1", 0))
        sockets.append(handle)
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict, Path]:
    work_dir = tmp_path_factory.mktemp("demo")
    summary_path = work_dir / "summary.json"
    anvil_port, gateway_port, node_a, node_b = _free_ports(4)
    command = [
        sys.executable, "-m", "cloudless", "demo",
        "--anvil-port", str(anvil_port),
        "--gateway-port", str(gateway_port),
        "--node-ports", f"{node_a},{node_b}",
        "--epoch-duration", "6",
        "--work-dir", str(work_dir),
        "--summary-json", str(summary_path),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return completed, summary, work_dir


def test_demo_exits_zero(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    completed, _, work_dir = demo_run
    assert completed.returncode == 0, f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}\nlogs in {work_dir}"


def test_demo_amounts_add_up(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    assert summary["amounts_add_up"] is True
    assert summary["status"] == "ENDED"
    assert summary["left_in_deal_usdc"] == "0"
    # Both nodes withdrew their earnings and the developer the rest.
    assert summary["contract_usdc"] == "0"


def test_demo_places_one_worker_per_provider(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    placements = summary["placements"]
    assert len(placements) == 2
    assert sorted(placement["provider"] for placement in placements) == ["alpha", "beta"]
    assert sorted(placement["price_usdc"] for placement in placements) == ["0.2", "0.35"]


def test_demo_proves_every_epoch(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    for placement in summary["placements"]:
        assert placement["epochs_in_deal"] >= 1
        assert placement["epochs_proven"] == placement["epochs_in_deal"]


def test_demo_pays_each_provider_its_rate(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    from decimal import Decimal

    for placement in summary["placements"]:
        expected = Decimal(placement["price_usdc"]) * placement["epochs_proven"]
        assert Decimal(placement["paid_usdc"]) == expected
    claimed = sum(provider["claimed"] for provider in summary["providers"])
    assert Decimal(claimed) / 10**6 == Decimal(summary["claimed_usdc"])
    for provider in summary["providers"]:
        assert provider["wallet_usdc"] == provider["claimed"]


def test_demo_calls_return_real_data(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    calls = {(call["function"], index): call for index, call in enumerate(summary["calls"])}
    ok_calls = [call for call in summary["calls"] if call["http_status"] == 200]
    assert len(ok_calls) == 3
    assert all(call["receipt_verified"] for call in ok_calls)
    species_summary = ok_calls[0]["output"]
    for species in ("Adelie", "Chinstrap", "Gentoo"):
        assert species in species_summary
    assert calls, "no calls recorded"


def test_demo_missing_function_is_404(demo_run: tuple[subprocess.CompletedProcess[str], dict, Path]) -> None:
    _, summary, _ = demo_run
    (missing,) = [call for call in summary["calls"] if call["function"] == "predict"]
    assert missing["http_status"] == 404
    assert "predict" in missing["output"]
