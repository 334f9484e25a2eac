"""`cloudless package ...`: build function packages and upload them to a gateway."""

from __future__ import annotations

from pathlib import Path

import click
import httpx

from cloudless.chain.artifacts import project_root
from cloudless.cid import compute_cid
from cloudless.cli.common import check_gateway_url, handle_errors
from cloudless.runtime.package import build_package_from_dir

__all__ = ["package"]


@click.group()
def package() -> None:
    """Build and upload function packages."""


@package.command("build")
@click.argument("example_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--wasm-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=lambda: project_root() / "functions" / "dist",
    show_default="functions/dist",
    help="Folder with the built <module>.wasm files (`bash functions/build.sh`).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Package file to write.  [default: <name>.cloudless.tar]")
@handle_errors
def build(example_dir: Path, wasm_dir: Path, out: Path | None) -> None:
    """Pack EXAMPLE_DIR's manifest.json and its Wasm modules; print the app CID."""
    data = build_package_from_dir(example_dir, wasm_dir)
    target = out or Path(f"{example_dir.name}.cloudless.tar")
    target.write_bytes(data)
    click.echo(f"{compute_cid(data)}  {target}  ({len(data)} bytes)")


@package.command("upload")
@click.argument("package_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gateway", default="http://127.0.0.1:8080", show_default=True, help="Gateway base URL.")
def upload(package_file: Path, gateway: str) -> None:
    """Upload a package to a gateway, which serves it to provider nodes by CID."""
    check_gateway_url(gateway)
    try:
        response = httpx.post(f"{gateway.rstrip('/')}/packages", content=package_file.read_bytes(), timeout=60)
    except httpx.HTTPError as error:
        raise click.ClickException(f"gateway at {gateway} not reachable ({error}): start it with `cloudless gateway up`") from error
    if response.status_code != 200:
        raise click.ClickException(f"upload rejected with HTTP {response.status_code}: {response.text[:300]}")
    click.echo(response.json()["cid"])
