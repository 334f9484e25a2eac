"""`cloudless matcher run`: place open deals on the cheapest feasible peers."""

from __future__ import annotations

import signal
from types import FrameType

import click

from cloudless.cli.common import handle_errors, key_options, open_session, rpc_option
from cloudless.matcher import Matcher

__all__ = ["matcher"]


@click.group()
def matcher() -> None:
    """Run the off-chain matcher."""


@matcher.command("run")
@rpc_option
@key_options(default_index=9)
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True, help="Seconds between rounds.")
@click.option("--once", is_flag=True, help="Run one round and exit.")
@handle_errors
def run(rpc_url: str, account_index: int | None, interval: float, once: bool) -> None:
    """Match open deals until stopped (Ctrl-C)."""
    session = open_session(rpc_url, account_index)
    service = Matcher(session)
    if once:
        outcome = service.run_once()
        for deal_id, worker_ids in outcome.placed.items():
            click.echo(f"deal {deal_id}: placed workers {worker_ids}")
        for deal_id, reason in outcome.unmatched.items():
            click.echo(f"deal {deal_id}: unmatched: {reason}")
        for deal_id, reason in outcome.failed.items():
            click.echo(f"deal {deal_id}: failed: {reason}")
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run(interval)
