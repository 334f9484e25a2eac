"""Fast EIP-712 digests, signing and signer recovery for call requests and receipts.

The results equal those of `cloudless.receipts.eip712`, which delegates its
digest, signing and recovery steps here:

- Digests concatenate the 32-byte words of `abi.encode` directly instead of
  calling eth_abi, and cache the domain separator per `Domain` and the
  keccak256 of app CIDs and function names.
- Signing and recovery call libsecp256k1 through coincurve (21.0.0 in
  requirements.lock) without eth_keys' objects. Signatures are RFC 6979
  deterministic and low-s, so they are byte for byte those of eth_account.
- keccak256 comes from safe-pysha3's C extension when it is installed (it is in
  requirements.lock), which takes about 1 µs per short input against about
  6 µs for eth_hash's pycryptodome backend. Without it, pycryptodome is used.

Signatures follow the rules of OpenZeppelin's `ECDSA.recover`, which the
contracts use: 65 bytes `r || s || v`, `v` 27 or 28, `0 < r < n` and
`0 < s <= n / 2`. eth_account 0.13 and eth_keys 0.8 are laxer: they also
recover signatures with `v` 0, 1 or 35 and more, and high-s signatures, to the
same address. A signature that passes there but not here would make a
contract revert, so here it raises InvalidSignatureError, or counts as
invalid in `verify_receipts`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Final, Protocol, cast

import coincurve

from cloudless.exceptions import InvalidSignatureError, ReceiptError
from cloudless.receipts.eip712 import (
    CALL_REQUEST_TYPEHASH,
    RECEIPT_TYPEHASH,
    SIGNATURE_LENGTH,
    Domain,
    PrivateKeyLike,
    normalize_address,
)

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """Compute keccak256 of `data` (safe-pysha3 backend)."""
        return _keccak_256(data).digest()

    KECCAK_BACKEND: Final = "safe-pysha3"
except ImportError:
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def keccak(data: bytes) -> bytes:
        """Compute keccak256 of `data` (pycryptodome backend)."""
        return _pycryptodome_keccak.new(digest_bits=256, data=data).digest()

    KECCAK_BACKEND: Final = "pycryptodome"  # type: ignore[misc]

__all__ = [
    "KECCAK_BACKEND",
    "address_of_key",
    "checksum_address",
    "keccak",
    "receipt_digest_fast",
    "recover_signer",
    "recover_signer_bytes",
    "request_digest_fast",
    "sign_digest",
    "verify_receipts",
]

# Order of the secp256k1 group. OpenZeppelin's ECDSA rejects s > n / 2.
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N: Final = _SECP256K1_N // 2
# Bytes 0..31 of a signature are r and bytes 32..63 are s. Comparing them with
# these 32-byte big-endian words checks the ranges without int conversions.
_HALF_N_BYTES: Final = _SECP256K1_HALF_N.to_bytes(32, "big")
_N_BYTES: Final = _SECP256K1_N.to_bytes(32, "big")
_ZERO_WORD: Final = bytes(32)
_EIP712_PREFIX: Final = b"\x19\x01"
# Distinct app CIDs and function names whose hashes stay cached. A node serves
# few packages and functions, so this bounds memory without missing in practice.
_HASH_CACHE_SIZE: Final = 4096


class ReceiptFields(Protocol):
    """The signed fields of a receipt: `Receipt` and the wire model `SignedReceipt` both have them."""

    worker_id: int
    request_hash: bytes
    app_cid: bytes
    output_hash: bytes
    fuel_used: int
    epoch: int
    sequence: int


class RequestFields(Protocol):
    """The signed fields of a call request: `CallRequest` and `SignedCallRequest` both have them."""

    deal_id: int
    function_name: str
    input_hash: bytes
    nonce: int
    deadline: int


class SignedReceiptLike(ReceiptFields, Protocol):
    signature: bytes


# --------------------------------------------------------------------------- digests


@functools.lru_cache(maxsize=64)
def _digest_prefix(domain: Domain) -> bytes:
    """Return `0x19 0x01 || domainSeparator`, the first 34 bytes of every typed-data digest under `domain`."""
    return _EIP712_PREFIX + domain.separator()


@functools.lru_cache(maxsize=_HASH_CACHE_SIZE)
def _hash_app_cid(app_cid: bytes) -> bytes:
    return keccak(app_cid)


@functools.lru_cache(maxsize=_HASH_CACHE_SIZE)
def _hash_function_name(function_name: str) -> bytes:
    return keccak(function_name.encode("utf-8"))


def receipt_digest_fast(receipt: ReceiptFields, domain: Domain) -> bytes:
    """Compute the EIP-712 digest of a receipt, equal to `eip712.receipt_digest`.

    `receipt` is a `Receipt` or a `SignedReceipt`. Both check their field
    ranges when built, so this function encodes the fields without checking
    them again. A uint64 field of 2**64 or more from another object would be
    encoded as a 32-byte word that the contract never produces.
    """
    struct_hash = keccak(
        RECEIPT_TYPEHASH
        + receipt.worker_id.to_bytes(32, "big")
        + receipt.request_hash
        + _hash_app_cid(receipt.app_cid)
        + receipt.output_hash
        + receipt.fuel_used.to_bytes(32, "big")
        + receipt.epoch.to_bytes(32, "big")
        + receipt.sequence.to_bytes(32, "big")
    )
    return keccak(_digest_prefix(domain) + struct_hash)


def request_digest_fast(request: RequestFields, domain: Domain) -> bytes:
    """Compute the EIP-712 digest of a call request, equal to `eip712.request_digest`.

    `request` is a `CallRequest` or a `SignedCallRequest`, whose fields were
    checked when it was built.
    """
    struct_hash = keccak(
        CALL_REQUEST_TYPEHASH
        + request.deal_id.to_bytes(32, "big")
        + _hash_function_name(request.function_name)
        + request.input_hash
        + request.nonce.to_bytes(32, "big")
        + request.deadline.to_bytes(32, "big")
    )
    return keccak(_digest_prefix(domain) + struct_hash)


# --------------------------------------------------------------------------- keys and addresses


def checksum_address(address: bytes) -> str:
    """Return a 20-byte address in EIP-55 checksum form, as eth_utils' `to_checksum_address` does."""
    digits = address.hex()
    hashed = keccak(digits.encode("ascii")).hex()
    # A letter is upper case where the matching hex digit of the hash is 8 or more.
    return "0x" + "".join(
        digit.upper() if nibble in "89abcdef" else digit for digit, nibble in zip(digits, hashed)
    )


