"""The `manifest.json` schema of a function package (ABI version 1)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from cloudless.exceptions import ManifestError
from cloudless.runtime.limits import HostLimits

__all__ = [
    "ABI_VERSION",
    "DEFAULT_STDOUT_LIMIT_BYTES",
    "FunctionEntry",
    "GRANTS",
    "HOST_NAMESPACE",
    "Limits",
    "Manifest",
    "ModuleEntry",
    "WasiSettings",
    "check_host_limits",
    "manifest_to_json",
    "module_path",
    "parse_manifest",
]

ABI_VERSION = 1
DEFAULT_STDOUT_LIMIT_BYTES = 64 * 1024

# Module names become file names (in the package and in the compile cache) and
# linker namespaces, so they are restricted to a safe subset.
_MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
# Function names are Wasm export names that Rust `#[no_mangle]` can produce.
_FUNCTION_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_PACKAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_VERSION = r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_SHA256_HEX = r"^[0-9a-f]{64}$"

# Grants that a module may have beyond the always-allowed WASI functions:
# "clock" (clock_time_get, clock_res_get, poll_oneoff), "random"
# (random_get), "env" (the manifest's wasi.env variables) and "files" (the
# per-deal directory at /data). `grants.py` enforces them.
GRANTS = ("clock", "env", "files", "random")
# The import namespace of the host functions (call_params, log), so no module may take this name.
HOST_NAMESPACE = "cloudless"
# Serde type name that stands for "any JSON value" in a function's input and output.
UNTYPED = "json"

# Exports that guest ABI v1 reserves, so no callable function may use these names.
_RESERVED_EXPORTS = frozenset({"memory", "_initialize", "_start"})
_RESERVED_EXPORT_PREFIX = "cloudless_"

PositiveInt = Annotated[int, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModuleEntry(_Strict):
    """One Wasm module of the package, listed in link order."""

    name: Annotated[str, Field(pattern=_MODULE_NAME)]
    path: str
    sha256: Annotated[str, Field(pattern=_SHA256_HEX)]
    grants: Annotated[list[str], Field(max_length=len(GRANTS))] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _reject_reserved_namespaces(cls, name: str) -> str:
        # The linker defines WASI under "wasi_snapshot_preview1" and the host
        # functions under "cloudless", so a module of either name would shadow them.
        if name.startswith("wasi_"):
            raise ValueError(f"module name {name!r} is reserved for WASI; rename the module")
        if name == HOST_NAMESPACE:
            raise ValueError(f"module name {name!r} is reserved for the host functions; rename the module")
        return name

    @field_validator("path")
    @classmethod
    def _check_path(cls, path: str, info: ValidationInfo) -> str:
        name = info.data.get("name")
        if name is not None and path != module_path(name):
            raise ValueError(f"path must be {module_path(name)!r} for module {name!r}")
        return path

    @field_validator("grants")
    @classmethod
    def _check_grants(cls, grants: list[str]) -> list[str]:
        for grant in grants:
            if grant not in GRANTS:
                raise ValueError(f"unknown grant {grant!r}; grants must be drawn from {', '.join(GRANTS)}")
        _reject_duplicates(grants, "grant")
        return grants


class FunctionEntry(_Strict):
    """A function that callers may invoke, exported by the facade module."""

    name: Annotated[str, Field(pattern=_FUNCTION_NAME)]
    description: Annotated[str, Field(max_length=1024)]
    # Serde type names of the function's input and output, or "json" when untyped.
    input: Annotated[str, Field(min_length=1, max_length=128)] = UNTYPED
    output: Annotated[str, Field(min_length=1, max_length=128)] = UNTYPED

    @field_validator("name")
    @classmethod
    def _reject_reserved_names(cls, name: str) -> str:
        if name in _RESERVED_EXPORTS or name.startswith(_RESERVED_EXPORT_PREFIX):
            raise ValueError(
                f"function name {name!r} is reserved by guest ABI v1 "
                f"(memory, _initialize, _start and the {_RESERVED_EXPORT_PREFIX}* exports); rename the function"
            )
        return name


class Limits(_Strict):
    """Per-call limits: `fuel` in wasmtime fuel units, `memory_bytes` per linear memory, `timeout_ms` of wall time."""

    fuel: PositiveInt
    memory_bytes: PositiveInt
    timeout_ms: PositiveInt


class WasiSettings(_Strict):
    """WASI settings: environment variables and the bytes captured from each of stdout and stderr.

    Only modules with the "env" grant see `env`.
    """

    env: dict[Annotated[str, Field(pattern=_ENV_NAME)], str] = Field(default_factory=dict, max_length=64)
    stdout_limit_bytes: Annotated[int, Field(ge=0)] = DEFAULT_STDOUT_LIMIT_BYTES

    @field_validator("env")
    @classmethod
    def _reject_nul_in_values(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if "\x00" in value:
                raise ValueError(f"value of environment variable {key!r} contains a NUL character")
        return env


class Manifest(_Strict):
    """A parsed and schema-checked `manifest.json`. The last module is the facade."""

    abi: Literal[1]
    name: Annotated[str, Field(pattern=_PACKAGE_NAME)]
    version: Annotated[str, Field(pattern=_VERSION)]
    modules: Annotated[list[ModuleEntry], Field(min_length=1, max_length=16)]
    functions: Annotated[list[FunctionEntry], Field(min_length=1, max_length=256)]
    limits: Limits
    wasi: WasiSettings = Field(default_factory=WasiSettings)

    @field_validator("abi", mode="before")
    @classmethod
    def _reject_bool_abi(cls, abi: object) -> object:
        # Literal[1] alone would accept `true`, because True == 1 in Python.
        if isinstance(abi, bool):
            raise ValueError("abi must be the integer 1, not a boolean")
        return abi

    @field_validator("modules")
    @classmethod
    def _unique_module_names(cls, modules: list[ModuleEntry]) -> list[ModuleEntry]:
        _reject_duplicates([module.name for module in modules], "module")
        return modules

    @field_validator("functions")
    @classmethod
    def _unique_function_names(cls, functions: list[FunctionEntry]) -> list[FunctionEntry]:
        _reject_duplicates([function.name for function in functions], "function")
        return functions

    @property
    def facade(self) -> ModuleEntry:
        """The module that callers reach: the last one in link order."""
        return self.modules[-1]

    @property
    def function_names(self) -> tuple[str, ...]:
        """Names of the declared functions, in manifest order."""
        return tuple(function.name for function in self.functions)


def module_path(module_name: str) -> str:
    """Return the path of a module's Wasm file inside the package tar."""
    return f"modules/{module_name}.wasm"


