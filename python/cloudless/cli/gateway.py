"""`cloudless gateway up`: the HTTP entry point for function calls and packages."""

from __future__ import annotations

from pathlib import Path

import click

from cloudless.chain.artifacts import project_root
from cloudless.cli.common import handle_errors, key_options, rpc_option

__all__ = ["gateway"]


@click.group()
def gateway() -> None:
    """Run the HTTP gateway."""


@gateway.command("up")
@rpc_option
@key_options(default_index=7)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: project_root() / ".cloudless" / "gateway",
    show_default=".cloudless/gateway",
    help="Where uploaded packages and the evidence feed (evidence.jsonl) are stored.",
)
@click.option("--request-timeout", type=click.FloatRange(0.1), default=30.0, show_default=True, help="Seconds to wait for a worker.")
@handle_errors
def up(rpc_url: str, account_index: int | None, host: str, port: int, data_dir: Path, request_timeout: float) -> None:
    """Serve POST /deals/{id}/functions/{name}, the package store and GET /evidence until stopped.

    Calls of a deal with replication K run on K workers of different
    providers, and the gateway returns an output only when their receipts
    agree. Disagreements go to GET /evidence?since=N for verifiers.
    """
    from cloudless.gateway import run_gateway

    run_gateway(
        rpc_url=rpc_url,
        account_index=account_index,
        host=host,
        port=port,
        data_dir=data_dir,
        request_timeout=request_timeout,
    )
