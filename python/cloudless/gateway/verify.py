"""Checks the gateway applies to every receipt before it trusts a worker's reply."""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_checksum_address

from cloudless.exceptions import InvalidSignatureError, ReceiptVerificationError
from cloudless.receipts.eip712 import Domain, hash_output
from cloudless.receipts.models import SignedReceipt

__all__ = ["ReceiptExpectation", "verify_call_receipt"]


@dataclass(frozen=True)
class ReceiptExpectation:
    """Fields that a receipt for one call must contain.

    `min_epoch` and `max_epoch` bound the epoch: the chain epoch before the
    call was sent (never below the worker's join epoch) and after the reply came.
    """

    request_hash: bytes
    worker_id: int
    app_cid: bytes
    signer: str  # the worker's peer signer on chain
    min_epoch: int
    max_epoch: int


def verify_call_receipt(receipt: SignedReceipt, output: bytes, expected: ReceiptExpectation, domain: Domain) -> None:
    """Check the receipt's signature, signer and fields against the call. Raises ReceiptVerificationError."""
    try:
        receipt.verify(domain)
    except InvalidSignatureError as error:
        raise ReceiptVerificationError(f"receipt signature is invalid: {error}") from error

    signer = to_checksum_address(expected.signer)
    if receipt.signer != signer:
        raise ReceiptVerificationError(
            f"receipt of worker {expected.worker_id} is signed by {receipt.signer}, "
            f"but the worker's peer signer on chain is {signer}"
        )
    if receipt.request_hash != expected.request_hash:
        raise ReceiptVerificationError(
            f"receipt names request 0x{receipt.request_hash.hex()}, but the call was 0x{expected.request_hash.hex()}"
        )
    if receipt.worker_id != expected.worker_id:
        raise ReceiptVerificationError(f"receipt is for worker {receipt.worker_id}, but the call went to worker {expected.worker_id}")
    if receipt.app_cid != expected.app_cid:
        raise ReceiptVerificationError(
            f"receipt names package 0x{receipt.app_cid.hex()}, but the deal runs 0x{expected.app_cid.hex()}"
        )
    actual_hash = hash_output(output)
    if receipt.output_hash != actual_hash:
        raise ReceiptVerificationError(
            f"receipt output hash 0x{receipt.output_hash.hex()} does not match the {len(output)} output bytes "
            f"returned (0x{actual_hash.hex()})"
        )
    if not expected.min_epoch <= receipt.epoch <= expected.max_epoch:
        raise ReceiptVerificationError(
            f"receipt epoch {receipt.epoch} is outside epochs {expected.min_epoch} to {expected.max_epoch} "
            "of the call"
        )
