"""Gateway options, validated by pydantic; `cloudless gateway up` builds them from its flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from cloudless.chain.keys import anvil_account_key
from cloudless.exceptions import ConfigError
from cloudless.node.config import format_validation_error

__all__ = ["DEFAULT_CALLER_ACCOUNT_INDEX", "GatewayConfig"]

# Local test account that signs call requests when no key is configured.
DEFAULT_CALLER_ACCOUNT_INDEX = 8


class GatewayConfig(BaseModel):
    """Everything the gateway needs: chain access, the caller key, where to listen and where to keep packages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpc_url: str = "http://127.0.0.1:8545"
    # A deployment record to use in place of `deployments/<chain-id>.json`.
    deployment_file: Path | None = None
    # The key that signs call requests: caller_key, else $caller_key_env, else the test account.
    caller_key: SecretStr | None = None
    caller_key_env: str = "CLOUDLESS_PRIVATE_KEY"
    caller_account_index: Annotated[int, Field(ge=0, le=999)] = DEFAULT_CALLER_ACCOUNT_INDEX
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8600
    # Uploaded packages go to `packages/` and the evidence feed to `evidence.jsonl` here.
    data_dir: Path = Path(".cloudless/gateway")
    request_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    call_deadline_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    cache_ttl_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0
    # Provider address -> node URL, used before (or in place of) the endpoint on chain.
    endpoints: dict[str, str] = Field(default_factory=dict)

    @field_validator("rpc_url")
    @classmethod
    def _check_rpc_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for provider, url in value.items():
            if not is_address(provider):
                raise ValueError(f"key {provider!r} is not a provider address")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {url!r} of {provider} is not an http:// or https:// URL")
            checked[to_checksum_address(provider)] = url.rstrip("/")
        return checked

    @classmethod
    def from_options(
        cls, *, account_index: int | None = None, request_timeout: float | None = None, **fields: Any
    ) -> GatewayConfig:
        """Build the config from `cloudless gateway up` options; raises ConfigError naming each invalid option.

        `account_index` and `request_timeout` are the CLI's names for
        `caller_account_index` and `request_timeout_seconds`. Every other
        keyword is a field of this model.
        """
        if account_index is not None:
            fields["caller_account_index"] = account_index
        if request_timeout is not None:
            fields["request_timeout_seconds"] = request_timeout
        try:
            return cls(**fields)
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, "gateway options")) from error

    def resolve_caller_key(self) -> str:
        """Return the call-request signing key: `caller_key`, else `$caller_key_env`, else the test account."""
        if self.caller_key is not None:
            return self.caller_key.get_secret_value()
        from_env = os.environ.get(self.caller_key_env)
        if from_env:
            text = from_env.strip()
            digits = text.removeprefix("0x")
            if len(digits) != 64:
                raise ConfigError(f"${self.caller_key_env} is not a 32-byte hex private key ({len(digits)} hex digits)")
            return "0x" + digits
        return anvil_account_key(self.caller_account_index)