def _key_bytes(private_key: PrivateKeyLike) -> bytes:
    if isinstance(private_key, str):
        text = private_key[2:] if private_key.startswith(("0x", "0X")) else private_key
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            # The message must not contain the key, even a malformed one.
            raise ReceiptError(
                "private key must be 32 bytes or 64 hex digits (0x optional); the string given is not hex"
            ) from None
    elif isinstance(private_key, bytes):
        raw = private_key
    else:
        raise ReceiptError(f"private key must be bytes or a hex string, got {type(private_key).__name__}")
    if len(raw) != 32:
        raise ReceiptError(f"private key must be 32 bytes, got {len(raw)} bytes")
    return raw


# Building a coincurve.PrivateKey computes its public key (about 50 µs), so
# signers that sign many receipts reuse one. Keys are few per process.
@functools.lru_cache(maxsize=64)
def _private_key(raw: bytes) -> coincurve.PrivateKey:
    try:
        return coincurve.PrivateKey(raw)
    except ValueError:
        raise ReceiptError("private key must be an integer from 1 to n - 1 of secp256k1") from None


def address_of_key(private_key: PrivateKeyLike) -> str:
    """Return the checksum address of a secp256k1 private key, equal to `Account.from_key(key).address`."""
    public_key = _private_key(_key_bytes(private_key)).public_key.format(compressed=False)
    return checksum_address(keccak(public_key[1:])[12:])


# --------------------------------------------------------------------------- signing and recovery


