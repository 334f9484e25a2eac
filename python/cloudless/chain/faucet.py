"""Calls on the test token Faucet: drips of FLT and test USDC with a per-recipient cool-down."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import to_checksum_address
from web3.logs import DISCARD
from web3.types import TxReceipt

from cloudless.chain.client import ChainClient
from cloudless.exceptions import ConfigError

__all__ = ["DripResult", "FaucetClient", "FaucetSettings"]

logger = logging.getLogger("cloudless.chain")


@dataclass(frozen=True)
class DripResult:
    """Outcome of one `drip` transaction, from its `Dripped` event."""

    recipient: str
    flt_amount: int  # FLT wei
    usdc_amount: int  # USDC base units
    next_drip_at: int  # unix seconds (block time) from which the recipient may drip again
    tx_hash: str


@dataclass(frozen=True)
class FaucetSettings:
    """Drip amounts and cool-down that the Faucet's owner sets."""

    flt_amount: int  # FLT wei per drip
    usdc_amount: int  # USDC base units per drip
    cooldown: int  # seconds between two drips to one recipient


class FaucetClient:
    """Typed wrapper around the deployed Faucet."""

    def __init__(self, client: ChainClient) -> None:
        deployment = client.deployment
        if deployment is not None and "Faucet" not in deployment.contracts:
            raise ConfigError(
                f"the deployment of chain {deployment.chain_id} has no Faucet because it was recorded before the "
                "faucet existed: redeploy with `cloudless deploy` (or `ape run deploy`), or fund accounts with `ape run fund`"
            )
        self.client = client
        self.contract = client.contract("Faucet")

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def drip(self, recipient: str) -> DripResult:
        """Request one drip for `recipient`; the signer pays the gas.

        Raises ContractRevertError `FaucetCooldownActive` inside the cool-down
        and `FaucetEmpty` when the faucet holds too little of a token.
        """
        recipient = to_checksum_address(recipient)
        receipt = self.client.transact(self.contract.functions.drip(recipient), description="Faucet.drip")
        (event,) = self.contract.events.Dripped().process_receipt(receipt, errors=DISCARD)
        result = DripResult(
            recipient=str(event.args.recipient),
            flt_amount=int(event.args.fltAmount),
            usdc_amount=int(event.args.usdcAmount),
            next_drip_at=int(event.args.nextDripAt),
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        )
        logger.info(
            "faucet dripped %d FLT wei and %d USDC base units to %s; next drip at %d",
            result.flt_amount,
            result.usdc_amount,
            result.recipient,
            result.next_drip_at,
        )
        return result

    def next_drip_at(self, recipient: str) -> int:
        """Return the unix time (block time) from which `recipient` may drip, 0 if it never did."""
        return int(self.client.call(self.contract.functions.nextDripAt(to_checksum_address(recipient))))

    def settings(self) -> FaucetSettings:
        functions = self.contract.functions
        return FaucetSettings(
            flt_amount=int(self.client.call(functions.fltAmount())),
            usdc_amount=int(self.client.call(functions.usdcAmount())),
            cooldown=int(self.client.call(functions.cooldown())),
        )

    def owner(self) -> str:
        return str(self.client.call(self.contract.functions.owner()))

    # ------------------------------------------------------- owner only

    def set_drip_amounts(self, flt_amount: int, usdc_amount: int) -> TxReceipt:
        """Set FLT wei and USDC base units per drip (owner only)."""
        logger.info("setting faucet drip to %d FLT wei and %d USDC base units", flt_amount, usdc_amount)
        return self.client.transact(self.contract.functions.setDripAmounts(flt_amount, usdc_amount))

    def set_cooldown(self, seconds: int) -> TxReceipt:
        """Set the seconds between two drips to one recipient (owner only)."""
        logger.info("setting faucet cool-down to %d s", seconds)
        return self.client.transact(self.contract.functions.setCooldown(seconds))

    def withdraw(self, token: str, to: str, amount: int) -> TxReceipt:
        """Send `amount` base units of `token` from the faucet to `to` (owner only)."""
        logger.info("withdrawing %d base units of %s from the faucet to %s", amount, token, to)
        function = self.contract.functions.withdraw(to_checksum_address(token), to_checksum_address(to), amount)
        return self.client.transact(function)
