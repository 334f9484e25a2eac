"""CIDv1 (raw, sha2-256, base32) encoding, decoding and verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudless.cid import CID_BINARY_LENGTH, CID_PREFIX, cid_from_bytes, cid_to_bytes, compute_cid, verify_cid
from cloudless.exceptions import InvalidCidError, PackageError, PackageIntegrityError

# IPFS Kubo reports these CIDs for the bytes added as one raw block. The same
# strings appear as test fixtures in several public IPFS projects.
EMPTY_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_WORLD_NEWLINE_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def test_cid_of_empty_bytes_matches_ipfs() -> None:
    assert compute_cid(b"") == EMPTY_CID


def test_cid_of_hello_world_matches_ipfs() -> None:
    assert compute_cid(b"hello world\n") == HELLO_WORLD_NEWLINE_CID


def test_cid_binary_form_is_prefix_plus_sha256() -> None:
    data = b"hello world\n"

    raw = cid_to_bytes(compute_cid(data))

    assert len(raw) == CID_BINARY_LENGTH == 36
    assert raw[:4] == bytes([0x01, 0x55, 0x12, 0x20]) == CID_PREFIX
    assert raw[4:] == hashlib.sha256(data).digest()


def test_cid_string_form_is_lowercase_unpadded_base32() -> None:
    cid = compute_cid(b"some package bytes")

    assert cid.startswith("bafkrei")
    assert len(cid) == 59
    assert cid == cid.lower()
    assert "=" not in cid


@given(st.binary(max_size=4096))
def test_cid_round_trip_random_bytes(data: bytes) -> None:
    cid = compute_cid(data)

    raw = cid_to_bytes(cid)

    assert cid_from_bytes(raw) == cid
    assert raw[4:] == hashlib.sha256(data).digest()
    verify_cid(data, cid)


@given(st.binary(min_size=32, max_size=32))
def test_cid_from_bytes_round_trip_digests(digest: bytes) -> None:
    raw = CID_PREFIX + digest

    assert cid_to_bytes(cid_from_bytes(raw)) == raw


def test_verify_cid_accepts_matching_data() -> None:
    verify_cid(b"hello world\n", HELLO_WORLD_NEWLINE_CID)


def test_verify_cid_rejects_tampered_data() -> None:
    with pytest.raises(PackageIntegrityError) as caught:
        verify_cid(b"hello world!\n", HELLO_WORLD_NEWLINE_CID)

    error = caught.value
    assert error.expected == HELLO_WORLD_NEWLINE_CID
    assert error.actual == compute_cid(b"hello world!\n")
    assert HELLO_WORLD_NEWLINE_CID in str(error)
    assert error.actual in str(error)
    assert isinstance(error, PackageError)


@given(st.binary(min_size=1, max_size=256), st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_verify_cid_rejects_any_flipped_byte(data: bytes, position: int, flip: int) -> None:
    cid = compute_cid(data)
    tampered = bytearray(data)
    tampered[position % len(data)] ^= flip

    with pytest.raises(PackageIntegrityError):
        verify_cid(bytes(tampered), cid)


@pytest.mark.parametrize(
    "bad_cid",
    [
        "",
        "bafkrei",
        EMPTY_CID.upper(),
        "B" + EMPTY_CID[1:].upper(),
        EMPTY_CID[:-1],
        EMPTY_CID + "a",
        "z" + EMPTY_CID[1:],
        EMPTY_CID[:-1] + "1",
        # CIDv0 (base58btc multihash) of the same kind of content.
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
        # dag-pb codec (0x70) instead of raw.
        cid_from_bytes(CID_PREFIX + bytes(32)).replace("bafkrei", "bafybei", 1),
    ],
)
def test_cid_to_bytes_rejects_malformed(bad_cid: str) -> None:
    with pytest.raises(InvalidCidError):
        cid_to_bytes(bad_cid)


def test_cid_to_bytes_rejects_noncanonical_trailing_bits() -> None:
    # 36 bytes are 288 bits, so the last of 58 base32 characters carries
    # 2 unused bits. Setting them gives a second spelling of the same bytes.
    last = EMPTY_CID[-1]
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    variant = EMPTY_CID[:-1] + alphabet[alphabet.index(last) | 0b00001]

    assert variant != EMPTY_CID
    with pytest.raises(InvalidCidError):
        cid_to_bytes(variant)


@pytest.mark.parametrize(
    "bad_raw",
    [
        b"",
        CID_PREFIX,
        CID_PREFIX + bytes(31),
        CID_PREFIX + bytes(33),
        bytes([0x01, 0x70, 0x12, 0x20]) + bytes(32),
        bytes([0x01, 0x55, 0x13, 0x40]) + bytes(32),
    ],
)
def test_cid_from_bytes_rejects_wrong_layout(bad_raw: bytes) -> None:
    with pytest.raises(InvalidCidError):
        cid_from_bytes(bad_raw)


def test_verify_cid_rejects_malformed_cid() -> None:
    with pytest.raises(InvalidCidError):
        verify_cid(b"", "not-a-cid")


def test_dag_pb_cid_named() -> None:
    dag_pb = "bafybeibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe"
    with pytest.raises(InvalidCidError) as raised:
        cid_to_bytes(dag_pb)
    assert f"invalid CID {dag_pb!r}: it is a dag-pb CID" in str(raised.value)
    assert "raw codec (bafkrei...)" in str(raised.value)
    assert "`cloudless package build`" in str(raised.value)


def test_cid_v0_named() -> None:
    with pytest.raises(InvalidCidError) as raised:
        cid_to_bytes("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    assert "it is a CIDv0 (dag-pb)" in str(raised.value)
