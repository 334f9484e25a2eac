"""`cloudless init NAME`: create a function project from the template in cloudless/templates/function."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

from cloudless.chain.artifacts import project_root
from cloudless.cli.common import handle_errors

__all__ = ["create_project", "init"]

# Lowercase so that the package name, the crate name and the manifest's
# module name can all be NAME. Module names become file names and import
# namespaces, so "-" is allowed but nothing else.
_PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Import namespaces of WASI and the host functions, which no module may shadow.
_RESERVED_NAMES = ("cloudless",)
_RESERVED_PREFIX = "wasi_"
_TEMPLATE_SUFFIX = ".tmpl"
# Template files whose names cannot start with "." in package data.
_RENAMED = {"cargo-config.toml": ".cargo/config.toml", "gitignore": ".gitignore"}
_SDK_FILES = ("Cargo.toml", "src")


def create_project(name: str, directory: Path, sdk_dir: Path) -> list[Path]:
    """Write a new project for function package `name` into `directory`; return the files written.

    `directory` must be missing or empty. The SDK at `sdk_dir` is copied
    into `directory/cloudless-sdk`, so the project builds without the
    Cloudless repository. Raises ClickException for an invalid name, a
    non-empty directory or a missing SDK.
    """
    if not _PROJECT_NAME.match(name):
        raise click.ClickException(
            f"invalid project name {name!r}: use 1 to 63 lowercase letters, digits, '_' and '-', "
            "starting with a letter"
        )
    if name in _RESERVED_NAMES or name.startswith(_RESERVED_PREFIX):
        raise click.ClickException(
            f"project name {name!r} is reserved for host imports (cloudless, wasi_*); choose another name"
        )
    if directory.exists() and not directory.is_dir():
        raise click.ClickException(f"{directory} exists and is not a folder; pass another --dir")
    if directory.is_dir() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} is not empty; pass an empty or new folder with --dir")
    if not (sdk_dir / "Cargo.toml").is_file() or not (sdk_dir / "src" / "lib.rs").is_file():
        raise click.ClickException(
            f"Cloudless guest SDK not found at {sdk_dir}; pass --sdk with the path of functions/sdk "
            "of a Cloudless checkout"
        )

    written: list[Path] = []
    template_root = resources.files("cloudless") / "templates" / "function"
    for relative, text in _template_files(template_root, ""):
        target_name = _RENAMED.get(relative, relative)
        if target_name.endswith(_TEMPLATE_SUFFIX):
            target_name = target_name[: -len(_TEMPLATE_SUFFIX)]
            text = text.replace("{{name}}", name)
        target = directory / target_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)

    sdk_target = directory / "cloudless-sdk"
    sdk_target.mkdir(parents=True)
    for entry in _SDK_FILES:
        source = sdk_dir / entry
        if source.is_dir():
            shutil.copytree(source, sdk_target / entry)
        else:
            shutil.copy2(source, sdk_target / entry)
    written.extend(sorted(path for path in sdk_target.rglob("*") if path.is_file()))
    return written


def _template_files(folder: Traversable, prefix: str) -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                files.extend(_template_files(entry, relative + "/"))
        else:
            files.append((relative, entry.read_text(encoding="utf-8")))
    return files


@click.command("init")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the project; it must be missing or empty.  [default: ./NAME]",
)
@click.option(
    "--sdk",
    "sdk_dir",
    type=click.Path(path_type=Path),
    default=lambda: project_root() / "functions" / "sdk",
    show_default="functions/sdk of this checkout",
    help="Cloudless guest SDK to copy into the project.",
)
@handle_errors
def init(name: str, directory: Path | None, sdk_dir: Path) -> None:
    """Create a Rust function project NAME with an example function, a manifest and a copy of the SDK."""
    target = directory if directory is not None else Path(name)
    written = create_project(name, target, Path(sdk_dir))
    click.echo(f"created {len(written)} files in {target}")
    click.echo(f"build the package with: cloudless build {target}")
