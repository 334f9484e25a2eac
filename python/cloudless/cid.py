"""Content identifiers (CIDs) for function packages and other stored blobs.

Every CID here is a CIDv1 with the multicodec `raw` (0x55) and a sha2-256
multihash (code 0x12, digest length 0x20):

* binary form, 36 bytes, as stored on chain: `01 55 12 20 <sha256 digest>`
* string form: multibase base32, lowercase, no padding, prefix "b", so every
  string starts with "bafkrei"

These are the CIDs that IPFS (Kubo) reports for a single raw block, for
example `ipfs add --cid-version 1 --raw-leaves` on a file of at most one block.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cloudless.exceptions import InvalidCidError, PackageIntegrityError

__all__ = [
    "CID_BINARY_LENGTH",
    "CID_PREFIX",
    "compute_cid",
    "cid_from_bytes",
    "cid_to_bytes",
    "verify_cid",
]

# CID version 1, multicodec raw, multihash sha2-256, digest length 32.
CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])
CID_BINARY_LENGTH = len(CID_PREFIX) + hashlib.sha256().digest_size

# Multicodec names of the codecs other than raw that IPFS tools commonly put into CIDs.
_CODEC_NAMES = {0x70: "dag-pb", 0x71: "dag-cbor"}
# A CIDv0 is a base58btc sha2-256 multihash: "Qm" and 44 more characters.
_CIDV0_STRING_LENGTH = 46
_RAW_CID_FIX = "use the CID that `cloudless package build` prints for the package"

_MULTIBASE_BASE32_LOWER = "b"
# Base32 without padding: 36 bytes encode to ceil(36 * 8 / 5) = 58 characters.
_CID_STRING_LENGTH = 1 + (CID_BINARY_LENGTH * 8 + 4) // 5


def compute_cid(data: bytes) -> str:
    """Compute the string CID of `data`."""
    return cid_from_bytes(CID_PREFIX + hashlib.sha256(data).digest())


def cid_from_bytes(raw: bytes) -> str:
    """Encode a 36-byte binary CID as its base32 string form.

    Raises InvalidCidError if `raw` is not a raw/sha2-256 CIDv1.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise InvalidCidError(f"invalid binary CID {raw!r}: expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    _check_binary_cid(raw)
    encoded = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return _MULTIBASE_BASE32_LOWER + encoded


def cid_to_bytes(cid: str) -> bytes:
    """Decode a string CID into its 36-byte binary form.

    Only the canonical string is accepted (lowercase base32, no padding),
    so each CID has exactly one string form. Raises InvalidCidError otherwise.
    """
    if not isinstance(cid, str):
        raise InvalidCidError(f"invalid CID {cid!r}: expected a str, got {type(cid).__name__}")
    if cid.startswith("Qm") and len(cid) == _CIDV0_STRING_LENGTH:
        raise InvalidCidError(
            f"invalid CID {cid!r}: it is a CIDv0 (dag-pb), but a deal needs a CIDv1 with the raw codec "
            f"(bafkrei...): {_RAW_CID_FIX}"
        )
    if len(cid) != _CID_STRING_LENGTH or not cid.startswith(_MULTIBASE_BASE32_LOWER):
        raise InvalidCidError(
            f"invalid CID {cid!r}: expected {_CID_STRING_LENGTH} characters starting with "
            f"'bafkrei' (CIDv1, raw, sha2-256, lowercase base32): {_RAW_CID_FIX}"
        )

    body = cid[1:]
    if body != body.lower():
        raise InvalidCidError(f"invalid CID {cid!r}: base32 part must be lowercase")
    padding = "=" * (-len(body) % 8)
    try:
        raw = base64.b32decode(body.upper() + padding)
    except (binascii.Error, ValueError) as error:
        raise InvalidCidError(f"invalid CID {cid!r}: not valid base32 ({error})") from error

    _check_codec(cid, raw)
    _check_binary_cid(raw)
    # Unused low bits of the last character must be zero, or two strings
    # would decode to the same bytes.
    if cid_from_bytes(raw) != cid:
        raise InvalidCidError(f"invalid CID {cid!r}: not in canonical base32 form")
    return raw


def verify_cid(data: bytes, cid: str) -> None:
    """Check that `data` hashes to `cid`.

    Raises InvalidCidError if `cid` is malformed and PackageIntegrityError if
    the data does not match.
    """
    cid_to_bytes(cid)
    actual = compute_cid(data)
    if actual != cid:
        raise PackageIntegrityError(
            f"CID mismatch: expected {cid}, but the {len(data)} bytes received hash to {actual}; "
            "the data was altered or belongs to another CID, so fetch it again",
            expected=cid,
            actual=actual,
        )


def _check_codec(cid: str, raw: bytes) -> None:
    """Raise InvalidCidError naming the codec of a CIDv1 sha2-256 CID that is not raw, e.g. dag-pb from a plain `ipfs add`."""
    if len(raw) != CID_BINARY_LENGTH or raw[0] != CID_PREFIX[0] or raw[2:4] != CID_PREFIX[2:4]:
        return
    codec = raw[1]
    if codec == CID_PREFIX[1]:
        return
    kind = f"a {_CODEC_NAMES[codec]} CID" if codec in _CODEC_NAMES else f"a CID with codec 0x{codec:02x}"
    raise InvalidCidError(
        f"invalid CID {cid!r}: it is {kind}, but a deal needs a CID with the raw codec (bafkrei...): {_RAW_CID_FIX}"
    )


def _check_binary_cid(raw: bytes) -> None:
    if len(raw) != CID_BINARY_LENGTH:
        raise InvalidCidError(
            f"invalid binary CID {raw.hex()}: expected {CID_BINARY_LENGTH} bytes, got {len(raw)}"
        )
    if raw[: len(CID_PREFIX)] != CID_PREFIX:
        raise InvalidCidError(
            f"invalid binary CID {raw.hex()}: expected prefix {CID_PREFIX.hex()} "
            "(CIDv1, raw, sha2-256), got " + raw[: len(CID_PREFIX)].hex()
        )
