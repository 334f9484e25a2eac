"""Options of the proof commands that are checked before any chain access: caller addresses and verifier keys."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cloudless.cli import cli

# A local test account (Anvil's default mnemonic, index 7) in EIP-55 form.
GATEWAY = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
# Nothing listens on port 9 of loopback, so a command that got past its
# option checks would fail to connect instead.
CLOSED_RPC = "http://127.0.0.1:9"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (GATEWAY[:-1] + "6", "has a wrong EIP-55 checksum"),
        ("0x" + "0" * 40, "the zero address cannot sign requests"),
        ("0x1234", "invalid caller address"),
    ],
)
def test_deal_callers_rejects_bad_address(address: str, message: str) -> None:
    result = run("deal", "callers", "1", "--allow", address, "--rpc-url", CLOSED_RPC)

    assert result.exit_code == 2, result.output
    assert message in result.output


def test_deal_callers_accepts_lower_case_address() -> None:
    result = run("deal", "callers", "1", "--allow", GATEWAY.lower(), "--rpc-url", CLOSED_RPC)

    # The address passed its checks; the command then fails to reach the chain.
    assert "caller address" not in result.output
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize("variable", ["VERIFIER_TEST_KEY", "CLOUDLESS_PRIVATE_KEY"])
def test_verifier_names_variable_of_bad_key(variable: str) -> None:
    options = ["--key-env", variable] if variable != "CLOUDLESS_PRIVATE_KEY" else []

    result = run("verifier", "run", "--once", "--rpc-url", CLOSED_RPC, *options, env={variable: "0x1234"})

    assert result.exit_code != 0
    assert f"${variable} does not contain a private key" in result.output
    assert "0x1234" not in result.output
