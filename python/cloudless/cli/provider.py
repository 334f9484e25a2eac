"""`cloudless provider up`: run a provider node from its YAML config."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from cloudless.cli.common import handle_errors

__all__ = ["provider"]

logger = logging.getLogger("cloudless.node")


@click.group()
def provider() -> None:
    """Run a capacity provider's node."""


@provider.command("up")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Node config (YAML): keys, offer, peers, ports.")
@click.option(
    "--rpc-url",
    default=None,
    help="JSON-RPC endpoint of the chain, in place of the config's rpc_url.  [default: $CLOUDLESS_RPC_URL, else the config's rpc_url]",
)
@handle_errors
def up(config_path: Path, rpc_url: str | None) -> None:
    """Register or sync the offer, serve calls, prove epochs and claim earnings until stopped."""
    from cloudless.node import ProviderNode, load_node_config
    from cloudless.signals import run_until_signal

    config = load_node_config(config_path)
    environment_url = os.environ.get("CLOUDLESS_RPC_URL")
    if rpc_url:
        source = "--rpc-url"
    elif environment_url:
        rpc_url, source = environment_url, "$CLOUDLESS_RPC_URL"
    else:
        rpc_url, source = config.rpc_url, f"rpc_url in {config_path}"
    if rpc_url != config.rpc_url:
        logger.info("using the chain at %s from %s, not rpc_url %s of %s", rpc_url, source, config.rpc_url, config_path)
        config = config.model_copy(update={"rpc_url": rpc_url})
    else:
        logger.info("using the chain at %s from %s", rpc_url, source)

    # NOTE: this repeats `cloudless.node.run_node`, which takes only a config path and so cannot apply the
    # override. Keep the two in step until run_node accepts a loaded config.
    node = ProviderNode(config)
    run_until_signal(node.start, node.stop, logger)
