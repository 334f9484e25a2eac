"""The chains on which the mock on-ramp may mint test USDC.

The on-ramp takes no real payment, so it must never deliver tokens on a
network where tokens could pass for money. It runs on the local anvil and on
a few public testnets, whose tokens have no value by design.
"""

from __future__ import annotations

from cloudless.exceptions import UnsupportedChainError

__all__ = ["ALLOWED_CHAINS", "check_chain_allowed"]

ALLOWED_CHAINS: dict[int, str] = {
    31337: "local anvil",
    11155111: "Ethereum Sepolia testnet",
    84532: "Base Sepolia testnet",
    421614: "Arbitrum Sepolia testnet",
}


def check_chain_allowed(chain_id: int) -> None:
    """Raise UnsupportedChainError unless `chain_id` is in ALLOWED_CHAINS."""
    if chain_id in ALLOWED_CHAINS:
        return
    allowed = ", ".join(f"{known} ({name})" for known, name in ALLOWED_CHAINS.items())
    raise UnsupportedChainError(
        f"the on-ramp is a mock that takes no real payment, so it does not run on chain {chain_id}: "
        f"point --rpc-url at one of {allowed}",
        chain_id=chain_id,
    )
