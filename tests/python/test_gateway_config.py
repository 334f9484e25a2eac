"""Gateway options from the CLI: renamed options map onto fields, and errors name the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.exceptions import ConfigError
from cloudless.gateway.config import DEFAULT_CALLER_ACCOUNT_INDEX, GatewayConfig


def test_gateway_options_map_cli_names(tmp_path: Path) -> None:
    config = GatewayConfig.from_options(
        rpc_url="http://127.0.0.1:8545",
        account_index=7,
        host="127.0.0.1",
        port=8080,
        data_dir=tmp_path,
        request_timeout=12.5,
    )

    assert config.caller_account_index == 7
    assert config.request_timeout_seconds == 12.5
    assert config.data_dir == tmp_path


def test_gateway_options_error_names_field() -> None:
    with pytest.raises(ConfigError) as raised:
        GatewayConfig.from_options(rpc_url="127.0.0.1:8545", port=70000)

    assert "  rpc_url:" in str(raised.value)
    assert "  port:" in str(raised.value)


def test_gateway_caller_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDLESS_PRIVATE_KEY", raising=False)
    assert GatewayConfig().resolve_caller_key() == account_key(DEFAULT_CALLER_ACCOUNT_INDEX)

    monkeypatch.setenv("CLOUDLESS_PRIVATE_KEY", account_key(3))
    assert GatewayConfig().resolve_caller_key() == account_key(3)

    monkeypatch.setenv("CLOUDLESS_PRIVATE_KEY", "0x1234")
    with pytest.raises(ConfigError, match="CLOUDLESS_PRIVATE_KEY is not a 32-byte hex private key"):
        GatewayConfig().resolve_caller_key()


def test_gateway_endpoint_overrides_are_checked() -> None:
    provider = "0x90f79bf6eb2c4f870365e785982e1f101e93b906"

    config = GatewayConfig(endpoints={provider: "http://127.0.0.1:8701/"})

    assert config.endpoints == {"0x90F79bf6EB2c4f870365E785982E1f101E93b906": "http://127.0.0.1:8701"}
    with pytest.raises(ValueError, match="is not a provider address"):
        GatewayConfig(endpoints={"acme": "http://127.0.0.1:8701"})
