"""Node config loading: valid files load, and every error names the offending field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.exceptions import ConfigError
from cloudless.node.config import load_node_config


def base_config() -> dict[str, Any]:
    return {
        "rpc_url": "http://127.0.0.1:8545",
        "provider_key": account_key(1),
        "name": "acme",
        "listen": {"host": "127.0.0.1", "port": 8701},
        "data_dir": "node-data",
        "package_sources": ["http://127.0.0.1:8600"],
        "offer": {"price_usdc": "0.25", "region": 276, "tier": 3, "sla_bps": 9990},
        "peers": [{"signer_key": account_key(10), "cus": 2}, {"signer_key": account_key(11), "cus": 4}],
    }


def write(tmp_path: Path, config: Any) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def load_error(tmp_path: Path, config: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load_node_config(write(tmp_path, config))
    return str(raised.value)


def test_config_valid_file_loads(tmp_path: Path) -> None:
    config = load_node_config(write(tmp_path, base_config()))

    assert config.name == "acme"
    assert config.data_dir == tmp_path / "node-data"
    assert config.endpoint_url == "http://127.0.0.1:8701"
    assert config.poll_interval_seconds == 1.0
    assert config.claim.enabled is True
    assert config.offer.stake_flt is None
    assert len(config.resolve_peer_keys()) == 2


def test_config_public_url_is_endpoint(tmp_path: Path) -> None:
    raw = base_config() | {"public_url": "https://node.example.org/"}

    config = load_node_config(write(tmp_path, raw))

    assert config.endpoint_url == "https://node.example.org"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["offer"].update(tier=5), "offer.tier"),
        (lambda c: c["offer"].update(sla_bps=10001), "offer.sla_bps"),
        (lambda c: c["offer"].update(price_usdc="0"), "offer.price_usdc"),
        (lambda c: c["offer"].update(price_usdc="cheap"), "offer.price_usdc"),
        (lambda c: c["offer"].update(stake_flt="-1"), "offer.stake_flt"),
        (lambda c: c["listen"].update(port=70000), "listen.port"),
        (lambda c: c["peers"][1].update(cus=0), "peers.1.cus"),
        (lambda c: c.update(poll_interval_seconds=0), "poll_interval_seconds"),
        (lambda c: c.update(package_sources=[]), "package_sources"),
        (lambda c: c.update(package_sources=["ftp://127.0.0.1"]), "package_sources"),
        (lambda c: c.update(rpc_url="127.0.0.1:8545"), "rpc_url"),
        (lambda c: c.update(peers=[]), "peers"),
        (lambda c: c.pop("offer"), "offer"),
        (lambda c: c.pop("data_dir"), "data_dir"),
        (lambda c: c.update(claim={"enabled": "sometimes"}), "claim.enabled"),
    ],
)
def test_config_error_names_field(tmp_path: Path, change: Any, field: str) -> None:
    raw = base_config()
    change(raw)

    message = load_error(tmp_path, raw)

    assert f"  {field}:" in message


def test_config_unknown_field_is_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["offer"]["colour"] = "blue"

    message = load_error(tmp_path, raw)

    assert "offer.colour: unknown field" in message


def test_config_invalid_key_is_not_echoed(tmp_path: Path) -> None:
    raw = base_config()
    raw["peers"][0]["signer_key"] = "0x" + "zz" * 32

    message = load_error(tmp_path, raw)

    assert "peers.0.signer_key:" in message
    assert "zz" * 32 not in message


def test_config_needs_one_provider_key_source(tmp_path: Path) -> None:
    both = base_config() | {"provider_key_env": "NODE_KEY"}
    neither = base_config()
    neither.pop("provider_key")

    assert "exactly one of provider_key and provider_key_env" in load_error(tmp_path, both)
    assert "exactly one of provider_key and provider_key_env" in load_error(tmp_path, neither)


def test_config_key_env_unset_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = base_config()
    raw.pop("provider_key")
    raw["provider_key_env"] = "CLOUDLESS_TEST_NODE_KEY"
    monkeypatch.delenv("CLOUDLESS_TEST_NODE_KEY", raising=False)
    config = load_node_config(write(tmp_path, raw))

    with pytest.raises(ConfigError, match=r"provider_key_env names \$CLOUDLESS_TEST_NODE_KEY"):
        config.resolve_provider_key()

    monkeypatch.setenv("CLOUDLESS_TEST_NODE_KEY", account_key(1))
    assert config.resolve_provider_key() == account_key(1)


def test_config_duplicate_signers_are_named(tmp_path: Path) -> None:
    raw = base_config()
    raw["peers"][1]["signer_key"] = account_key(10)
    config = load_node_config(write(tmp_path, raw))

    with pytest.raises(ConfigError, match=r"peers\.1\.signer_key is the same signer .* as peers\.0"):
        config.resolve_peer_keys()


def test_config_rejects_non_mapping(tmp_path: Path) -> None:
    assert "must be a YAML mapping" in load_error(tmp_path, ["a", "b"])


def test_config_rejects_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("name: [unclosed\n")

    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_node_config(path)


def test_config_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read node config .*missing.yaml"):
        load_node_config(tmp_path / "missing.yaml")


def test_config_cheats_default_to_none(tmp_path: Path) -> None:
    assert load_node_config(write(tmp_path, base_config())).cheat == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("skip_proofs", ["skip_proofs"]), (["equivocate", "wrong_output", "equivocate"], ["equivocate", "wrong_output"])],
)
def test_config_cheats_load(tmp_path: Path, value: Any, expected: list[str]) -> None:
    assert load_node_config(write(tmp_path, base_config() | {"cheat": value})).cheat == expected


def test_config_unknown_cheat_names_allowed_values(tmp_path: Path) -> None:
    message = load_error(tmp_path, base_config() | {"cheat": ["skip_proofs", "steal"]})

    assert "cheat: unknown cheat 'steal'" in message
    assert "allowed values: fabricate_call, inflate_usage, wrong_output, skip_proofs, replay_epoch, " in message
    assert "ignore_challenges" in message