def parse_manifest(data: bytes | dict[str, Any]) -> Manifest:
    """Validate manifest JSON bytes or an already decoded dict.

    Raises ManifestError naming the first invalid field and listing all of them.
    """
    try:
        if isinstance(data, (bytes, bytearray)):
            return Manifest.model_validate_json(data)
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise _manifest_error(error) from error


def manifest_to_json(manifest: Manifest) -> bytes:
    """Serialize a manifest deterministically (sorted keys, two-space indent, trailing newline).

    Module grants and function types are left out while they have their
    default values, so a template written before they existed still builds
    to the same bytes and CID.
    """
    document = manifest.model_dump(mode="json")
    for module in document["modules"]:
        if not module["grants"]:
            del module["grants"]
    for function in document["functions"]:
        for key in ("input", "output"):
            if function[key] == UNTYPED:
                del function[key]
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True)
    return (text + "\n").encode("ascii")


def check_host_limits(manifest: Manifest, host_limits: HostLimits) -> None:
    """Raise ManifestError if the manifest requests more than the host allows."""
    checks = [
        ("limits.fuel", manifest.limits.fuel, host_limits.max_fuel, "fuel units"),
        ("limits.memory_bytes", manifest.limits.memory_bytes, host_limits.max_memory_bytes, "bytes"),
        ("limits.timeout_ms", manifest.limits.timeout_ms, host_limits.max_timeout_ms, "ms"),
        (
            "wasi.stdout_limit_bytes",
            manifest.wasi.stdout_limit_bytes,
            host_limits.max_stdout_limit_bytes,
            "bytes",
        ),
    ]
    for field, requested, maximum, unit in checks:
        if requested > maximum:
            raise ManifestError(
                f"invalid manifest field {field}: {requested} {unit} exceeds the host maximum of "
                f"{maximum} {unit}; lower {field} in manifest.json",
                field=field,
            )


def _reject_duplicates(names: list[str], entry_kind: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {entry_kind} name {name!r}; each {entry_kind} must have a unique name")
        seen.add(name)


def _manifest_error(error: ValidationError) -> ManifestError:
    problems = []
    for detail in error.errors(include_url=False):
        field = _dotted_location(detail["loc"])
        problems.append((field, detail["msg"], detail.get("input")))

    first_field = problems[0][0] if problems else ""
    listed = "; ".join(
        f"{field or '(manifest)'}: {message} (got {_short_repr(value)})" for field, message, value in problems
    )
    return ManifestError(f"invalid manifest.json: {listed}; fix these fields and rebuild the package", field=first_field)


def _dotted_location(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(str(part))
    return "".join(parts)


def _short_repr(value: object, max_chars: int = 80) -> str:
    text = repr(value)
    if len(text) > max_chars:
        return text[: max_chars - 3] + "..."
    return text
