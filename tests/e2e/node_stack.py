"""Helpers shared by the e2e tests that run provider nodes and a gateway: the package, node configs, polling."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from local_chain import LocalChain

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.runtime.package import build_package_from_dir

__all__ = ["ROOT", "health_ok", "save_deployment", "text_package", "wait_for", "write_node_config"]

ROOT = Path(__file__).resolve().parents[2]


def text_package() -> bytes:
    """Build the `text` example package, compiling the example functions first if they are missing."""
    dist = ROOT / "functions" / "dist"
    if not (dist / "text.wasm").is_file():
        subprocess.run(["bash", str(ROOT / "functions" / "build.sh")], check=True, cwd=ROOT)
    return build_package_from_dir(ROOT / "functions" / "examples" / "text", dist)


def save_deployment(chain: LocalChain, directory: Path, name: str = "deployment.json") -> Path:
    path = directory / name
    chain.deployment.save(path)
    return path


def write_node_config(
    directory: Path,
    chain: LocalChain,
    gateway_url: str,
    port: int,
    *,
    provider_index: int,
    signer_indices: tuple[int, ...],
    name: str,
    poll_interval_seconds: float = 0.2,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `node.yaml` for a provider with one peer per signer account; `extra` adds or replaces top-level keys."""
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "rpc_url": chain.rpc_url,
        "deployment_file": str(save_deployment(chain, directory)),
        "provider_key": account_key(provider_index),
        "name": name,
        "listen": {"host": "127.0.0.1", "port": port},
        "data_dir": str(directory / "node-data"),
        "package_sources": [gateway_url],
        "offer": {"price_usdc": "0.5", "region": 276, "tier": 3, "sla_bps": 9990},
        "peers": [{"signer_key": account_key(index), "cus": 2} for index in signer_indices],
        "poll_interval_seconds": poll_interval_seconds,
        "claim": {"enabled": True},
    }
    config.update(extra or {})
    path = directory / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(condition: Any, description: str, timeout_seconds: float = 20.0) -> Any:
    """Poll `condition` until it returns a truthy value, and fail naming `description` on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {description}")


def health_ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
