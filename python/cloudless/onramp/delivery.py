"""A purchase of the mock on-ramp: simulate the card payment, then mint test USDC to the buyer.

Delivery is at most once per order id and order log. The mint transaction is
signed and written to the order log before it is sent. So a run that stops
between sending and recording can be repeated with the same order id, and the
repeat looks the stored transaction up instead of minting again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

from cloudless.chain.client import ChainClient, check_deployed, connect_web3
from cloudless.chain.deployment import load_deployment
from cloudless.chain.session import Session
from cloudless.exceptions import ConfigError, TransactionFailedError
from cloudless.onramp.networks import check_chain_allowed
from cloudless.onramp.orders import OrderRecord, OrderStatus, OrderStore, utc_now
from cloudless.onramp.quote import quote

__all__ = ["PurchaseResult", "buy"]

logger = logging.getLogger("cloudless.onramp")

_RECEIPT_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class PurchaseResult:
    """The order's last record, and whether this run saw its mint land (False if the log already showed it delivered)."""

    order: OrderRecord
    delivered_now: bool


def buy(
    *,
    rpc_url: str,
    private_key: str,
    data_dir: Path,
    order_id: str,
    fiat_amount: Decimal,
    currency: str,
    recipient: str,
) -> PurchaseResult:
    """Deliver test USDC for one order, or return the earlier delivery of the same order id.

    The inputs must come through the parse functions of `cloudless.onramp.quote`.
    Raises UnsupportedChainError before anything else touches the chain when
    the node serves a chain outside ALLOWED_CHAINS.
    """
    w3 = connect_web3(rpc_url)
    check_chain_allowed(w3.eth.chain_id)
    deployment = load_deployment(w3.eth.chain_id)
    check_deployed(w3, deployment, rpc_url)
    session = Session(ChainClient(w3, deployment, private_key))

    price = quote(fiat_amount, currency)
    requested = OrderRecord(
        order_id=order_id,
        status=OrderStatus.PENDING,
        recorded_at=utc_now(),
        chain_id=session.deployment.chain_id,
        usdc_token=session.usdc.address,
        recipient=recipient,
        currency=currency,
        fiat_amount=str(price.fiat_amount),
        fee=str(price.fee),
        rate=str(price.rate),
        usdc_amount=price.usdc_amount,
        payment_reference=_payment_reference(order_id),
        minter=session.address,
    )

    store = OrderStore(data_dir)
    with store.locked():
        earlier = store.latest(order_id)
        if earlier is not None:
            if not earlier.same_order(requested):
                raise ConfigError(
                    f"order id {order_id!r} was already used for {earlier.fiat_amount} {earlier.currency} to "
                    f"{earlier.recipient} on chain {earlier.chain_id}: pass a new --order-id for a different order"
                )
            if earlier.status is OrderStatus.DELIVERED:
                return PurchaseResult(order=earlier, delivered_now=False)
            if earlier.status is OrderStatus.PENDING:
                resolved = _finish_pending(session.client, store, earlier)
                if resolved.status is OrderStatus.DELIVERED:
                    return PurchaseResult(order=resolved, delivered_now=True)
            # A failed attempt minted nothing, so this run tries again.

        # The duplicate-order and minter checks come before the capture, so an
        # order that they reject is never charged.
        _check_minter(session)
        _simulate_card_payment(requested)
        pending = _sign_mint(session, requested)
        store.append(pending)
        _send_first(w3, store, pending)
        final = _await_mint(w3, store, pending)

    if final.status is not OrderStatus.DELIVERED:
        raise TransactionFailedError(f"order {order_id}: the mint of test USDC failed: {final.error}")
    return PurchaseResult(order=final, delivered_now=True)


def _payment_reference(order_id: str) -> str:
    """Return the id of an order's simulated card payment.

    The reference is derived from the order id, so a repeated order gets the
    same one, as a real gateway's idempotency key would.
    """
    digest = hashlib.sha256(order_id.encode()).hexdigest()[:16]
    return f"mockpay_{digest}"


def _simulate_card_payment(order: OrderRecord) -> None:
    """Stand in for a card gateway's capture of `order.payment_reference`, which always succeeds."""
    logger.info(
        "mock card payment %s of %s %s captured for order %s (no real payment)",
        order.payment_reference,
        order.fiat_amount,
        order.currency,
        order.order_id,
    )


def _check_minter(session: Session) -> None:
    owner = str(session.client.call(session.usdc.contract.functions.owner()))
    if owner.lower() != session.address.lower():
        raise ConfigError(
            f"the signing key ({session.address}) does not own TestUSDC at {session.usdc.address} (owner {owner}), "
            "so it cannot mint: set CLOUDLESS_PRIVATE_KEY to the deployer's key or pass its --account-index"
        )


