"""`cloudless provider up` picks the chain from --rpc-url, then $CLOUDLESS_RPC_URL, then the config's rpc_url."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import cloudless.node
import cloudless.signals
from cloudless.chain.keys import anvil_account_key
from cloudless.cli import cli
from cloudless.node.config import NodeConfig

CONFIG_URL = "http://127.0.0.1:8545"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[NodeConfig]:
    """Replace the node and the signal loop, and record the config that `provider up` starts the node with."""
    configs: list[NodeConfig] = []

    class RecordingNode:
        def __init__(self, config: NodeConfig) -> None:
            configs.append(config)

        def start(self) -> None: ...

        def stop(self) -> None: ...

    def run_once(start: Callable[[], None], stop: Callable[[], None], logger: object) -> None:
        start()
        stop()

    monkeypatch.setattr(cloudless.node, "ProviderNode", RecordingNode)
    monkeypatch.setattr(cloudless.signals, "run_until_signal", run_once)
    return configs


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "node.yaml"
    config = {
        "rpc_url": CONFIG_URL,
        "provider_key": anvil_account_key(1),
        "name": "acme",
        "data_dir": "node-data",
        "package_sources": ["http://127.0.0.1:8600"],
        "offer": {"price_usdc": "0.25", "region": 276, "tier": 3, "sla_bps": 9990},
        "peers": [{"signer_key": anvil_account_key(10), "cus": 2}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def up(config_path: Path, *extra: str, env: dict[str, str | None]) -> str:
    result = CliRunner().invoke(cli, ["provider", "up", "--config", str(config_path), *extra], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_provider_up_uses_config_url(started: list[NodeConfig], config_path: Path) -> None:
    up(config_path, env={"CLOUDLESS_RPC_URL": None})
    assert [config.rpc_url for config in started] == [CONFIG_URL]


def test_provider_up_env_overrides_config(started: list[NodeConfig], config_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cloudless.node"):
        up(config_path, env={"CLOUDLESS_RPC_URL": "http://127.0.0.1:8555"})
    assert [config.rpc_url for config in started] == ["http://127.0.0.1:8555"]
    assert "using the chain at http://127.0.0.1:8555 from $CLOUDLESS_RPC_URL" in caplog.text


def test_provider_up_flag_overrides_env(started: list[NodeConfig], config_path: Path) -> None:
    up(config_path, "--rpc-url", "http://127.0.0.1:8565", env={"CLOUDLESS_RPC_URL": "http://127.0.0.1:8555"})
    assert [config.rpc_url for config in started] == ["http://127.0.0.1:8565"]
