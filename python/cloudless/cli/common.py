"""Options and helpers shared by the `cloudless` commands."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session, connect
from cloudless.exceptions import CloudlessError

__all__ = ["DEFAULT_RPC_URL", "check_gateway_url", "handle_errors", "open_session", "rpc_option", "key_options", "setup_logging"]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(verbose: int) -> None:
    """Log INFO by default, DEBUG with -v; tracebacks only at DEBUG."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # web3 and urllib3 are chatty at DEBUG; keep them at WARNING unless -vv.
    if verbose < 2:
        for noisy in ("web3", "urllib3", "httpx", "httpcore", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def rpc_option(function: F) -> F:
    return click.option(
        "--rpc-url",
        default=lambda: os.environ.get("CLOUDLESS_RPC_URL", DEFAULT_RPC_URL),
        show_default=f"$CLOUDLESS_RPC_URL or {DEFAULT_RPC_URL}",
        help="JSON-RPC endpoint of the chain.",
    )(function)


def key_options(default_index: int | None) -> Callable[[F], F]:
    """Add --account-index; the key comes from $CLOUDLESS_PRIVATE_KEY when that is set."""

    def decorate(function: F) -> F:
        return click.option(
            "--account-index",
            type=click.IntRange(0, 999),
            default=default_index,
            show_default=True,
            help="Local test account that signs (Anvil's default mnemonic); ignored when $CLOUDLESS_PRIVATE_KEY is set.",
        )(function)

    return decorate


def open_session(rpc_url: str, account_index: int | None) -> Session:
    """Connect and pick the signing key: $CLOUDLESS_PRIVATE_KEY, else the test account."""
    key = os.environ.get("CLOUDLESS_PRIVATE_KEY")
    if not key and account_index is not None:
        key = anvil_account_key(account_index)
    return connect(rpc_url, key)


def handle_errors(function: F) -> F:
    """Turn CloudlessError into a one-line message and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CloudlessError as error:
            logging.getLogger("cloudless").debug("command failed", exc_info=True)
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


def check_gateway_url(gateway: str) -> None:
    """Raise UsageError unless `gateway` is an http(s) URL."""
    if not gateway.startswith(("http://", "https://")):
        raise click.UsageError(f"invalid gateway URL {gateway!r}: use http://HOST:PORT, e.g. http://127.0.0.1:8080")
