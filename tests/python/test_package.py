"""Function package format: deterministic builds, integrity checks and manifest validation."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from cloudless.cid import compute_cid
from cloudless.exceptions import ManifestError, PackageError, PackageFormatError, PackageIntegrityError
from cloudless.runtime.limits import MAX_PACKAGE_BYTES, HostLimits
from cloudless.runtime.package import build_package, build_package_from_dir, read_package
from cloudless.runtime.package_tar import read_tar_entries, write_canonical_tar

# A facade with the guest ABI v1 exports and two callable functions. The
# function bodies do not matter here: package checks never run them.
FACADE_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "cloudless_abi_version") (result i32) (i32.const 1))
  (func (export "cloudless_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "cloudless_free") (param i32 i32))
  (func (export "hello") (param i32 i32) (result i64) (i64.const 0))
  (func (export "goodbye") (param i32 i32) (result i64) (i64.const 0)))
"""

HELPER_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"""

FACADE_WASM = wasmtime.wat2wasm(FACADE_WAT)
HELPER_WASM = wasmtime.wat2wasm(HELPER_WAT)


def make_template() -> dict[str, Any]:
    return {
        "abi": 1,
        "name": "greeter",
        "version": "0.1.0",
        "modules": [{"name": "helper"}, {"name": "greeter"}],
        "functions": [
            {"name": "hello", "description": "Say hello."},
            {"name": "goodbye", "description": "Say goodbye."},
        ],
        "limits": {"fuel": 1_000_000, "memory_bytes": 4 * 1024 * 1024, "timeout_ms": 1000},
    }


def make_modules() -> dict[str, bytes]:
    return {"helper": HELPER_WASM, "greeter": FACADE_WASM}


def rebuild_with(package: bytes, path: str, content: bytes | None) -> bytes:
    """Return a canonical tar like `package` with one file replaced, added or (content None) removed."""
    files = dict(read_tar_entries(package))
    if content is None:
        del files[path]
    else:
        files[path] = content
    return write_canonical_tar(sorted(files.items()))


def manifest_of(package: bytes) -> dict[str, Any]:
    return json.loads(dict(read_tar_entries(package))["manifest.json"])


def test_build_package_is_deterministic() -> None:
    first = build_package(make_template(), make_modules())
    second = build_package(make_template(), make_modules())

    assert first == second
    assert compute_cid(first) == compute_cid(second)


def test_build_package_ignores_dict_order() -> None:
    template = make_template()
    reordered = dict(reversed(list(template.items())))
    reordered["limits"] = dict(reversed(list(template["limits"].items())))
    modules = dict(reversed(list(make_modules().items())))

    assert build_package(reordered, modules) == build_package(template, make_modules())


def test_build_package_changes_cid_with_content() -> None:
    template = make_template()
    bumped = copy.deepcopy(template)
    bumped["version"] = "0.1.1"

    assert compute_cid(build_package(template, make_modules())) != compute_cid(build_package(bumped, make_modules()))


def test_build_package_writes_canonical_tar_headers() -> None:
    data = build_package(make_template(), make_modules())

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        members = archive.getmembers()

    assert [member.name for member in members] == ["manifest.json", "modules/greeter.wasm", "modules/helper.wasm"]
    for member in members:
        assert member.isreg()
        assert member.mode == 0o644
        assert member.mtime == 0
        assert member.uid == 0
        assert member.gid == 0
        assert member.uname == ""
        assert member.gname == ""
    assert len(data) % 512 == 0


def test_build_package_fills_module_path_and_sha256() -> None:
    manifest = manifest_of(build_package(make_template(), make_modules()))

    assert manifest["modules"] == [
        {"name": "helper", "path": "modules/helper.wasm", "sha256": hashlib.sha256(HELPER_WASM).hexdigest()},
        {"name": "greeter", "path": "modules/greeter.wasm", "sha256": hashlib.sha256(FACADE_WASM).hexdigest()},
    ]
    assert manifest["wasi"] == {"env": {}, "stdout_limit_bytes": 65536}


def test_build_package_leaves_template_unchanged() -> None:
    template = make_template()
    original = copy.deepcopy(template)

    build_package(template, make_modules())

    assert template == original


def test_read_package_returns_modules_in_link_order() -> None:
    data = build_package(make_template(), make_modules())

    package = read_package(data)

    assert package.cid == compute_cid(data)
    assert [module.name for module in package.modules] == ["helper", "greeter"]
    assert package.facade.name == "greeter"
    assert package.facade.wasm == FACADE_WASM
    assert package.function_names == ("hello", "goodbye")
    assert package.size_bytes == len(data)
    assert package.facade.exports["hello"] == "func"
    assert package.facade.exports["memory"] == "memory"


def test_read_package_accepts_expected_cid() -> None:
    data = build_package(make_template(), make_modules())

    package = read_package(data, expected_cid=compute_cid(data))

    assert package.cid == compute_cid(data)


def test_read_package_rejects_wrong_cid() -> None:
    data = build_package(make_template(), make_modules())
    other_cid = compute_cid(b"another package")

    with pytest.raises(PackageIntegrityError) as caught:
        read_package(data, expected_cid=other_cid)

    assert caught.value.expected == other_cid
    assert caught.value.actual == compute_cid(data)


def test_read_package_rejects_tampered_module() -> None:
    data = build_package(make_template(), make_modules())
    tampered_wasm = wasmtime.wat2wasm(FACADE_WAT.replace("(i32.const 1024)", "(i32.const 2048)"))
    tampered = rebuild_with(data, "modules/greeter.wasm", tampered_wasm)

    with pytest.raises(PackageIntegrityError) as caught:
        read_package(tampered)

    assert "greeter" in str(caught.value)
    assert caught.value.expected == hashlib.sha256(FACADE_WASM).hexdigest()
    assert caught.value.actual == hashlib.sha256(tampered_wasm).hexdigest()


def test_read_package_rejects_flipped_byte_in_module() -> None:
    data = bytearray(build_package(make_template(), make_modules()))
    # helper.wasm is the last tar entry. Flip the last byte of its content.
    helper_end = data.rindex(HELPER_WASM) + len(HELPER_WASM)
    data[helper_end - 1] ^= 0xFF

    with pytest.raises(PackageIntegrityError, match="helper"):
        read_package(bytes(data))


def test_read_package_rejects_function_missing_from_facade() -> None:
    template = make_template()
    template["functions"].append({"name": "missing", "description": "Not exported."})
    data = build_package(make_template(), make_modules())
    manifest = manifest_of(data)
    manifest["functions"].append({"name": "missing", "description": "Not exported."})
    forged = rebuild_with(data, "manifest.json", json.dumps(manifest).encode())

    with pytest.raises(ManifestError) as built:
        build_package(template, make_modules())
    with pytest.raises(ManifestError) as read:
        read_package(forged)

    for caught in (built, read):
        assert caught.value.field == "functions[2].name"
        assert "'missing'" in str(caught.value)
        assert "'hello'" in str(caught.value)


def test_read_package_rejects_facade_without_abi_exports() -> None:
    no_alloc = wasmtime.wat2wasm(
        """
        (module
          (memory (export "memory") 1)
          (func (export "cloudless_abi_version") (result i32) (i32.const 1))
          (func (export "cloudless_free") (param i32 i32))
          (func (export "hello") (param i32 i32) (result i64) (i64.const 0)))
        """
    )
    template = make_template()
    template["functions"] = [{"name": "hello", "description": "Say hello."}]

    with pytest.raises(PackageFormatError, match="cloudless_alloc"):
        build_package(template, {"helper": HELPER_WASM, "greeter": no_alloc})


def test_read_package_rejects_non_wasm_module() -> None:
    modules = make_modules()
    modules["helper"] = b"not a wasm module"

    with pytest.raises(PackageFormatError, match="helper"):
        build_package(make_template(), modules)


def test_read_package_rejects_truncated_wasm() -> None:
    modules = make_modules()
    modules["greeter"] = FACADE_WASM[:-5]

    with pytest.raises(PackageFormatError, match="greeter"):
        build_package(make_template(), modules)


def test_read_package_rejects_non_canonical_tar() -> None:
    data = build_package(make_template(), make_modules())
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for path, content in read_tar_entries(data):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(content))

    with pytest.raises(PackageFormatError, match="canonical"):
        read_package(output.getvalue())


def test_read_package_rejects_unsorted_entries() -> None:
    entries = read_tar_entries(build_package(make_template(), make_modules()))

    with pytest.raises(PackageFormatError, match="sorted"):
        read_package(write_canonical_tar(list(reversed(entries))))


def test_read_package_rejects_unlisted_file() -> None:
    data = build_package(make_template(), make_modules())

    with pytest.raises(PackageFormatError, match="modules/extra.wasm"):
        read_package(rebuild_with(data, "modules/extra.wasm", HELPER_WASM))


def test_read_package_rejects_missing_module_file() -> None:
    data = build_package(make_template(), make_modules())

    with pytest.raises(PackageFormatError, match="modules/helper.wasm"):
        read_package(rebuild_with(data, "modules/helper.wasm", None))


def test_read_package_rejects_missing_manifest() -> None:
    data = build_package(make_template(), make_modules())

    with pytest.raises(ManifestError, match="manifest.json"):
        read_package(rebuild_with(data, "manifest.json", None))


def test_read_package_rejects_invalid_manifest_json() -> None:
    data = build_package(make_template(), make_modules())

    with pytest.raises(ManifestError, match="Invalid JSON"):
        read_package(rebuild_with(data, "manifest.json", b"{\"abi\": 1,"))


def test_read_package_rejects_non_tar_bytes() -> None:
    with pytest.raises(PackageFormatError):
        read_package(b"\x00" * 100 + b"definitely not a tar archive" * 40)


def test_read_package_rejects_oversized_package() -> None:
    with pytest.raises(PackageFormatError, match=str(MAX_PACKAGE_BYTES)):
        read_package(bytes(MAX_PACKAGE_BYTES + 1))


def set_path(document: dict[str, Any], path: list[str | int], value: Any) -> None:
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["abi"], 2, "abi"),
        (["abi"], True, "abi"),
        (["name"], "", "name"),
        (["name"], "has spaces", "name"),
        (["version"], "", "version"),
        (["limits", "fuel"], 0, "limits.fuel"),
        (["limits", "fuel"], "1000", "limits.fuel"),
        (["limits", "memory_bytes"], -1, "limits.memory_bytes"),
        (["limits", "timeout_ms"], 1.5, "limits.timeout_ms"),
        (["limits", "gas"], 5, "limits.gas"),
        (["extra"], "field", "extra"),
        (["functions", 0, "name"], "cloudless_alloc", "functions[0].name"),
        (["functions", 0, "name"], "memory", "functions[0].name"),
        (["functions", 1, "name"], "hello", "functions"),
        (["functions", 0, "description"], None, "functions[0].description"),
        (["modules", 0, "name"], "../escape", "modules[0].name"),
        (["modules", 0, "name"], "wasi_snapshot_preview1", "modules[0].name"),
        (["wasi"], {"env": {"A-B": "x"}}, "wasi.env.A-B.[key]"),
        (["wasi"], {"stdout_limit_bytes": -1}, "wasi.stdout_limit_bytes"),
        (["wasi"], {"stdin": "file"}, "wasi.stdin"),
    ],
)
def test_manifest_validation_error_names_field(path: list[str | int], value: Any, field: str) -> None:
    template = make_template()
    if path[0] == "modules":
        modules = make_modules()
        modules[str(value)] = modules.pop("helper")
    else:
        modules = make_modules()
    set_path(template, path, value)

    with pytest.raises(ManifestError) as caught:
        build_package(template, modules)

    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["limits", "fuel"], 10_000_000_001, "limits.fuel"),
        (["limits", "memory_bytes"], 512 * 1024 * 1024 + 1, "limits.memory_bytes"),
        (["limits", "timeout_ms"], 60_001, "limits.timeout_ms"),
    ],
)
def test_manifest_limits_above_host_maximum_rejected(path: list[str | int], value: int, field: str) -> None:
    template = make_template()
    set_path(template, path, value)

    with pytest.raises(ManifestError) as caught:
        build_package(template, make_modules())

    assert caught.value.field == field
    assert "host maximum" in str(caught.value)


def test_manifest_limits_at_host_maximum_accepted() -> None:
    template = make_template()
    template["limits"] = {"fuel": 10_000_000_000, "memory_bytes": 512 * 1024 * 1024, "timeout_ms": 60_000}

    package = read_package(build_package(template, make_modules()))

    assert package.manifest.limits.fuel == 10_000_000_000


def test_read_package_applies_custom_host_limits() -> None:
    data = build_package(make_template(), make_modules())
    strict_host = HostLimits(max_fuel=999_999)

    with pytest.raises(ManifestError) as caught:
        read_package(data, host_limits=strict_host)

    assert caught.value.field == "limits.fuel"


def test_build_package_rejects_missing_module_bytes() -> None:
    with pytest.raises(ManifestError, match="'helper'"):
        build_package(make_template(), {"greeter": FACADE_WASM})


def test_build_package_rejects_unlisted_module_bytes() -> None:
    modules = make_modules()
    modules["stray"] = HELPER_WASM

    with pytest.raises(ManifestError, match="stray"):
        build_package(make_template(), modules)


def test_build_from_dir_matches_build_package(tmp_path: Path) -> None:
    example_dir = tmp_path / "greeter"
    wasm_dir = tmp_path / "dist"
    example_dir.mkdir()
    wasm_dir.mkdir()
    (example_dir / "manifest.json").write_text(json.dumps(make_template()))
    (wasm_dir / "helper.wasm").write_bytes(HELPER_WASM)
    (wasm_dir / "greeter.wasm").write_bytes(FACADE_WASM)

    data = build_package_from_dir(example_dir, wasm_dir)

    assert data == build_package(make_template(), make_modules())


def test_build_from_dir_reports_missing_wasm(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(make_template()))

    with pytest.raises(PackageFormatError, match="helper.wasm"):
        build_package_from_dir(tmp_path, tmp_path / "dist")


def test_package_errors_share_base_class() -> None:
    for error_class in (ManifestError, PackageFormatError, PackageIntegrityError):
        assert issubclass(error_class, PackageError)
        assert issubclass(error_class, ValueError)
