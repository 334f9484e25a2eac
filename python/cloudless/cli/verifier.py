"""`cloudless verifier run`: check epoch proofs, re-execute samples and challenge what is proven wrong."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

import click

from cloudless.chain.artifacts import project_root
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import connect
from cloudless.cli.common import handle_errors, rpc_option
from cloudless.exceptions import ConfigError

__all__ = ["verifier"]

logger = logging.getLogger("cloudless.verifier")

_DEFAULT_KEY_ENV = "CLOUDLESS_PRIVATE_KEY"


@click.group()
def verifier() -> None:
    """Run the off-chain verifier."""


def _check_url(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"invalid URL {value!r}: use http://HOST:PORT, e.g. http://127.0.0.1:8080")
    return tuple(value.rstrip("/") for value in values)


def resolve_key(key_env: str | None, account_index: int | None) -> str:
    """Return the signing key: from the variable `key_env` names, else $CLOUDLESS_PRIVATE_KEY, else a local test account.

    Raises ConfigError when a named variable is unset or no source gives a key.
    """
    if key_env is not None:
        value = os.environ.get(key_env, "").strip()
        if not value:
            raise ConfigError(f"--key-env names ${key_env}, but that variable is not set or empty; export the verifier's private key in it")
        _check_key(value, f"${key_env}")
        return value
    value = os.environ.get(_DEFAULT_KEY_ENV, "").strip()
    if value:
        _check_key(value, f"${_DEFAULT_KEY_ENV}")
        return value
    if account_index is not None:
        return anvil_account_key(account_index)
    raise ConfigError(
        "no signing key: pass --key-env NAME with the private key in $NAME, set $CLOUDLESS_PRIVATE_KEY, "
        "or pass --account-index N for a local test account"
    )


def _check_key(value: str, source: str) -> None:
    """Raise ConfigError naming `source` unless `value` is a 32-byte hex private key (the value itself is secret)."""
    digits = value.removeprefix("0x")
    if len(digits) != 64 or any(char not in "0123456789abcdefABCDEF" for char in digits):
        raise ConfigError(
            f"{source} does not contain a private key: expected 64 hex digits (optional 0x), got {len(digits)} characters"
        )


@verifier.command("run")
@rpc_option
@click.option("--key-env", metavar="NAME", help="Environment variable that contains the verifier's private key.")
@click.option(
    "--account-index",
    type=click.IntRange(0, 999),
    default=None,
    help="Local test account that signs (Anvil's default mnemonic), when no key is in the environment.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: project_root() / ".cloudless" / "verifier",
    show_default=".cloudless/verifier",
    help="Directory of the state file, the receipt index and the package cache.",
)
@click.option("--deal", "deal_ids", type=click.IntRange(1), multiple=True, help="Only check this deal (repeatable). Default: every deal.")
@click.option(
    "--sample-rate",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of each epoch's receipts to re-execute; at least 1 per non-empty epoch, 0 turns re-execution off.",
)
@click.option("--seed", type=int, default=None, help="Seed of the re-execution sample, for repeatable runs.  [default: random]")
@click.option("--gateway", "gateways", multiple=True, callback=_check_url, help="Gateway URL whose evidence feed to read (repeatable); also a package source.")
@click.option(
    "--package-source",
    "package_sources",
    multiple=True,
    callback=_check_url,
    help="URL that serves packages at /packages/CID (repeatable).  [default: the --gateway URLs]",
)
@click.option("--withdraw-rewards", is_flag=True, help="Withdraw this account's slash rewards from the Market after each pass.")
@click.option("--interval", type=click.FloatRange(0.1), default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--fetch-attempts", type=click.IntRange(1, 20), default=3, show_default=True, help="Tries per pass to read a node's receipts.")
@click.option("--retry-backoff", type=click.FloatRange(0), default=1.0, show_default=True, help="Seconds before the first retry; doubles per retry.")
@click.option("--http-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, help="Seconds to wait for one HTTP reply.")
@click.option("--once", is_flag=True, help="Run one pass, print what it did and exit.")
@handle_errors
def run(
    rpc_url: str,
    key_env: str | None,
    account_index: int | None,
    state_dir: Path,
    deal_ids: tuple[int, ...],
    sample_rate: float,
    seed: int | None,
    gateways: tuple[str, ...],
    package_sources: tuple[str, ...],
    withdraw_rewards: bool,
    interval: float,
    fetch_attempts: int,
    retry_backoff: float,
    http_timeout: float,
    once: bool,
) -> None:
    """Check epoch proofs and challenge proven faults until stopped (Ctrl-C)."""
    from cloudless.verifier import Verifier, VerifierConfig

    if state_dir.exists() and not state_dir.is_dir():
        raise click.BadParameter(f"{state_dir} is a file; pass a directory", param_hint="--state-dir")
    key = resolve_key(key_env, account_index)
    session = connect(rpc_url, key)
    config = VerifierConfig(
        state_dir=state_dir,
        deal_ids=frozenset(deal_ids) if deal_ids else None,
        sample_rate=sample_rate,
        seed=None if seed is None else str(seed),
        gateways=gateways,
        package_sources=package_sources or None,
        withdraw_rewards=withdraw_rewards,
        fetch_attempts=fetch_attempts,
        retry_backoff_seconds=retry_backoff,
        http_timeout_seconds=http_timeout,
    )
    with Verifier(session, config) as service:
        if once:
            report = service.run_once()
            for proof in report.proofs:
                click.echo(f"deal {proof.deal_id} worker {proof.worker_id} epoch {proof.epoch}: {proof.summary}")
            for action in report.actions:
                click.echo(action.describe())
            for error in report.errors:
                click.echo(f"error: {error}")
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("received %s, stopping after the current pass", signal.Signals(signum).name)
            service.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        service.run(interval)