def _sign_mint(session: Session, order: OrderRecord) -> OrderRecord:
    """Return `order` with a signed mint transaction, its hash and nonce; nothing is sent yet."""
    client = session.client
    function = session.usdc.contract.functions.mint(order.recipient, order.usdc_amount)
    try:
        gas = function.estimate_gas({"from": client.address})
    except (ContractCustomError, ContractLogicError) as error:
        raise client.decode_revert(error) from error

    nonce = client.w3.eth.get_transaction_count(client.address, "pending")
    transaction = function.build_transaction(
        {"from": client.address, "nonce": nonce, "gas": gas * 13 // 10 + 50_000, "chainId": client.w3.eth.chain_id}
    )
    assert client.account is not None
    signed = client.account.sign_transaction(transaction)
    return order.model_copy(
        update={
            "recorded_at": utc_now(),
            "tx_hash": "0x" + bytes(signed.hash).hex(),
            "nonce": nonce,
            "raw_transaction": "0x" + bytes(signed.raw_transaction).hex(),
        }
    )


def _send_first(w3: Web3, store: OrderStore, pending: OrderRecord) -> None:
    """Send a newly signed mint; if the node rejects it, record the order as failed and raise."""
    try:
        w3.eth.send_raw_transaction(pending.raw_transaction or "")
    except Web3RPCError as error:
        # A rejected transaction is in no pool, and its signed bytes exist only in
        # the order log, so it is not mined unless someone re-sends them by hand.
        failed = pending.model_copy(
            update={"status": OrderStatus.FAILED, "recorded_at": utc_now(), "error": f"the node rejected the mint: {error}"}
        )
        store.append(failed)
        raise TransactionFailedError(
            f"order {pending.order_id}: the node rejected the mint of test USDC ({error}); nothing was delivered, "
            "so the same command may be repeated"
        ) from error


def _finish_pending(client: ChainClient, store: OrderStore, pending: OrderRecord) -> OrderRecord:
    """Settle an order whose earlier run stopped after recording its signed mint.

    Mined: record the outcome. Not mined, and the minter's nonce has moved
    past it: another transaction took the nonce, so it can never be mined, and
    the order is marked failed. Otherwise re-send the same signed transaction,
    which the chain accepts at most once.
    """
    w3 = client.w3
    assert pending.tx_hash is not None and pending.nonce is not None
    try:
        w3.eth.get_transaction_receipt(pending.tx_hash)
    except TransactionNotFound:
        if w3.eth.get_transaction_count(Web3.to_checksum_address(pending.minter), "latest") > pending.nonce:
            failed = pending.model_copy(
                update={
                    "status": OrderStatus.FAILED,
                    "recorded_at": utc_now(),
                    "error": f"transaction {pending.tx_hash} was never mined and its nonce {pending.nonce} is used",
                }
            )
            store.append(failed)
            return failed
        logger.info("order %s: re-sending its recorded mint %s", pending.order_id, pending.tx_hash)
        try:
            w3.eth.send_raw_transaction(pending.raw_transaction or "")
        except Web3RPCError as error:
            # The node may still hold it in its pool ("already known"); the receipt wait settles it.
            logger.info("order %s: re-send of %s was rejected (%s)", pending.order_id, pending.tx_hash, error)
    return _await_mint(w3, store, pending)


def _await_mint(w3: Web3, store: OrderStore, pending: OrderRecord) -> OrderRecord:
    """Wait for the recorded mint, append its outcome to the log and return it."""
    try:
        receipt = w3.eth.wait_for_transaction_receipt(pending.tx_hash, timeout=_RECEIPT_TIMEOUT_SECONDS, poll_latency=0.2)
    except TimeExhausted as error:
        raise TransactionFailedError(
            f"order {pending.order_id}: mint {pending.tx_hash} was not mined within {_RECEIPT_TIMEOUT_SECONDS} s; "
            "the order stays pending: repeat the same command (same --order-id) once the node mines again"
        ) from error

    if receipt["status"] == 1:
        outcome = pending.model_copy(
            update={"status": OrderStatus.DELIVERED, "recorded_at": utc_now(), "block": int(receipt["blockNumber"])}
        )
        logger.info("order %s: delivered %d USDC base units to %s", pending.order_id, pending.usdc_amount, pending.recipient)
    else:
        outcome = pending.model_copy(
            update={
                "status": OrderStatus.FAILED,
                "recorded_at": utc_now(),
                "block": int(receipt["blockNumber"]),
                "error": f"transaction {pending.tx_hash} reverted",
            }
        )
    store.append(outcome)
    return outcome
