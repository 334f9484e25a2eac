"""Build and read function packages.

A package is one canonical ustar tar (see `package_tar`) that contains
`manifest.json` and one `modules/<name>.wasm` per module. Its CID (the app
CID) is the CID of the tar bytes. Modules are listed in link order, and the
last one, the facade, exports the callable functions and the guest ABI v1
entry points.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudless.cid import compute_cid, verify_cid
from cloudless.exceptions import ManifestError, PackageFormatError, PackageIntegrityError
from cloudless.runtime.limits import MAX_PACKAGE_BYTES, HostLimits
from cloudless.runtime.manifest import (
    Manifest,
    check_host_limits,
    manifest_to_json,
    module_path,
    parse_manifest,
)
from cloudless.runtime.package_tar import read_tar_entries, write_canonical_tar
from cloudless.runtime.wasm_binary import read_exports

__all__ = [
    "load_manifest_template",
    "ABI_EXPORTS",
    "MANIFEST_PATH",
    "FunctionPackage",
    "PackageModule",
    "build_package",
    "build_package_from_dir",
    "read_package",
]

logger = logging.getLogger("cloudless.runtime")

MANIFEST_PATH = "manifest.json"

# Exports that guest ABI v1 requires of the facade module, with their kind.
ABI_EXPORTS = {
    "memory": "memory",
    "cloudless_abi_version": "func",
    "cloudless_alloc": "func",
    "cloudless_free": "func",
}

_DEFAULT_HOST_LIMITS = HostLimits()


@dataclass(frozen=True)
class PackageModule:
    """One Wasm module of a package and its export kinds by name."""

    name: str
    wasm: bytes
    exports: dict[str, str]


@dataclass(frozen=True)
class FunctionPackage:
    """A verified function package: its CID, manifest and modules in link order."""

    cid: str
    manifest: Manifest
    modules: tuple[PackageModule, ...]
    size_bytes: int

    @property
    def facade(self) -> PackageModule:
        """The module that callers reach: the last one in link order."""
        return self.modules[-1]

    @property
    def function_names(self) -> tuple[str, ...]:
        """Names of the functions that the manifest declares."""
        return self.manifest.function_names


def build_package(
    manifest_template: dict[str, Any],
    modules: dict[str, bytes],
    *,
    host_limits: HostLimits = _DEFAULT_HOST_LIMITS,
) -> bytes:
    """Build the canonical package tar from a manifest template and module bytes.

    The template is a manifest whose module entries carry only `name`, and
    this fills in each `path` and `sha256`. `modules` maps every module name in the
    template to its Wasm bytes. The result passes `read_package`, and the same
    inputs always give the same bytes.
    """
    if not isinstance(manifest_template, dict):
        raise ManifestError(
            f"invalid manifest template: expected a JSON object, got {type(manifest_template).__name__}"
        )
    template = copy.deepcopy(manifest_template)
    entries = template.get("modules")
    if not isinstance(entries, list):
        raise ManifestError("invalid manifest field modules: expected a list of {\"name\": ...} objects", field="modules")

    declared_names: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ManifestError(
                f"invalid manifest field modules[{index}]: expected an object with a string name, got {entry!r}",
                field=f"modules[{index}].name",
            )
        name = entry["name"]
        declared_names.append(name)
        if name not in modules:
            raise ManifestError(
                f"module {name!r} is listed in the manifest but no Wasm bytes were given for it; "
                f"pass modules[{name!r}]",
                field=f"modules[{index}].name",
            )
        wasm = modules[name]
        entry["path"] = module_path(name)
        entry["sha256"] = hashlib.sha256(wasm).hexdigest()

    extra = sorted(set(modules) - set(declared_names))
    if extra:
        raise ManifestError(
            f"modules {extra} were given but are not listed in the manifest; add them to modules or drop them",
            field="modules",
        )

    manifest = parse_manifest(template)
    files = [(MANIFEST_PATH, manifest_to_json(manifest))]
    files += [(module_path(name), bytes(modules[name])) for name in declared_names]
    data = write_canonical_tar(sorted(files))

    # Apply every reader check now, so that a package that builds also loads.
    package = read_package(data, host_limits=host_limits)
    logger.info(
        "built package %s %s (%d bytes, %d modules) with CID %s",
        manifest.name,
        manifest.version,
        len(data),
        len(declared_names),
        package.cid,
    )
    return data


def load_manifest_template(example_dir: Path) -> dict[str, Any]:
    """Read `<example_dir>/manifest.json`, a manifest without module hashes; raise ManifestError if it is not one."""
    manifest_file = Path(example_dir) / MANIFEST_PATH
    try:
        template = json.loads(manifest_file.read_bytes())
    except FileNotFoundError as error:
        raise ManifestError(f"manifest template {manifest_file} not found; create it first") from error
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest template {manifest_file} is not valid JSON: {error}") from error
    if not isinstance(template, dict) or not isinstance(template.get("modules"), list):
        raise ManifestError(
            f"invalid manifest template {manifest_file}: expected an object with a modules list", field="modules"
        )
    return template


def build_package_from_dir(
    example_dir: Path,
    wasm_dir: Path,
    *,
    host_limits: HostLimits = _DEFAULT_HOST_LIMITS,
) -> bytes:
    """Build a package from `<example_dir>/manifest.json` and `<wasm_dir>/<module-name>.wasm` files."""
    template = load_manifest_template(example_dir)
    module_entries = template["modules"]

    modules: dict[str, bytes] = {}
    for entry in module_entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue  # build_package reports the invalid entry with its index
        wasm_file = Path(wasm_dir) / f"{name}.wasm"
        try:
            modules[name] = wasm_file.read_bytes()
        except FileNotFoundError as error:
            raise PackageFormatError(
                f"module file {wasm_file} for module {name!r} not found; build the Wasm modules first"
            ) from error
    return build_package(template, modules, host_limits=host_limits)


def read_package(
    data: bytes,
    expected_cid: str | None = None,
    *,
    host_limits: HostLimits = _DEFAULT_HOST_LIMITS,
) -> FunctionPackage:
    """Verify and parse package bytes.

    Checks, in order: the size limit, the CID (when `expected_cid` is given),
    the canonical tar layout, the manifest schema and host limits, each
    module's sha256, and that the facade exports the guest ABI and every
    declared function.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise PackageFormatError(f"package data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageFormatError(
            f"package is {len(data)} bytes, more than the maximum of {MAX_PACKAGE_BYTES} bytes; "
            "shrink the modules (for example build with opt-level \"z\" and strip debug info)"
        )
    if expected_cid is not None:
        verify_cid(data, expected_cid)
    cid = expected_cid if expected_cid is not None else compute_cid(data)

    files = _read_canonical_files(data)
    manifest_bytes = files.pop(MANIFEST_PATH, None)
    if manifest_bytes is None:
        raise ManifestError(f"package {cid} has no {MANIFEST_PATH}; build it with build_package")
    manifest = parse_manifest(manifest_bytes)
    check_host_limits(manifest, host_limits)

    modules = tuple(_read_module(manifest, index, files) for index in range(len(manifest.modules)))
    if files:
        raise PackageFormatError(
            f"package {cid} contains files that the manifest does not list: {sorted(files)}; "
            "rebuild it with build_package"
        )
    _check_facade_exports(manifest, modules[-1])

    logger.debug("read package %s: %s %s, %d modules", cid, manifest.name, manifest.version, len(modules))
    return FunctionPackage(cid=cid, manifest=manifest, modules=modules, size_bytes=len(data))


