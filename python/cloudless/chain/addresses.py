"""Parsing of account addresses typed by users."""

from __future__ import annotations

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from cloudless.exceptions import ConfigError

__all__ = ["parse_address"]


def parse_address(text: str) -> str:
    """Return `text` as an EIP-55 checksummed address.

    All-lower-case and all-upper-case hex is accepted as it is. Mixed case must
    carry a correct checksum, because eth_utils 5 `is_address` does not check it
    and a mistyped letter would then go unnoticed.
    """
    if not text.startswith("0x") or not is_hex_address(text):
        raise ConfigError(f"invalid address {text!r}: use a 0x-prefixed 20-byte hex address")
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text):
        raise ConfigError(
            f"invalid address {text!r}: its mixed case breaks the EIP-55 checksum; check for a typo, "
            "or write it all in lower case"
        )
    return str(to_checksum_address(text))
