"""Contract ABIs and bytecode from Ape's build output (`.build/__local__.json`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cloudless.exceptions import ConfigError

__all__ = ["ContractArtifact", "load_artifact", "project_root"]


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and creation bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def project_root() -> Path:
    """Return the repository root: `$CLOUDLESS_ROOT`, else the checkout this package lives in."""
    configured = os.environ.get("CLOUDLESS_ROOT")
    if configured:
        return Path(configured).resolve()

    # The package is installed in editable mode from <root>/python/cloudless.
    return Path(__file__).resolve().parents[3]


@lru_cache(maxsize=8)
def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"compiled contracts not found at {path}: run `make setup` (or `ape compile`) first")
    with path.open() as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def load_artifact(name: str, *, root: Path | None = None) -> ContractArtifact:
    """Load contract `name` from Ape's build output under `root`."""
    path = (root or project_root()) / ".build" / "__local__.json"
    contract_types = _load_manifest(path)["contractTypes"]
    if name not in contract_types:
        known = ", ".join(sorted(contract_types))
        raise ConfigError(f"contract {name!r} is not in {path} (compiled: {known}): run `ape compile`")

    entry = contract_types[name]
    bytecode = (entry.get("deploymentBytecode") or {}).get("bytecode") or "0x"
    return ContractArtifact(name=name, abi=entry["abi"], bytecode=bytecode)
