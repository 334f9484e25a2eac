"""`cloudless demo`: run the market end to end on a local chain."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from cloudless.chain.artifacts import project_root
from cloudless.cli.common import handle_errors
from cloudless.demo import DemoSettings, print_summary, run_demo

__all__ = ["demo"]


def _parse_ports(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise click.BadParameter(f"invalid ports {text!r}: give two ports, e.g. --node-ports 8701,8702")
    first, second = (int(part) for part in parts)
    if first == second or not (0 < first < 65536 and 0 < second < 65536):
        raise click.BadParameter(f"invalid ports {text!r}: give two different ports from 1 to 65535, e.g. --node-ports 8701,8702")
    return first, second


@click.command()
@click.option("--anvil-port", type=click.IntRange(1, 65535), default=8545, show_default=True, help="Port of the local chain.")
@click.option("--gateway-port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port of the gateway.")
@click.option("--node-ports", default="8701,8702", show_default=True, help="Ports of the two provider nodes.")
@click.option("--epoch-duration", type=click.IntRange(4, 600), default=10, show_default=True, help="Seconds per epoch.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: project_root() / ".cloudless" / "demo",
    show_default=".cloudless/demo",
    help="Folder for logs, node data and configs.",
)
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the summary as JSON here.")
@handle_errors
def demo(anvil_port: int, gateway_port: int, node_ports: str, epoch_duration: int, work_dir: Path, summary_json: Path | None) -> None:
    """Start anvil, deploy, run two providers, a matcher and a gateway, call functions, prove and claim."""
    # SIGTERM and SIGINT end the run through the normal clean-up, so every
    # child process is stopped. SIGINT is set explicitly because a shell
    # starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = Console()
    # The demo prints its own progress; per-transaction INFO lines of this
    # process would drown it (the services' logs are in the work dir).
    if logging.getLogger().level > logging.DEBUG:
        for name in ("cloudless.chain", "cloudless.runtime"):
            logging.getLogger(name).setLevel(logging.WARNING)
    settings = DemoSettings(
        work_dir=work_dir,
        anvil_port=anvil_port,
        gateway_port=gateway_port,
        node_ports=_parse_ports(node_ports),
        epoch_duration=epoch_duration,
    )

    with console.status("starting the demo...") as status:

        def progress(message: str) -> None:
            console.log(message)
            status.update(message)

        summary = run_demo(settings, progress)

    print_summary(summary, console)
    if summary_json is not None:
        summary.write_json(summary_json)
    if not summary.amounts_add_up:
        raise click.ClickException("the demo's amounts do not add up: see the table above and the logs in " + str(work_dir / "logs"))
