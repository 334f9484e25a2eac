"""Signed call requests, execution receipts, their Merkle trees and their store on disk."""

from cloudless.receipts.eip712 import (
    CallRequest,
    Domain,
    Receipt,
    hash_input,
    hash_output,
    receipt_digest,
    recover_receipt_signer,
    recover_request_signer,
    request_digest,
    sign_receipt,
    sign_request,
    verify_receipt,
    verify_request,
)
from cloudless.receipts.merkle import EMPTY_ROOT, NO_OPENING, LeafOpening, ReceiptMerkleTree, leaf_hash, verify_proof
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.receipts.store import EpochSummary, ReceiptStore

__all__ = [
    "EMPTY_ROOT",
    "CallRequest",
    "Domain",
    "EpochSummary",
    "LeafOpening",
    "NO_OPENING",
    "Receipt",
    "ReceiptMerkleTree",
    "ReceiptStore",
    "SignedCallRequest",
    "SignedReceipt",
    "hash_input",
    "hash_output",
    "leaf_hash",
    "receipt_digest",
    "recover_receipt_signer",
    "recover_request_signer",
    "request_digest",
    "sign_receipt",
    "sign_request",
    "verify_proof",
    "verify_receipt",
    "verify_request",
]
