"""`cloudless build [PATH]`: compile a function project with cargo and pack it.

The toolchain rules match functions/build.sh: rustup's toolchain when it has
the wasm32-wasip1 target, otherwise Debian's /usr/bin/cargo with
RUSTC=/usr/bin/rustc and the wasm32-wasi target. Crates come from Debian's
crate sources in /usr/share/cargo/registry through a source replacement,
so the build needs no network. CLOUDLESS_CARGO and CLOUDLESS_RUSTC override
the paths of cargo and rustc (and select the wasm32-wasi target).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click

from cloudless.cid import compute_cid
from cloudless.cli.common import handle_errors
from cloudless.cli.package import build_example_package, load_manifest_template, write_package
from cloudless.runtime.package import MANIFEST_PATH

__all__ = ["Toolchain", "build", "cargo_build", "find_toolchain"]

logger = logging.getLogger("cloudless.cli")

DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
DEBIAN_PACKAGES = "rustc cargo libstd-rust-dev-wasm32 librust-serde-json-dev librust-serde-derive-dev"
# Lines of compiler output to show when a build fails.
_ERROR_TAIL_LINES = 60


@dataclass(frozen=True)
class Toolchain:
    """The cargo and rustc binaries and the Wasm target triple to build for."""

    cargo: Path
    rustc: Path
    target: str


def find_toolchain() -> Toolchain:
    """Pick the toolchain as functions/build.sh does; raise ClickException naming a missing piece."""
    rustup = shutil.which("rustup")
    if not os.environ.get("CLOUDLESS_CARGO") and rustup and _rustup_has_wasip1(rustup):
        cargo = _run_text([rustup, "which", "cargo"])
        rustc = _run_text([rustup, "which", "rustc"])
        if cargo and rustc:
            return Toolchain(cargo=Path(cargo), rustc=Path(rustc), target="wasm32-wasip1")

    cargo_path = Path(os.environ.get("CLOUDLESS_CARGO", "/usr/bin/cargo"))
    rustc_path = Path(os.environ.get("CLOUDLESS_RUSTC", "/usr/bin/rustc"))
    for label, path in (("cargo", cargo_path), ("rustc", rustc_path)):
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise click.ClickException(
                f"{label} not found at {path}; install the Debian packages ({DEBIAN_PACKAGES}) "
                f"or set CLOUDLESS_{label.upper()} to its path"
            )
    return Toolchain(cargo=cargo_path, rustc=rustc_path, target="wasm32-wasi")


def cargo_build(project: Path, toolchain: Toolchain) -> Path:
    """Run `cargo build --release` for the project's workspace; return the folder with the .wasm files.

    Raises ClickException with the end of the compiler's output when cargo fails.
    """
    command = [
        str(toolchain.cargo),
        "build",
        "--release",
        "--offline",
        "--workspace",
        "--target",
        toolchain.target,
    ]
    if DEBIAN_REGISTRY.is_dir():
        # The same replacement as the project's .cargo/config.toml, repeated
        # here so that projects without that file build too.
        command += [
            "--config",
            'source.crates-io.replace-with="debian"',
            "--config",
            f'source.debian.directory="{DEBIAN_REGISTRY}"',
        ]
    env = dict(os.environ, RUSTC=str(toolchain.rustc))
    logger.info("running %s in %s", " ".join(command), project)
    try:
        completed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise click.ClickException(f"could not run {toolchain.cargo}: {error}") from error
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        tail = "\n".join(lines[-_ERROR_TAIL_LINES:])
        raise click.ClickException(
            f"cargo build failed with exit status {completed.returncode} in {project}:\n{tail}"
        )
    target_dir = Path(env.get("CARGO_TARGET_DIR") or project / "target")
    if not target_dir.is_absolute():
        target_dir = project / target_dir
    return target_dir / toolchain.target / "release"


@click.command("build")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Package file to write.  [default: PATH/dist/<manifest name>.cloudless.tar]",
)
@handle_errors
def build(path: Path, out: Path | None) -> None:
    """Compile the function project at PATH for Wasm and pack it; print the app CID.

    PATH needs a Cargo.toml and a manifest.json, as `cloudless init` creates
    them. Module NAME of the manifest is the cdylib crate NAME of the cargo
    workspace.
    """
    project = path.resolve()
    if not project.is_dir():
        raise click.ClickException(f"project folder {project} not found; create one with `cloudless init NAME`")
    if not (project / "Cargo.toml").is_file():
        raise click.ClickException(
            f"{project / 'Cargo.toml'} not found; PATH must be a cargo project: create one with `cloudless init NAME`"
        )
    if not (project / MANIFEST_PATH).is_file():
        raise click.ClickException(
            f"{project / MANIFEST_PATH} not found; add a manifest template (see `cloudless init`)"
        )
    template = load_manifest_template(project)

    toolchain = find_toolchain()
    wasm_dir = cargo_build(project, toolchain)

    # Cargo writes crate NAME's library as NAME.wasm with "-" replaced by "_".
    file_names = {
        entry["name"]: entry["name"].replace("-", "_") + ".wasm"
        for entry in template["modules"]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    }
    data = build_example_package(project, wasm_dir, file_names=file_names)
    name = template.get("name") if isinstance(template.get("name"), str) else project.name
    target = out or project / "dist" / f"{name}.cloudless.tar"
    write_package(data, target)
    click.echo(f"{compute_cid(data)}  {target}  ({len(data)} bytes)")


def _rustup_has_wasip1(rustup: str) -> bool:
    installed = _run_text([rustup, "target", "list", "--installed"])
    return "wasm32-wasip1" in (installed or "").split()


def _run_text(command: list[str]) -> str | None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None
