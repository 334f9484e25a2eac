"""The deployment record `deployments/<chain-id>.json` that `deploy` writes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cloudless.chain.artifacts import project_root
from cloudless.exceptions import ConfigError

__all__ = ["ContractRecord", "Deployment", "EpochSettings", "deployment_path", "load_deployment"]


class ContractRecord(BaseModel):
    """Address of a deployed contract and the block it was deployed in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str
    block: int


class EpochSettings(BaseModel):
    """Epoch clock and billing settings of the DealManager."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    genesis: int  # unix seconds at which epoch 0 starts
    duration: int  # seconds per epoch
    proof_window_epochs: int
    min_deposited_epochs: int
    # Epochs after the proof window in which proofs may be challenged; claims
    # wait for them. Records written before challenges existed load as 0.
    challenge_window_epochs: int = 0


class Deployment(BaseModel):
    """Everything a client needs to reach the contracts of one chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int
    rpc_url: str
    deployer: str
    contracts: dict[str, ContractRecord]
    epoch: EpochSettings
    collateral_per_cu: int  # FLT wei per offered CU
    unbonding_period: int  # seconds

    def address(self, name: str) -> str:
        """Return the address of contract `name`.

        Records written before a contract existed (the Faucet, for example)
        still load, and only a lookup of the missing contract raises.
        """
        if name not in self.contracts:
            raise ConfigError(
                f"contract {name!r} is not in the deployment of chain {self.chain_id} "
                f"(recorded: {', '.join(sorted(self.contracts))}): the record predates that contract; "
                "redeploy with `cloudless deploy` (or `ape run deploy`)"
            )
        return self.contracts[name].address

    @property
    def start_block(self) -> int:
        """First block that can hold events of these contracts."""
        return min(record.block for record in self.contracts.values())

    def save(self, path: Path) -> None:
        """Write the record as JSON, replacing the file atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(self.model_dump_json(indent=2) + "\n")
        temporary.replace(path)


def deployment_path(chain_id: int, *, directory: Path | None = None) -> Path:
    """Return where the deployment record of `chain_id` lives."""
    return (directory or project_root() / "deployments") / f"{chain_id}.json"


def load_deployment(chain_id: int, *, directory: Path | None = None) -> Deployment:
    """Read the deployment record of `chain_id`."""
    path = deployment_path(chain_id, directory=directory)
    if not path.is_file():
        raise ConfigError(
            f"no deployment for chain {chain_id} at {path}: run `ape run deploy` "
            "(or `cloudless deploy`) against that chain first"
        )
    return Deployment.model_validate_json(path.read_text())
