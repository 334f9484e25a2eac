"""A web3 connection with one signing account, custom-error decoding and event reads.

Every contract call of Cloudless goes through `ChainClient.transact` or
`ChainClient.call`, so a revert with a known custom error surfaces as a
`ContractRevertError` that names the error and its arguments. Any other
revert raises `ChainError`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from cloudless.chain.artifacts import load_artifact
from cloudless.chain.deployment import Deployment
from cloudless.exceptions import ChainError, ConfigError, ContractRevertError, TransactionFailedError

__all__ = ["ChainClient", "ERROR_HINTS", "check_deployed", "connect_web3"]

logger = logging.getLogger("cloudless.chain")

# Contracts whose custom errors the client decodes.
_ERROR_SOURCES = ("Market", "DealManager", "ChallengeManager", "FLT", "TestUSDC", "Faucet")

# How to fix the most common reverts, shown after the decoded error.
ERROR_HINTS: dict[str, str] = {
    "DealNotPeerSigner": "submit the proof from the peer signer's key that the offer registered",
    "DealNoWorkerPlaced": "no candidate peer fits the deal; raise the price cap or relax its requirements",
    "DealDepositBelowReserve": "deposit at least the reserve: cap x CUs per worker x target workers x reserve epochs "
    "(amounts in token base units: 1 USDC = 1000000)",
    "DealWithdrawBelowReserve": "withdraw at most the amount that `deal status` shows as withdrawable "
    "(amounts in token base units: 1 USDC = 1000000)",
    "DealInvalidParams": "the named deal field is out of range; see `cloudless deal create --help` for the limits",
    "DealZeroAmount": "pass an amount above 0",
    "DealNotFound": "check the deal id with `cloudless deal status`",
    "DealNotOwner": "only the deal's owner may do this; sign with the owner's key",
    "DealEnded": "the deal has ended or was stopped; create a new deal",
    "DealTokenNotAccepted": "pay with the deployment's USDC token",
    "MarketInsufficientStake": "stake more FLT with `stake` before offering more CUs",
    "MarketProviderNotRegistered": "register the provider first",
    "MarketSignerInUse": "give every peer its own signer key",
    "ERC20InsufficientAllowance": "approve the contract for the amount first",
    "ERC20InsufficientBalance": "fund the account with enough tokens first (`ape run fund`)",
    "OwnableUnauthorizedAccount": "only the contract's owner may do this; for the test tokens that is the deployer, "
    "so sign with its key (account 0 on a local chain)",
    "FaucetCooldownActive": "retry at unix time nextDripAt (block time), or name another recipient",
    "FaucetEmpty": "the faucet owner must transfer or mint more of that token to the faucet",
}


def connect_web3(rpc_url: str, *, timeout_seconds: float = 30.0) -> Web3:
    """Connect to an HTTP JSON-RPC endpoint, raising ChainError if it does not respond."""
    if not rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"invalid RPC URL {rpc_url!r}: use http://HOST:PORT, e.g. http://127.0.0.1:8545")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds}))
    if not w3.is_connected():
        raise ChainError(
            f"no JSON-RPC node responds at {rpc_url}: start anvil (`anvil --block-time 1`) or fix the URL "
            "(--rpc-url, $CLOUDLESS_RPC_URL, or rpc_url in a node config)"
        )
    return w3


def check_deployed(w3: Web3, deployment: Deployment, rpc_url: str) -> None:
    """Raise ConfigError if the deployment's DealManager has no code on the connected chain."""
    address = deployment.address("DealManager")
    if not w3.eth.get_code(to_checksum_address(address)):
        raise ConfigError(
            f"no contract at {address} (the DealManager of deployments/{deployment.chain_id}.json) on {rpc_url}: "
            "the chain was reset or never deployed to; run `ape run deploy` (or `cloudless deploy`) against it"
        )


def _load_key(private_key: str) -> LocalAccount:
    try:
        return Account.from_key(private_key)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"invalid private key ({error}): set CLOUDLESS_PRIVATE_KEY to 64 hex digits, or unset it to use --account-index"
        ) from error


