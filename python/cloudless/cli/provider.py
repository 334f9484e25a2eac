"""`cloudless provider up`: run a provider node from its YAML config."""

from __future__ import annotations

from pathlib import Path

import click

from cloudless.cli.common import handle_errors

__all__ = ["provider"]


@click.group()
def provider() -> None:
    """Run a capacity provider's node."""


@provider.command("up")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Node config (YAML): keys, offer, peers, ports.")
@handle_errors
def up(config_path: Path) -> None:
    """Register or sync the offer, serve calls, prove epochs and claim earnings until stopped."""
    from cloudless.node import run_node

    run_node(config_path)
