"""The `cloudless` command line."""

from __future__ import annotations

import click

from cloudless import __version__
from cloudless.cli.build import build
from cloudless.cli.call import call
from cloudless.cli.common import setup_logging
from cloudless.cli.deal import deal
from cloudless.cli.demo import demo
from cloudless.cli.deploy import deploy
from cloudless.cli.faucet import faucet
from cloudless.cli.gateway import gateway
from cloudless.cli.init import init
from cloudless.cli.matcher import matcher
from cloudless.cli.onramp import onramp
from cloudless.cli.package import package
from cloudless.cli.provider import provider
from cloudless.cli.verifier import verifier

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="cloudless")
@click.option("-v", "--verbose", count=True, help="More logging: -v for DEBUG, -vv includes web3 and HTTP clients.")
def cli(verbose: int) -> None:
    """Cloudless: serverless Wasm functions on an EVM compute market."""
    setup_logging(verbose)


for command in (build, call, deal, demo, deploy, faucet, gateway, init, matcher, onramp, package, provider, verifier):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="cloudless")
