"""Keys of the local test accounts (Anvil's and Ape's default mnemonic).

These keys are public knowledge; they are for a local chain only.
"""

from __future__ import annotations

import os
from functools import lru_cache

from eth_account import Account

from cloudless.exceptions import ConfigError

__all__ = ["TEST_MNEMONIC", "private_key_from_env_or_index", "anvil_account_key"]

TEST_MNEMONIC = "test test test test test test test test test test test junk"

Account.enable_unaudited_hdwallet_features()


@lru_cache(maxsize=64)
def anvil_account_key(index: int) -> str:
    """Return the 0x-hex private key of local test account `index` (m/44'/60'/0'/0/index)."""
    if not 0 <= index < 1000:
        raise ConfigError(f"invalid test account index {index}: use 0..999")
    account = Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def private_key_from_env_or_index(index: int | None, env_var: str = "CLOUDLESS_PRIVATE_KEY") -> str:
    """Return the key in `env_var` if set, else local test account `index`."""
    key = os.environ.get(env_var)
    if key:
        return key
    if index is None:
        raise ConfigError(f"no signing key: set {env_var} or pass --account-index for a local test account")
    return anvil_account_key(index)
