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


DAG_PB_CID = "bafybeibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe"


def create(*extra: str) -> tuple[int, str]:
    return run("deal", "create", "--app-cid", VALID_CID, "--deposit", "10", *extra)


@pytest.mark.parametrize(
    "args, option, message",
    [
        (["deal", "create", "--app-cid", VALID_CID, "--max-price", "-1", "--deposit", "1"], "'--max-price'", "must not be negative"),
        (["deal", "create", "--app-cid", VALID_CID, "--max-price", "1", "--deposit", "ten"], "'--deposit'", "use a decimal number"),
        (
            ["deal", "create", "--app-cid", VALID_CID, "--billing", "usage", "--usage-price", "0.0000001", "--max-usage", "1", "--deposit", "1"],
            "'--usage-price'",
            "at most 6 decimals",
        ),
        (["deal", "deposit", "1", "abc"], "'AMOUNT'", "use a decimal number"),
        (["deal", "withdraw", "1", "0"], "'AMOUNT'", "it must be above 0"),
    ],
)
def test_token_amount_names_option(args: list[str], option: str, message: str) -> None:
    code, output = run(*args)
    assert code == 2
    assert f"Invalid value for {option}" in output
    assert message in output
    assert "Usage:" in output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-price", "1", "--usage-price", "0.002"], "--usage-price applies to usage-billed deals only: add --billing usage"),
        (["--max-price", "1", "--max-usage", "100"], "--max-usage applies to usage-billed deals only: add --billing usage"),
        ([], "missing --max-price: a subscription deal needs a price cap"),
        (["--max-price", "0"], "invalid --max-price 0: a subscription deal"),
        (["--billing", "usage", "--max-usage", "100"], "missing --usage-price: a usage-billed deal needs a price in USDC per million fuel"),
        (["--billing", "usage", "--usage-price", "0", "--max-usage", "100"], "invalid --usage-price 0"),
        (["--billing", "usage", "--usage-price", "0.002"], "missing --max-usage: a usage-billed deal needs the maximum fuel"),
        (
            ["--billing", "usage", "--usage-price", "0.000001", "--max-usage", "1"],
            "pays less than 0.000001 USDC per worker and epoch, so workers would earn nothing",
        ),
    ],
)
def test_deal_create_checks_billing_options(extra: list[str], message: str) -> None:
    code, output = create(*extra)
    assert code == 2
    assert message in output


def test_deal_create_rejects_dag_pb_cid() -> None:
    code, output = run("deal", "create", "--app-cid", DAG_PB_CID, "--max-price", "1", "--deposit", "1")
    assert code == 2
    assert "Invalid value for '--app-cid'" in output
    assert "is a dag-pb CID" in output
    assert "`cloudless package build`" in output


def test_deal_create_rejects_too_many_workers() -> None:
    code, output = create("--max-price", "1", "--workers", "101")
    assert code == 2
    assert "'--workers'" in output
    assert "1<=x<=100" in output


def test_faucet_drip_rejects_zero_address() -> None:
    code, output = run("faucet", "drip", "--to", "0x" + "00" * 20)
    assert code == 2
    assert "Invalid value for '--to'" in output
    assert "zero address" in output


def test_deal_create_rejects_too_many_regions() -> None:
    regions = [item for code in range(33) for item in ("--region", str(code))]
    code, output = create("--max-price", "1", *regions)
    assert code == 2
    assert "too many --region options (33): a deal allows at most 32 regions" in output