class ChainClient:
    """One web3 connection plus an optional signing account.

    `transact` is safe to call from several threads: a lock serializes nonce
    assignment and sending, and the receipt wait happens outside the lock.
    """

    def __init__(self, w3: Web3, deployment: Deployment | None = None, private_key: str | None = None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account: LocalAccount | None = _load_key(private_key) if private_key else None
        self._send_lock = threading.Lock()
        self._contracts: dict[str, Contract] = {}
        self._errors = self._build_error_table()

    @classmethod
    def connect(cls, rpc_url: str, deployment: Deployment | None = None, private_key: str | None = None) -> ChainClient:
        """Connect to `rpc_url` and check that it serves the deployment's chain."""
        w3 = connect_web3(rpc_url)
        if deployment is not None and w3.eth.chain_id != deployment.chain_id:
            raise ConfigError(
                f"the node at {rpc_url} serves chain {w3.eth.chain_id}, but the deployment is for chain "
                f"{deployment.chain_id}: pass the matching --rpc-url or redeploy"
            )
        if deployment is not None:
            check_deployed(w3, deployment, rpc_url)
        return cls(w3, deployment, private_key)

    def with_key(self, private_key: str) -> ChainClient:
        """Return a client on the same connection that signs with `private_key`."""
        return ChainClient(self.w3, self.deployment, private_key)

    @property
    def address(self) -> str:
        """Address of the signing account."""
        if self.account is None:
            raise ConfigError("this client has no signing key: pass --private-key or set CLOUDLESS_PRIVATE_KEY")
        return str(self.account.address)

    # ------------------------------------------------------------ contracts

    def contract(self, name: str, address: str | None = None) -> Contract:
        """Return a web3 contract for `name` at `address` (default: the deployment's, cached)."""
        if address is not None:
            return self._make_contract(name, address)

        if name not in self._contracts:
            if self.deployment is None:
                raise ConfigError(f"no deployment loaded, so the address of {name} is unknown")
            self._contracts[name] = self._make_contract(name, self.deployment.address(name))
        return self._contracts[name]

    def _make_contract(self, name: str, address: str) -> Contract:
        artifact = load_artifact(name)
        return self.w3.eth.contract(address=to_checksum_address(address), abi=artifact.abi, decode_tuples=True)

    # -------------------------------------------------------------- calls

    def call(self, function: Any) -> Any:
        """Run a view function, decoding a custom-error revert."""
        try:
            return function.call()
        except (ContractCustomError, ContractLogicError) as error:
            raise self.decode_revert(error) from error

    def transact(self, function: Any, *, description: str = "") -> TxReceipt:
        """Sign and send a contract call, wait for it to be mined, and return the receipt.

        The call is simulated first (gas estimation), so a revert raises
        ContractRevertError before anything is sent.
        """
        sender = self.address
        label = description or function.fn_name
        with self._send_lock:
            try:
                gas = function.estimate_gas({"from": sender})
            except (ContractCustomError, ContractLogicError) as error:
                raise self.decode_revert(error) from error

            transaction = function.build_transaction(
                {
                    "from": sender,
                    "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
                    # Estimates can fall short when the state changes between
                    # estimation and mining (a new epoch, a settled deal).
                    "gas": gas * 13 // 10 + 50_000,
                    "chainId": self.w3.eth.chain_id,
                }
            )
            assert self.account is not None
            signed = self.account.sign_transaction(transaction)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)

        logger.debug("sent %s from %s: %s", label, sender, tx_hash.hex())
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.2)
        except TimeExhausted as error:
            raise TransactionFailedError(f"{label} ({tx_hash.hex()}) was not mined within 120 s: is the node mining?") from error
        if receipt["status"] != 1:
            raise TransactionFailedError(f"{label} ({tx_hash.hex()}) was mined but reverted")
        return receipt

    def send_value(self, to: str, amount_wei: int) -> TxReceipt:
        """Send plain ETH, e.g. gas money for a peer signer."""
        sender = self.address
        with self._send_lock:
            transaction = {
                "from": sender,
                "to": to_checksum_address(to),
                "value": amount_wei,
                "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
                "gas": 21_000,
                "chainId": self.w3.eth.chain_id,
                "maxFeePerGas": self.w3.eth.gas_price * 2 + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
            assert self.account is not None
            tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(transaction).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.2)
        if receipt["status"] != 1:
            raise TransactionFailedError(f"sending {amount_wei} wei to {to} failed ({tx_hash.hex()})")
        return receipt

    # ------------------------------------------------------------ errors

    def _build_error_table(self) -> dict[bytes, tuple[str, list[str], list[str]]]:
        table: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for source in _ERROR_SOURCES:
            try:
                abi = load_artifact(source).abi
            except ConfigError:
                continue
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = [_abi_type(item) for item in entry["inputs"]]
                names = [item["name"] for item in entry["inputs"]]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                table[selector] = (entry["name"], names, types)
        return table

    def decode_revert(self, error: Exception) -> ChainError:
        """Turn a web3 revert into ContractRevertError when the data names a known custom error."""
        data = getattr(error, "data", None)
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            raw = bytes.fromhex(data[2:])
            known = self._errors.get(raw[:4])
            if known is not None:
                name, arg_names, arg_types = known
                values = abi_decode(arg_types, raw[4:])
                arguments = {arg: _plain(value) for arg, value in zip(arg_names, values)}
                return ContractRevertError(name, arguments, ERROR_HINTS.get(name, ""))
        return ChainError(f"contract call reverted: {error}")

    # ------------------------------------------------------------ events

    def get_logs(self, event: Any, from_block: int, to_block: int | str = "latest", **filters: Any) -> list[Any]:
        """Return the logs of `event` in a block range, optionally filtered by indexed arguments."""
        return list(event.get_logs(from_block=from_block, to_block=to_block, argument_filters=filters or None))


def _abi_type(item: dict[str, Any]) -> str:
    """Canonical ABI type of one input, expanding tuples."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in item["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _plain(value: Any) -> Any:
    """Make decoded ABI values readable in messages (bytes as 0x-hex)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value
