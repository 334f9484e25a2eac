"""EIP-712 typed data for call requests and execution receipts.

The digests here equal `hashCallRequest` and `hashReceipt` of the Solidity
`ExecutionReceipts` contract, and signer recovery follows OpenZeppelin's
`ECDSA.recover`: only 65-byte `r || s || v` signatures with `v` in {27, 28}
and `s` in the lower half of the curve order are accepted.

Digests, signing and recovery run in `cloudless.receipts.fast`, which gives
the same bytes as eth_abi and eth_account but verifies about four times and
signs about ten times as many receipts per second (`make bench-proofs`).
The `struct_hash` methods keep the eth_abi encoding as the reference.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from cloudless.exceptions import InvalidSignatureError, ReceiptError, RequestExpiredError

__all__ = [
    "APP_CID_LENGTH",
    "CALL_REQUEST_TYPE",
    "CALL_REQUEST_TYPEHASH",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "PrivateKeyLike",
    "RECEIPT_TYPE",
    "RECEIPT_TYPEHASH",
    "SIGNATURE_LENGTH",
    "CallRequest",
    "Domain",
    "Receipt",
    "hash_input",
    "hash_output",
    "normalize_address",
    "receipt_digest",
    "receipt_typed_data",
    "recover_receipt_signer",
    "recover_request_signer",
    "request_digest",
    "request_typed_data",
    "sign_receipt",
    "sign_request",
    "verify_receipt",
    "verify_request",
]

DOMAIN_NAME: Final = "Cloudless"
DOMAIN_VERSION: Final = "1"

CALL_REQUEST_TYPE: Final = (
    "CallRequest(uint256 dealId,string functionName,bytes32 inputHash,uint256 nonce,uint256 deadline)"
)
RECEIPT_TYPE: Final = (
    "Receipt(uint256 workerId,bytes32 requestHash,bytes appCid,bytes32 outputHash,"
    "uint64 fuelUsed,uint64 epoch,uint64 sequence)"
)
CALL_REQUEST_TYPEHASH: Final = keccak(CALL_REQUEST_TYPE.encode())
RECEIPT_TYPEHASH: Final = keccak(RECEIPT_TYPE.encode())
_DOMAIN_TYPEHASH: Final = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)

# Binary CIDv1 with a one-byte codec and a sha2-256 multihash:
# 0x01 (version), codec, 0x12 (sha2-256), 0x20 (32-byte length), 32-byte digest.
APP_CID_LENGTH: Final = 36
_CID_V1: Final = 0x01
_SHA2_256_MULTIHASH_PREFIX: Final = b"\x12\x20"
_HEX_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")

SIGNATURE_LENGTH: Final = 65

PrivateKeyLike = bytes | str
"""A 32-byte secp256k1 private key, as bytes or as a 0x-prefixed hex string."""

_EIP712_DOMAIN_FIELDS: Final = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CALL_REQUEST_FIELDS: Final = [
    {"name": "dealId", "type": "uint256"},
    {"name": "functionName", "type": "string"},
    {"name": "inputHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_RECEIPT_FIELDS: Final = [
    {"name": "workerId", "type": "uint256"},
    {"name": "requestHash", "type": "bytes32"},
    {"name": "appCid", "type": "bytes"},
    {"name": "outputHash", "type": "bytes32"},
    {"name": "fuelUsed", "type": "uint64"},
    {"name": "epoch", "type": "uint64"},
    {"name": "sequence", "type": "uint64"},
]


def _check_uint(field: str, value: object, bits: int) -> None:
    # bool is a subclass of int, but True is never a meaningful id or counter.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReceiptError(f"{field} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value < 2**bits:
        raise ReceiptError(f"{field} must fit in uint{bits} (0 to 2**{bits} - 1), got {value}")


def _check_bytes32(field: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        actual = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ReceiptError(f"{field} must be 32 bytes (a keccak256 hash), got {actual}")


def _check_app_cid(value: object) -> None:
    if not isinstance(value, bytes):
        raise ReceiptError(f"app_cid must be bytes of a binary CIDv1, got {type(value).__name__}")
    if (
        len(value) != APP_CID_LENGTH
        or value[0] != _CID_V1
        or value[2:4] != _SHA2_256_MULTIHASH_PREFIX
    ):
        raise ReceiptError(
            f"app_cid must be a {APP_CID_LENGTH}-byte binary CIDv1 with a sha2-256 multihash "
            f"(0x01, codec, 0x12, 0x20, digest), got 0x{value.hex()}; "
            "decode the base32 'b...' text form to bytes first"
        )


def normalize_address(value: object, field: str = "address") -> str:
    """Return `value` as an EIP-55 checksum address.

    Accepts 0x and 40 hex digits, all in one case or with a valid checksum, and
    raises ReceiptError naming `field` otherwise.
    """
    if not isinstance(value, str) or _HEX_ADDRESS.fullmatch(value) is None:
        raise ReceiptError(f"{field} must be 0x and 40 hex digits, got {value!r}")
    checksummed = _checksum_address(value)
    digits = value[2:]
    mixed_case = digits != digits.lower() and digits != digits.upper()
    if mixed_case and value != checksummed:
        raise ReceiptError(
            f"{field} {value!r} has an invalid EIP-55 checksum; "
            f"check for a typo, or pass it in lower case as {value.lower()!r}"
        )
    return checksummed


# Receipts name few distinct addresses (peer signers, callers, contracts), and
# an EIP-55 checksum costs a keccak256, so recent results stay cached.
@functools.lru_cache(maxsize=1024)
def _checksum_address(value: str) -> str:
    return _fast.checksum_address(bytes.fromhex(value[2:]))


def hash_input(data: bytes) -> bytes:
    """Return the `inputHash` of a call: keccak256 of its input bytes."""
    return keccak(data)


def hash_output(data: bytes) -> bytes:
    """Return the `outputHash` of a receipt: keccak256 of the output bytes (or of the error JSON)."""
    return keccak(data)


@dataclass(frozen=True, slots=True)
class Domain:
    """EIP-712 domain: name "Cloudless", version "1", the chain id and the DealManager address.

    `verifying_contract` is stored in EIP-55 checksum form whatever case it is given in.
    """

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        _check_uint("chain_id", self.chain_id, 256)
        checksummed = normalize_address(self.verifying_contract, "verifying_contract")
        object.__setattr__(self, "verifying_contract", checksummed)

    def separator(self) -> bytes:
        """Compute the EIP-712 domain separator, as OpenZeppelin's `_domainSeparatorV4` does."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(DOMAIN_NAME.encode()),
                    keccak(DOMAIN_VERSION.encode()),
                    self.chain_id,
                    self.verifying_contract,
                ],
            )
        )

    def typed_data(self) -> dict[str, Any]:
        """Return the `domain` member of an `eth_signTypedData_v4` payload."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A function call that a caller signs: which deal, which function, which input, until when.

    `deadline` is in unix seconds. `nonce` lets a caller send the same call twice.
    """

    deal_id: int
    function_name: str
    input_hash: bytes
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        _check_uint("deal_id", self.deal_id, 256)
        if not isinstance(self.function_name, str):
            raise ReceiptError(
                f"function_name must be a str, got {type(self.function_name).__name__}"
            )
        try:
            self.function_name.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ReceiptError(
                f"function_name {self.function_name!r} is not valid UTF-8 text: {error}"
            ) from error
        _check_bytes32("input_hash", self.input_hash)
        _check_uint("nonce", self.nonce, 256)
        _check_uint("deadline", self.deadline, 256)

    @classmethod
    def for_input(
        cls, *, deal_id: int, function_name: str, input: bytes, nonce: int, deadline: int
    ) -> CallRequest:
        """Build a request whose `input_hash` is keccak256 of `input`."""
        return cls(
            deal_id=deal_id,
            function_name=function_name,
            input_hash=hash_input(input),
            nonce=nonce,
            deadline=deadline,
        )

    def struct_hash(self) -> bytes:
        """Compute the EIP-712 `hashStruct` of this request."""
        return keccak(
            abi_encode(
                ["bytes32", "uint256", "bytes32", "bytes32", "uint256", "uint256"],
                [
                    CALL_REQUEST_TYPEHASH,
                    self.deal_id,
                    keccak(self.function_name.encode("utf-8")),
                    self.input_hash,
                    self.nonce,
                    self.deadline,
                ],
            )
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    """Attestation by a worker's peer signer that it ran one call and what the call returned.

    `request_hash` is the EIP-712 digest of the `CallRequest`, `output_hash` is
    keccak256 of the output bytes, and `sequence` counts a worker's receipts from 0.
    """

    worker_id: int
    request_hash: bytes
    app_cid: bytes
    output_hash: bytes
    fuel_used: int
    epoch: int
    sequence: int

    def __post_init__(self) -> None:
        _check_uint("worker_id", self.worker_id, 256)
        _check_bytes32("request_hash", self.request_hash)
        _check_app_cid(self.app_cid)
        _check_bytes32("output_hash", self.output_hash)
        _check_uint("fuel_used", self.fuel_used, 64)
        _check_uint("epoch", self.epoch, 64)
        _check_uint("sequence", self.sequence, 64)

    def struct_hash(self) -> bytes:
        """Compute the EIP-712 `hashStruct` of this receipt."""
        return keccak(
            abi_encode(
                ["bytes32", "uint256", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint64"],
                [
                    RECEIPT_TYPEHASH,
                    self.worker_id,
                    self.request_hash,
                    keccak(self.app_cid),
                    self.output_hash,
                    self.fuel_used,
                    self.epoch,
                    self.sequence,
                ],
            )
        )


def request_digest(request: CallRequest, domain: Domain) -> bytes:
    """Compute the EIP-712 digest of `request`, which the caller signs and receipts name."""
    return _fast.request_digest_fast(request, domain)


def receipt_digest(receipt: Receipt, domain: Domain) -> bytes:
    """Compute the EIP-712 digest of `receipt`, which the peer signer signs and Merkle leaves hash."""
    return _fast.receipt_digest_fast(receipt, domain)


def request_typed_data(request: CallRequest, domain: Domain) -> dict[str, Any]:
    """Return `request` as an `eth_signTypedData_v4` payload, for wallets and `encode_typed_data`.

    Integers stay ints and bytes become 0x-prefixed hex strings.
    """
    return {
        "types": {"EIP712Domain": _EIP712_DOMAIN_FIELDS, "CallRequest": _CALL_REQUEST_FIELDS},
        "primaryType": "CallRequest",
        "domain": domain.typed_data(),
        "message": {
            "dealId": request.deal_id,
            "functionName": request.function_name,
            "inputHash": "0x" + request.input_hash.hex(),
            "nonce": request.nonce,
            "deadline": request.deadline,
        },
    }


def receipt_typed_data(receipt: Receipt, domain: Domain) -> dict[str, Any]:
    """Return `receipt` as an `eth_signTypedData_v4` payload, for wallets and `encode_typed_data`."""
    return {
        "types": {"EIP712Domain": _EIP712_DOMAIN_FIELDS, "Receipt": _RECEIPT_FIELDS},
        "primaryType": "Receipt",
        "domain": domain.typed_data(),
        "message": {
            "workerId": receipt.worker_id,
            "requestHash": "0x" + receipt.request_hash.hex(),
            "appCid": "0x" + receipt.app_cid.hex(),
            "outputHash": "0x" + receipt.output_hash.hex(),
            "fuelUsed": receipt.fuel_used,
            "epoch": receipt.epoch,
            "sequence": receipt.sequence,
        },
    }


def _sign_digest(digest: bytes, private_key: PrivateKeyLike) -> bytes:
    # A deterministic (RFC 6979), low-s signature with v in {27, 28}, the form
    # that ECDSA.recover accepts, byte for byte eth_account's. Signing the raw
    # hash is right here because the digest is already EIP-712 domain-separated.
    return _fast.sign_digest(digest, private_key)


def sign_request(request: CallRequest, private_key: PrivateKeyLike, domain: Domain) -> bytes:
    """Sign `request` under `domain` and return the 65-byte `r || s || v` signature."""
    return _sign_digest(request_digest(request, domain), private_key)


def sign_receipt(receipt: Receipt, private_key: PrivateKeyLike, domain: Domain) -> bytes:
    """Sign `receipt` under `domain` and return the 65-byte `r || s || v` signature."""
    return _sign_digest(receipt_digest(receipt, domain), private_key)


def _recover_digest_signer(digest: bytes, signature: bytes) -> str:
    return _fast.recover_signer(digest, signature)


def recover_request_signer(request: CallRequest, signature: bytes, domain: Domain) -> str:
    """Recover the checksum address that signed `request` under `domain`.

    Raises InvalidSignatureError when the signature is malformed. A well-formed
    signature by another key, or over other data, recovers some other address.
    """
    return _recover_digest_signer(request_digest(request, domain), signature)


def recover_receipt_signer(receipt: Receipt, signature: bytes, domain: Domain) -> str:
    """Recover the checksum address that signed `receipt` under `domain`.

    Raises InvalidSignatureError when the signature is malformed.
    """
    return _recover_digest_signer(receipt_digest(receipt, domain), signature)


def _check_signer(message_type: str, recovered: str, expected_signer: str | None) -> None:
    if expected_signer is None:
        return
    expected = normalize_address(expected_signer, "expected_signer")
    if recovered != expected:
        raise InvalidSignatureError(
            f"{message_type} signature was made by {recovered}, expected {expected}; "
            "check the signing key, the chain id and the verifying contract"
        )


def verify_request(
    request: CallRequest,
    signature: bytes,
    domain: Domain,
    *,
    expected_signer: str | None = None,
    now: int,
) -> str:
    """Check that `request` has not expired and is signed, and return the signer's address.

    A request is valid up to and including second `deadline`. Raises
    RequestExpiredError when `now` is past the deadline, and InvalidSignatureError
    when the signature is malformed or, if `expected_signer` is given, made by
    another address.
    """
    if now > request.deadline:
        raise RequestExpiredError(
            f"call request for deal {request.deal_id} with nonce {request.nonce} expired at "
            f"deadline {request.deadline}, {now - request.deadline} s before now ({now}); "
            "sign a new request with a later deadline"
        )
    recovered = recover_request_signer(request, signature, domain)
    _check_signer("call request", recovered, expected_signer)
    return recovered


def verify_receipt(
    receipt: Receipt,
    signature: bytes,
    domain: Domain,
    *,
    expected_signer: str | None = None,
) -> str:
    """Check the signature of `receipt` and return the signer's address.

    Raises InvalidSignatureError when the signature is malformed or, if
    `expected_signer` is given, made by another address.
    """
    recovered = recover_receipt_signer(receipt, signature, domain)
    _check_signer("receipt", recovered, expected_signer)
    return recovered


# Imported last because `fast` builds on the constants and `Domain` above.
from cloudless.receipts import fast as _fast  # noqa: E402