def sign_digest(digest: bytes, private_key: PrivateKeyLike) -> bytes:
    """Sign a 32-byte digest and return the 65-byte `r || s || v` signature, `v` 27 or 28.

    The signature equals `Account.unsafe_sign_hash(digest, key).signature`:
    libsecp256k1 signs with an RFC 6979 nonce and always returns low s.
    Raises ReceiptError for a digest that is not 32 bytes or an invalid key.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        actual = f"{len(digest)} bytes" if isinstance(digest, bytes) else type(digest).__name__
        raise ReceiptError(f"digest must be 32 bytes (an EIP-712 hash), got {actual}")
    signature = _private_key(_key_bytes(private_key)).sign_recoverable(digest, hasher=None)
    # coincurve returns r || s || recovery id (0 or 1); Ethereum adds 27.
    return signature[:64] + bytes((signature[64] + 27,))


def _signature_error(signature: object) -> str | None:
    """Return why `signature` breaks the ECDSA.recover rules, or None when its form is valid."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_LENGTH:
        actual = f"{len(signature)} bytes" if isinstance(signature, bytes) else type(signature).__name__
        return f"signature must be {SIGNATURE_LENGTH} bytes (r || s || v), got {actual}"
    v = signature[64]
    if v != 27 and v != 28:
        return f"signature v must be 27 or 28, got {v}; add 27 to a 0/1 recovery id"
    r_word = signature[0:32]
    if r_word == _ZERO_WORD or r_word >= _N_BYTES:
        return f"signature r must be in [1, n - 1] of secp256k1, got {int.from_bytes(r_word, 'big'):#x}"
    s_word = signature[32:64]
    if s_word == _ZERO_WORD or s_word > _HALF_N_BYTES:
        return (
            f"signature s must be in [1, n / 2] of secp256k1 (low-s form), got {int.from_bytes(s_word, 'big'):#x}; "
            "replace s with n - s and flip v between 27 and 28"
        )
    return None


def _recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """Return the 64-byte uncompressed public key (without the 0x04 tag) of a well-formed signature.

    Raises ValueError when libsecp256k1 finds no key, for example when r is
    not the x coordinate of a curve point.
    """
    recoverable = signature[:64] + bytes((signature[64] - 27,))
    public_key = coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    return public_key.format(compressed=False)[1:]


def recover_signer_bytes(digest: bytes, signature: bytes) -> bytes:
    """Recover the 20-byte address that signed `digest`.

    Raises InvalidSignatureError with the same messages as `recover_signer`.
    """
    error = _signature_error(signature)
    if error is not None:
        raise InvalidSignatureError(error)
    if not isinstance(digest, bytes) or len(digest) != 32:
        actual = f"{len(digest)} bytes" if isinstance(digest, bytes) else type(digest).__name__
        raise ReceiptError(f"digest must be 32 bytes (an EIP-712 hash), got {actual}")
    try:
        public_key = _recover_public_key(digest, signature)
    except ValueError as failure:
        raise InvalidSignatureError(
            f"could not recover a signer from signature 0x{signature.hex()}: {failure}"
        ) from failure
    return keccak(public_key)[12:]


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Recover the checksum address that signed the 32-byte `digest`.

    Raises InvalidSignatureError when the signature breaks the rules of
    OpenZeppelin's `ECDSA.recover` (length, `v`, the ranges of `r` and `s`) or
    no key recovers from it. A well-formed signature by another key, or over
    another digest, recovers some other address.
    """
    return checksum_address(recover_signer_bytes(digest, signature))


def _split_signed(item: SignedReceiptLike | tuple[ReceiptFields, bytes]) -> tuple[ReceiptFields, object]:
    if isinstance(item, tuple):
        receipt, signature = item
        return receipt, signature
    return item, item.signature


def verify_receipts(
    receipts: Iterable[SignedReceiptLike | tuple[ReceiptFields, bytes]],
    domain: Domain,
    expected_signer: str,
    *,
    on_invalid: Callable[[int, str], None] | None = None,
) -> list[bool]:
    """Check that `expected_signer` signed each receipt under `domain`, one bool per receipt.

    Each item is a `SignedReceipt` or a `(Receipt, signature)` pair. A
    malformed signature, one that recovers no key, and one by another key all
    give False. `on_invalid(position, reason)` is called for each False, if
    given. Raises ReceiptError when `expected_signer` is not an address.
    """
    expected = bytes.fromhex(normalize_address(expected_signer, "expected_signer")[2:])
    results: list[bool] = []
    for position, item in enumerate(receipts):
        receipt, signature = _split_signed(item)
        reason = _signature_error(signature)
        if reason is None:
            try:
                digest = receipt_digest_fast(receipt, domain)
                signer = keccak(_recover_public_key(digest, cast(bytes, signature)))[12:]
            except ValueError as failure:
                reason = f"could not recover a signer: {failure}"
            else:
                if signer == expected:
                    results.append(True)
                    continue
                reason = f"signed by {checksum_address(signer)}, expected {checksum_address(expected)}"
        results.append(False)
        if on_invalid is not None:
            on_invalid(position, reason)
    return results
