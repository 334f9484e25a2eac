"""`cloudless package ...`: build function packages and upload them to a gateway."""

from __future__ import annotations

import json
from pathlib import Path

import click
import httpx

from cloudless.chain.artifacts import project_root
from cloudless.cid import compute_cid
from cloudless.cli.common import check_gateway_url, handle_errors
from cloudless.cli.function_types import fill_function_types
from cloudless.exceptions import PackageFormatError
from cloudless.runtime.package import build_package, load_manifest_template

__all__ = ["build_example_package", "load_manifest_template", "package", "write_package"]


@click.group()
def package() -> None:
    """Build and upload function packages."""


def build_example_package(example_dir: Path, wasm_dir: Path, *, file_names: dict[str, str] | None = None) -> bytes:
    """Build a package from a manifest template and the modules in `wasm_dir`.

    Module `NAME` is read from `<wasm_dir>/NAME.wasm`, or from the file that
    `file_names` maps it to. Function input and output types that the
    template leaves out are read from the facade module.
    """
    template = load_manifest_template(example_dir)
    modules: dict[str, bytes] = {}
    for entry in template["modules"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue  # build_package reports the invalid entry with its index
        file_name = (file_names or {}).get(name, f"{name}.wasm")
        wasm_file = Path(wasm_dir) / file_name
        try:
            modules[name] = wasm_file.read_bytes()
        except FileNotFoundError as error:
            raise PackageFormatError(
                f"module file {wasm_file} for module {name!r} not found; build the Wasm modules first"
            ) from error
    return build_package(fill_function_types(template, modules), modules)


def write_package(data: bytes, target: Path) -> None:
    """Write package bytes to `target`, leaving the file untouched when it already has them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.read_bytes() == data:
        return
    target.write_bytes(data)


@package.command("build")
@click.argument("example_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--wasm-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=lambda: project_root() / "functions" / "dist",
    show_default="functions/dist",
    help="Folder with the built <module>.wasm files (`bash functions/build.sh`).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Package file to write, for a single EXAMPLE_DIR.  [default: <folder name>.cloudless.tar]",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the package files, named <folder name>.cloudless.tar.  [default: current folder]",
)
@handle_errors
def build(example_dirs: tuple[Path, ...], wasm_dir: Path, out: Path | None, out_dir: Path | None) -> None:
    """Pack each EXAMPLE_DIR's manifest.json and Wasm modules; print each app CID.

    Function input and output types that manifest.json leaves out are read
    from the facade module's cloudless_describe_* exports.
    """
    if out is not None and (len(example_dirs) > 1 or out_dir is not None):
        raise click.UsageError("--out takes a single EXAMPLE_DIR and excludes --out-dir; use --out-dir for several")
    for example_dir in example_dirs:
        data = build_example_package(example_dir, wasm_dir)
        target = out or (out_dir or Path(".")) / f"{example_dir.resolve().name}.cloudless.tar"
        write_package(data, target)
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
