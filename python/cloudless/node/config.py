"""Provider node configuration: a YAML file validated into pydantic models.

Every validation error is turned into one `ConfigError` whose message names
the dotted path of each offending field (for example `offer.tier`).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import yaml
from eth_account import Account
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from cloudless.exceptions import ConfigError
from cloudless.node.cheats import check_cheat_names

__all__ = [
    "ClaimSettings",
    "ListenSettings",
    "NodeConfig",
    "OfferSettings",
    "PeerSettings",
    "format_validation_error",
    "load_node_config",
    "usable_cpu_count",
]

_PRIVATE_KEY_HEX_LENGTH = 64


def _check_private_key(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    text = value.get_secret_value()
    digits = text[2:] if text.startswith("0x") else text
    if len(digits) != _PRIVATE_KEY_HEX_LENGTH or any(char not in "0123456789abcdefABCDEF" for char in digits):
        # The value itself is a secret, so the message describes it without showing it.
        raise ValueError(f"expected a 32-byte hex private key (64 hex digits, optional 0x), got {len(digits)} characters")
    return SecretStr("0x" + digits.lower())


def _check_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenSettings(_Strict):
    """Address that the node's HTTP API binds to."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8700


class OfferSettings(_Strict):
    """Terms of the offer that the node registers for its peers."""

    price_usdc: Annotated[Decimal, Field(gt=0)]  # USDC per CU per epoch
    region: Annotated[int, Field(ge=0, le=65535)]
    tier: Annotated[int, Field(ge=1, le=4)]
    sla_bps: Annotated[int, Field(ge=0, le=10000)]
    # FLT to stake at registration. None stakes exactly what the offered CUs require.
    stake_flt: Annotated[Decimal, Field(ge=0)] | None = None


class PeerSettings(_Strict):
    """One peer: the key that signs its receipts and proofs, and its compute units."""

    signer_key: SecretStr | None = None
    signer_key_env: str | None = None
    cus: Annotated[int, Field(ge=1, le=2**32 - 1)]

    @field_validator("signer_key")
    @classmethod
    def _check_signer_key(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_private_key(value)

    @model_validator(mode="after")
    def _one_key_source(self) -> PeerSettings:
        if (self.signer_key is None) == (self.signer_key_env is None):
            raise ValueError("set exactly one of signer_key and signer_key_env")
        return self

    def resolve_key(self, location: str) -> str:
        """Return the signer's private key, reading `signer_key_env` if that is how it is given."""
        return _resolve_key(self.signer_key, self.signer_key_env, f"{location}.signer_key_env")


class ClaimSettings(_Strict):
    """Whether the node claims its earnings and withdraws them."""

    enabled: bool = True


class NodeConfig(_Strict):
    """Everything `cloudless provider up` needs to run one provider node."""

    rpc_url: str = "http://127.0.0.1:8545"
    # A deployment record to use in place of `deployments/<chain-id>.json`.
    deployment_file: Path | None = None
    provider_key: SecretStr | None = None
    provider_key_env: str | None = None
    name: Annotated[str, Field(min_length=1, max_length=64)]
    listen: ListenSettings = ListenSettings()
    public_url: str | None = None
    data_dir: Path
    package_sources: Annotated[list[str], Field(min_length=1)]
    offer: OfferSettings
    peers: Annotated[list[PeerSettings], Field(min_length=1)]
    poll_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
    claim: ClaimSettings = ClaimSettings()
    # Calls that run at once. The node rejects more with 503 "busy" instead of queueing them.
    max_concurrent_calls: Annotated[int, Field(ge=1)] = Field(default_factory=lambda: usable_cpu_count())
    # Deliberate protocol violations, for tests and demonstrations of the
    # proof system only (see cloudless.node.cheats). Empty for a real node.
    cheat: list[str] = []

    @field_validator("cheat", mode="before")
    @classmethod
    def _cheat_list(cls, value: object) -> object:
        # One cheat may be written without a list.
        return [value] if isinstance(value, str) else value

    @field_validator("cheat")
    @classmethod
    def _check_cheats(cls, value: list[str]) -> list[str]:
        return check_cheat_names(value)

    @field_validator("provider_key")
    @classmethod
    def _check_provider_key(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_private_key(value)

    @field_validator("rpc_url", "public_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @field_validator("package_sources")
    @classmethod
    def _check_sources(cls, value: list[str]) -> list[str]:
        return [_check_http_url(source) for source in value]

    @model_validator(mode="after")
    def _one_provider_key_source(self) -> NodeConfig:
        if (self.provider_key is None) == (self.provider_key_env is None):
            raise ValueError("set exactly one of provider_key and provider_key_env")
        return self

    @property
    def endpoint_url(self) -> str:
        """URL that goes on chain as the provider endpoint: `public_url`, else the listen address."""
        return self.public_url or f"http://{self.listen.host}:{self.listen.port}"

    def resolve_provider_key(self) -> str:
        """Return the provider's private key, reading `provider_key_env` if that is how it is given."""
        return _resolve_key(self.provider_key, self.provider_key_env, "provider_key_env")

    def resolve_peer_keys(self) -> list[str]:
        """Return every peer's signer key, in config order, and check that the signers differ."""
        keys = [peer.resolve_key(f"peers.{index}") for index, peer in enumerate(self.peers)]
        seen: dict[str, int] = {}
        for index, key in enumerate(keys):
            address = Account.from_key(key).address
            if address in seen:
                raise ConfigError(
                    f"invalid node config: peers.{index}.signer_key is the same signer {address} as "
                    f"peers.{seen[address]}; give every peer its own key"
                )
            seen[address] = index
        return keys


def usable_cpu_count() -> int:
    """Return the CPU cores this process may run on, the default of `max_concurrent_calls`."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _resolve_key(key: SecretStr | None, env_name: str | None, field: str) -> str:
    if key is not None:
        return key.get_secret_value()
    assert env_name is not None
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"invalid node config: {field} names ${env_name}, but that variable is not set")
    try:
        checked = _check_private_key(SecretStr(value.strip()))
    except ValueError as error:
        raise ConfigError(f"invalid node config: {field}: ${env_name} is not a private key: {error}") from error
    assert checked is not None
    return checked.get_secret_value()


def format_validation_error(error: ValidationError, source: str) -> str:
    """Render a pydantic error as one line per field, each naming the field's dotted path."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        lines.append(f"  {location}: {message}")
    return f"invalid config {source}:\n" + "\n".join(lines)


def load_node_config(path: Path | str) -> NodeConfig:
    """Read and validate a node config file.

    A relative `data_dir` or `deployment_file` is taken relative to the
    config file's directory. Raises ConfigError naming each invalid field.
    """
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read node config {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"node config {path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"node config {path} must be a YAML mapping of fields, got {type(raw).__name__}")

    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, str(path))) from error

    base = path.resolve().parent
    updates: dict[str, Path] = {"data_dir": base / config.data_dir}
    if config.deployment_file is not None:
        updates["deployment_file"] = base / config.deployment_file
    return config.model_copy(update=updates)
