"""Bad command-line input gets a clear message and a non-zero exit code, without a chain."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from web3 import Web3

from cloudless.chain.client import ChainClient, connect_web3
from cloudless.cli import cli
from cloudless.exceptions import ConfigError

VALID_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_rpc_url_without_scheme_rejected() -> None:
    code, output = run("deal", "status", "1", "--rpc-url", "localhost:8545")
    assert code == 1
    assert "invalid RPC URL 'localhost:8545'" in output
    assert "http://" in output


def test_gateway_url_without_scheme_rejected() -> None:
    code, output = run("call", "1", "summarize", "--gateway", "localhost:8080")
    assert code == 2
    assert "invalid gateway URL 'localhost:8080'" in output


def test_deal_create_rejects_bad_allow_address() -> None:
    code, output = run("deal", "create", "--app-cid", VALID_CID, "--max-price", "1", "--deposit", "1", "--allow", "nope")
    assert code == 2
    assert "invalid provider address 'nope'" in output


def test_deal_create_rejects_region_out_of_range() -> None:
    code, output = run("deal", "create", "--app-cid", VALID_CID, "--max-price", "1", "--deposit", "1", "--region", "99999")
    assert code == 2
    assert "99999" in output


def test_demo_rejects_duplicate_node_ports() -> None:
    code, output = run("demo", "--node-ports", "8711,8711")
    assert code == 2
    assert "two different ports" in output


def test_invalid_private_key_rejected() -> None:
    with pytest.raises(ConfigError) as raised:
        ChainClient(Web3(), None, "0x12")
    assert "invalid private key" in str(raised.value)
    assert "CLOUDLESS_PRIVATE_KEY" in str(raised.value)


def test_connect_web3_rejects_bare_host() -> None:
    with pytest.raises(ConfigError) as raised:
        connect_web3("127.0.0.1:8545")
    assert "use http://HOST:PORT" in str(raised.value)