def _read_canonical_files(data: bytes) -> dict[str, bytes]:
    entries = read_tar_entries(data)
    paths = [path for path, _ in entries]
    if paths != sorted(paths):
        raise PackageFormatError(
            f"package entries are not sorted by path ({paths}); rebuild the package with build_package"
        )
    if write_canonical_tar(entries) != data:
        raise PackageFormatError(
            "package tar is not in canonical form (ustar headers with mode 0644, uid and gid 0, mtime 0, "
            "empty user and group names, then two zero blocks); rebuild it with build_package"
        )
    return dict(entries)


def _read_module(manifest: Manifest, index: int, files: dict[str, bytes]) -> PackageModule:
    entry = manifest.modules[index]
    wasm = files.pop(entry.path, None)
    if wasm is None:
        raise PackageFormatError(
            f"module {entry.name!r} is listed in the manifest but {entry.path} is missing from the package"
        )
    actual = hashlib.sha256(wasm).hexdigest()
    if actual != entry.sha256:
        raise PackageIntegrityError(
            f"sha256 mismatch for module {entry.name!r} ({entry.path}): the manifest expects {entry.sha256}, "
            f"but the file hashes to {actual}; the package was altered, so fetch or rebuild it",
            expected=entry.sha256,
            actual=actual,
        )
    return PackageModule(name=entry.name, wasm=wasm, exports=read_exports(wasm, entry.name))


def _check_facade_exports(manifest: Manifest, facade: PackageModule) -> None:
    for export_name, kind in ABI_EXPORTS.items():
        if facade.exports.get(export_name) != kind:
            raise PackageFormatError(
                f"facade module {facade.name!r} does not export the {kind} {export_name!r} that guest ABI v1 "
                "requires; build the last module with the Cloudless guest SDK"
            )

    exported_functions = sorted(
        name for name, kind in facade.exports.items() if kind == "func" and name not in ABI_EXPORTS
    )
    for index, function in enumerate(manifest.functions):
        if facade.exports.get(function.name) != "func":
            raise ManifestError(
                f"function {function.name!r} is declared in the manifest but the facade module "
                f"{facade.name!r} does not export it as a function; exported functions: {exported_functions}. "
                "Export it from the facade or remove it from functions",
                field=f"functions[{index}].name",
            )
