"""The Python enums of the binding layer match the Solidity enums, name for name and in order."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

from cloudless.chain.types import AccessMode, BillingMode, DealStatus, SkipReason

INTERFACE = Path(__file__).resolve().parents[2] / "contracts" / "interfaces" / "IDealManager.sol"


def solidity_enum(name: str) -> list[str]:
    match = re.search(rf"enum {name} \{{(.*?)\}}", INTERFACE.read_text(), re.DOTALL)
    assert match, f"enum {name} not found in {INTERFACE}"
    return [member.strip() for member in match.group(1).split(",") if member.strip()]


def test_enums_match_solidity() -> None:
    cases: list[tuple[str, type[IntEnum]]] = [
        ("BillingMode", BillingMode),
        ("AccessMode", AccessMode),
        ("DealStatus", DealStatus),
        ("SkipReason", SkipReason),
    ]
    for name, python_enum in cases:
        expected = solidity_enum(name)
        assert [member.name for member in python_enum] == expected, name
        assert [member.value for member in python_enum] == list(range(len(expected))), name
