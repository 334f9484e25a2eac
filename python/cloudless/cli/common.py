"""Options and helpers shared by the `cloudless` commands."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import click

from cloudless.chain.addresses import parse_address
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session, connect
from cloudless.chain.tokens import parse_units
from cloudless.cid import cid_to_bytes
from cloudless.exceptions import CloudlessError, ConfigError, InvalidCidError

__all__ = [
    "DEFAULT_RPC_URL",
    "FLT_DECIMALS",
    "USDC_DECIMALS",
    "check_address",
    "check_app_cid",
    "check_gateway_url",
    "check_recipient",
    "handle_errors",
    "key_options",
    "open_session",
    "rpc_option",
    "setup_logging",
    "token_amount",
]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"

# Decimals of the deployment's tokens: TestUSDC has 6, as USDC does, and FLT 18.
USDC_DECIMALS = 6
FLT_DECIMALS = 18

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


_FILE_SYSTEM_ERRORS = (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def handle_errors(function: F) -> F:
    """Turn CloudlessError and file-system errors into a one-line message and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CloudlessError as error:
            logging.getLogger("cloudless").debug("command failed", exc_info=True)
            raise click.ClickException(str(error)) from error
        except _FILE_SYSTEM_ERRORS as error:
            # A folder that cannot be created or a file that cannot be written
            # is for the user to fix, so it gets a message and not a traceback.
            logging.getLogger("cloudless").debug("command failed", exc_info=True)
            path = error.filename or "a file"
            raise click.ClickException(
                f"cannot create or write {path}: {error.strerror}; choose another path or fix its permissions"
            ) from error

    return wrapper  # type: ignore[return-value]


def check_gateway_url(gateway: str) -> None:
    """Raise UsageError unless `gateway` is an http(s) URL."""
    if not gateway.startswith(("http://", "https://")):
        raise click.UsageError(f"invalid gateway URL {gateway!r}: use http://HOST:PORT, e.g. http://127.0.0.1:8080")


def token_amount(decimals: int, *, above_zero: bool = False) -> Callable[[click.Context, click.Parameter, str | None], Decimal | None]:
    """Build a click callback that checks a token amount and returns it as a Decimal of whole tokens.

    A bad amount raises click.BadParameter, so click names the option and
    exits with code 2. Convert the result with `TokenClient.parse`.
    """

    def callback(context: click.Context, parameter: click.Parameter, value: str | None) -> Decimal | None:
        if value is None:
            return None
        try:
            base_units = parse_units(value, decimals)
        except ConfigError as error:
            raise click.BadParameter(str(error)) from error
        if above_zero and base_units == 0:
            raise click.BadParameter(f"invalid token amount {value!r}: it must be above 0")
        return Decimal(value.strip())

    return callback


def check_address(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """Click callback: return the checksummed address, or raise click.BadParameter."""
    if value is None:
        return None
    try:
        return parse_address(value)
    except ConfigError as error:
        raise click.BadParameter(str(error)) from error


def check_recipient(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """Click callback: like `check_address`, but also reject the zero address, where tokens are lost."""
    address = check_address(context, parameter, value)
    if address is not None and int(address, 16) == 0:
        raise click.BadParameter(
            f"invalid address {value!r}: tokens sent to the zero address are lost; pass the address that should receive them"
        )
    return address


def check_app_cid(context: click.Context, parameter: click.Parameter, value: str | None) -> bytes | None:
    """Click callback: return the 36-byte binary form of a package CID, or raise click.BadParameter."""
    if value is None:
        return None
    try:
        return cid_to_bytes(value)
    except InvalidCidError as error:
        raise click.BadParameter(str(error)) from error
