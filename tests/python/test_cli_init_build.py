"""`cloudless init` and `cloudless build`: project template, cargo build and the package it prints.

A module-scoped fixture runs one full init and cargo build, which takes
about a minute on two cores. The tests after it share that project.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloudless.cli import cli
from cloudless.exceptions import GuestError
from cloudless.runtime import WasmRuntime, read_package

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILES = (
    ".cargo/config.toml",
    ".gitignore",
    "Cargo.toml",
    "README.md",
    "cloudless-sdk/Cargo.toml",
    "cloudless-sdk/src/lib.rs",
    "manifest.json",
    "src/greet.rs",
    "src/lib.rs",
)
toolchain_missing = not (Path("/usr/bin/cargo").is_file() or shutil.which("cargo"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_init_creates_files(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    result = run_cli("init", "hello", "--dir", str(project))
    assert result.exit_code == 0, result.output
    for relative in TEMPLATE_FILES:
        assert (project / relative).is_file(), relative
    cargo_toml = (project / "Cargo.toml").read_text()
    assert 'name = "hello"' in cargo_toml
    assert 'cloudless-sdk = { path = "cloudless-sdk" }' in cargo_toml
    manifest = json.loads((project / "manifest.json").read_text())
    assert manifest["name"] == "hello"
    assert manifest["modules"] == [{"name": "hello"}]
    assert "{{" not in (project / "README.md").read_text()
    sdk_source = (REPO_ROOT / "functions" / "sdk" / "src" / "lib.rs").read_text()
    assert (project / "cloudless-sdk" / "src" / "lib.rs").read_text() == sdk_source


def test_init_default_dir(tmp_path: Path) -> None:
    with CliRunner().isolated_filesystem(temp_dir=tmp_path) as folder:
        result = CliRunner().invoke(cli, ["init", "fn-one"])
        assert result.exit_code == 0, result.output
        assert (Path(folder) / "fn-one" / "manifest.json").is_file()


def test_init_rejects_nonempty_dir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    result = run_cli("init", "hello", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "is not empty" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_init_parent_is_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")

    result = run_cli("init", "hello", "--dir", str(tmp_path / "afile" / "sub"))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "cannot create or write" in result.output
    assert "choose another path" in result.output


def test_package_build_out_under_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    examples = Path(__file__).resolve().parents[2] / "functions" / "examples" / "text"

    result = run_cli("package", "build", str(examples), "--out", str(tmp_path / "afile" / "x.tar"))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "cannot create or write" in result.output


def test_init_accepts_empty_dir(tmp_path: Path) -> None:
    result = run_cli("init", "hello", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "Cargo.toml").is_file()


@pytest.mark.parametrize("name", ["Hello", "1abc", "a b", "", "cloudless", "wasi_x", "x" * 64])
def test_init_rejects_bad_name(tmp_path: Path, name: str) -> None:
    result = run_cli("init", name, "--dir", str(tmp_path / "project"))
    assert result.exit_code == 1
    assert "project name" in result.output
    assert not (tmp_path / "project").exists()


def test_init_missing_sdk(tmp_path: Path) -> None:
    result = run_cli("init", "hello", "--dir", str(tmp_path / "project"), "--sdk", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "Cloudless guest SDK not found" in result.output


def test_build_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("[package]\nname = \"x\"\n")
    result = run_cli("build", str(tmp_path))
    assert result.exit_code == 1
    assert "manifest.json not found" in result.output


def test_build_missing_cargo_toml(tmp_path: Path) -> None:
    result = run_cli("build", str(tmp_path))
    assert result.exit_code == 1
    assert "Cargo.toml not found" in result.output


def test_build_missing_folder(tmp_path: Path) -> None:
    result = run_cli("build", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "not found" in result.output


def test_build_without_cargo(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    assert run_cli("init", "hello", "--dir", str(project)).exit_code == 0
    env = {"CLOUDLESS_CARGO": str(tmp_path / "no-cargo"), "CLOUDLESS_RUSTC": "/usr/bin/rustc"}
    result = run_cli("build", str(project), env=env)
    assert result.exit_code == 1
    assert f"cargo not found at {tmp_path / 'no-cargo'}" in result.output


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Result]]:
    """Initialize a project outside the repository and build it once."""
    if toolchain_missing:
        pytest.skip("cargo is not installed")
    project = tmp_path_factory.mktemp("outside") / "greeter"
    assert run_cli("init", "greeter", "--dir", str(project)).exit_code == 0
    # Debian's toolchain, as on the project's machines, unless the caller picked one.
    env = {key: os.environ[key] for key in ("CLOUDLESS_CARGO", "CLOUDLESS_RUSTC") if key in os.environ}
    yield project, run_cli("build", str(project), env=env or None)


def test_build_prints_cid(built_project: tuple[Path, Result]) -> None:
    project, result = built_project
    assert result.exit_code == 0, result.output
    cid, path = result.output.strip().splitlines()[-1].split()[:2]
    package_file = Path(path)
    assert package_file == project / "dist" / "greeter.cloudless.tar"
    package = read_package(package_file.read_bytes())
    assert package.cid == cid
    greet = package.manifest.functions[0]
    assert (greet.name, greet.input, greet.output) == ("greet", "GreetRequest", "GreetResponse")


def test_built_package_runs(built_project: tuple[Path, Result]) -> None:
    project, result = built_project
    assert result.exit_code == 0, result.output
    data = (project / "dist" / "greeter.cloudless.tar").read_bytes()
    with WasmRuntime() as runtime:
        package = runtime.load(data)
        output = runtime.call(package, "greet", b'{"name": "Ada"}').output
        assert json.loads(output) == {"greeting": "Hello, Ada!"}
        with pytest.raises(GuestError) as raised:
            runtime.call(package, "greet", b'{"name": ""}')
        assert raised.value.guest_message == "name must not be empty"


def test_build_reports_compiler_error(built_project: tuple[Path, Result]) -> None:
    project, _ = built_project
    greet = project / "src" / "greet.rs"
    original = greet.read_text()
    greet.write_text(original.replace("Ok(GreetResponse {", "Ok(GreetResponse { missing_field: 1,"))
    try:
        result = run_cli("build", str(project))
    finally:
        greet.write_text(original)
    assert result.exit_code == 1
    assert "cargo build failed with exit status 101" in result.output
    assert "missing_field" in result.output
