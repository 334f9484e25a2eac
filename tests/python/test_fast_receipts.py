"""The fast digest, signing and recovery path gives the same results as eth_abi, eth_account and eth_keys."""

from __future__ import annotations

import subprocess
import sys

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak as reference_keccak
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from test_eip712 import SECP256K1_N, domains, hashes, private_keys, receipts, requests

from cloudless.exceptions import InvalidSignatureError, ReceiptError
from cloudless.receipts import fast
from cloudless.receipts.eip712 import (
    CallRequest,
    Domain,
    Receipt,
    normalize_address,
    receipt_typed_data,
    recover_receipt_signer,
    request_typed_data,
    verify_receipt,
)
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
WORKER_KEY = bytes.fromhex("02" * 32)
WORKER = Account.from_key(WORKER_KEY).address



def eth_abi_digest(struct_hash: bytes, domain: Domain) -> bytes:
    """The typed-data digest built with eth_abi only, as the eip712 module built it before the fast path."""
    separator = reference_keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                reference_keccak(
                    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                reference_keccak(b"Cloudless"),
                reference_keccak(b"1"),
                domain.chain_id,
                domain.verifying_contract,
            ],
        )
    )
    return reference_keccak(b"\x19\x01" + separator + struct_hash)


def eth_account_digest(typed_data: dict[str, object]) -> bytes:
    message = encode_typed_data(full_message=typed_data)
    return reference_keccak(b"\x19" + message.version + message.header + message.body)


def eth_keys_signer(digest: bytes, signature: bytes) -> str:
    """Recover the signer with eth_keys, which accepts any s in [1, n - 1]."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    public_key = Signature(vrs=(signature[64] - 27, r, s)).recover_public_key_from_msg_hash(digest)
    return public_key.to_checksum_address()


def high_s_twin(signature: bytes) -> bytes:
    """Return the other valid ECDSA signature of the same digest: s -> n - s, v flipped."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


# Digests


@given(receipts, domains)
def test_receipt_digest_matches_eth_abi_and_eth_account(receipt: Receipt, domain: Domain) -> None:
    digest = fast.receipt_digest_fast(receipt, domain)

    assert digest == eth_abi_digest(receipt.struct_hash(), domain)
    assert digest == eth_account_digest(receipt_typed_data(receipt, domain))


@given(requests, domains)
def test_request_digest_matches_eth_abi_and_eth_account(request: CallRequest, domain: Domain) -> None:
    digest = fast.request_digest_fast(request, domain)

    assert digest == eth_abi_digest(request.struct_hash(), domain)
    assert digest == eth_account_digest(request_typed_data(request, domain))


@settings(max_examples=30, deadline=None)
@given(receipts, requests, private_keys)
def test_wire_models_digest_like_dataclasses(receipt: Receipt, request: CallRequest, key: bytes) -> None:
    signed_receipt = SignedReceipt.sign(receipt, key, DOMAIN)
    signed_request = SignedCallRequest.sign(request, key, DOMAIN)

    assert fast.receipt_digest_fast(signed_receipt, DOMAIN) == fast.receipt_digest_fast(receipt, DOMAIN)
    assert fast.request_digest_fast(signed_request, DOMAIN) == fast.request_digest_fast(request, DOMAIN)


@given(receipts, domains, domains)
def test_domain_cache_keeps_domains_apart(receipt: Receipt, first: Domain, second: Domain) -> None:
    # Interleaved calls must not reuse one domain's cached separator for another.
    for domain in (first, second, first):
        assert fast.receipt_digest_fast(receipt, domain) == eth_abi_digest(receipt.struct_hash(), domain)


@given(st.binary(max_size=300))
def test_keccak_matches_eth_hash(data: bytes) -> None:
    assert fast.keccak(data) == reference_keccak(data)


def test_keccak_falls_back_to_pycryptodome() -> None:
    # None in sys.modules makes `import sha3` raise ImportError, as without safe-pysha3.
    script = (
        "import sys; sys.modules['sha3'] = None\n"
        "from cloudless.receipts import fast\n"
        "print(fast.KECCAK_BACKEND, fast.keccak(b'cloudless').hex())\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["pycryptodome", reference_keccak(b"cloudless").hex()]


# Keys, addresses and signing


@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_matches_eth_utils(raw: bytes) -> None:
    assert fast.checksum_address(raw) == to_checksum_address(raw)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["lower", "upper", "checksum"]))
def test_normalize_address_matches_eth_utils(raw: bytes, case: str) -> None:
    expected = to_checksum_address(raw)
    text = {"lower": "0x" + raw.hex(), "upper": "0x" + raw.hex().upper(), "checksum": expected}[case]

    assert normalize_address(text) == expected


def test_normalize_address_rejects_bad_checksum() -> None:
    wrong = "0x5FbDB2315678afecb367f032d93F642f64180aA3"

    with pytest.raises(ReceiptError, match="invalid EIP-55 checksum"):
        normalize_address(wrong, "signer")


@pytest.mark.parametrize("value", ["0x" + "g" * 40, "0x" + "1" * 39, "1" * 42, "0X" + "1" * 40, None])
def test_normalize_address_rejects_non_hex(value: object) -> None:
    with pytest.raises(ReceiptError, match="must be 0x and 40 hex digits"):
        normalize_address(value, "signer")


@settings(max_examples=50, deadline=None)
@given(private_keys)
def test_address_of_key_matches_eth_account(key: bytes) -> None:
    expected = Account.from_key(key).address

    assert fast.address_of_key(key) == expected
    assert fast.address_of_key("0x" + key.hex()) == expected


@settings(max_examples=50, deadline=None)
@given(hashes, private_keys)
def test_signature_equals_eth_account(digest: bytes, key: bytes) -> None:
    signature = fast.sign_digest(digest, key)

    assert signature == bytes(Account.unsafe_sign_hash(digest, key).signature)
    assert signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2


@settings(max_examples=50, deadline=None)
@given(hashes, private_keys)
def test_recover_signer_matches_eth_keys(digest: bytes, key: bytes) -> None:
    signature = bytes(Account.unsafe_sign_hash(digest, key).signature)
    signer = Account.from_key(key).address

    assert fast.recover_signer(digest, signature) == signer
    assert eth_keys_signer(digest, fast.sign_digest(digest, key)) == signer
    assert fast.recover_signer_bytes(digest, signature) == bytes.fromhex(signer[2:])


@settings(max_examples=30, deadline=None)
@given(receipts, domains, private_keys)
def test_eip712_and_fast_recover_same_signer(receipt: Receipt, domain: Domain, key: bytes) -> None:
    signature = fast.sign_digest(fast.receipt_digest_fast(receipt, domain), key)
    signer = Account.from_key(key).address

    assert recover_receipt_signer(receipt, signature, domain) == signer
    assert fast.verify_receipts([(receipt, signature)], domain, signer) == [True]


@pytest.mark.parametrize("digest", [bytes(31), bytes(33), "00" * 32])
def test_sign_rejects_bad_digest(digest: object) -> None:
    with pytest.raises(ReceiptError, match="digest must be 32 bytes"):
        fast.sign_digest(digest, WORKER_KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (bytes(32), "from 1 to n - 1"),
        (SECP256K1_N.to_bytes(32, "big"), "from 1 to n - 1"),
        (b"\x07" * 31, "32 bytes, got 31 bytes"),
        ("0x" + "zz" * 32, "not hex"),
        (12345, "bytes or a hex string"),
    ],
)
def test_sign_rejects_bad_key(key: object, message: str) -> None:
    with pytest.raises(ReceiptError, match=message) as raised:
        fast.sign_digest(bytes(32), key)  # type: ignore[arg-type]

    assert "zz" * 4 not in str(raised.value)


def test_sign_accepts_key_with_leading_zeros() -> None:
    key = bytes(31) + b"\x07"

    assert fast.sign_digest(bytes(32), key) == bytes(Account.unsafe_sign_hash(bytes(32), key).signature)


# Tampering


@settings(max_examples=50, deadline=None)
@given(hashes, private_keys, st.integers(min_value=0, max_value=65 * 8 - 1))
def test_flipped_signature_bit_never_verifies(digest: bytes, key: bytes, bit: int) -> None:
    signature = bytearray(fast.sign_digest(digest, key))
    signature[bit // 8] ^= 1 << (bit % 8)
    tampered = bytes(signature)
    signer = Account.from_key(key).address

    try:
        recovered = fast.recover_signer(digest, tampered)
    except InvalidSignatureError:
        recovered = None
    assert recovered != signer


@settings(max_examples=50, deadline=None)
@given(hashes, hashes, private_keys)
def test_other_digest_recovers_other_signer(digest: bytes, other: bytes, key: bytes) -> None:
    if digest == other:
        return
    signature = fast.sign_digest(digest, key)

    assert fast.recover_signer(other, signature) != Account.from_key(key).address


@settings(max_examples=30, deadline=None)
@given(receipts, st.sampled_from(["worker_id", "fuel_used", "epoch", "sequence", "output_hash"]))
def test_changed_receipt_field_fails_verify(receipt: Receipt, field: str) -> None:
    signed = SignedReceipt.sign(receipt, WORKER_KEY, DOMAIN)
    value = getattr(receipt, field)
    if field == "output_hash":
        new_value: object = bytes(32) if value != bytes(32) else b"\x01" * 32
    else:
        new_value = value - 1 if value > 0 else 1
    changed = signed.model_copy(update={field: new_value})

    assert fast.verify_receipts([signed, changed], DOMAIN, WORKER) == [True, False]


# Malformed signatures, as OpenZeppelin's ECDSA.recover rejects them


@given(st.binary(max_size=130).filter(lambda raw: len(raw) != 65))
def test_wrong_length_rejected(signature: bytes) -> None:
    with pytest.raises(InvalidSignatureError, match="65 bytes"):
        fast.recover_signer(bytes(32), signature)
    assert fast.verify_receipts([(_receipt(), signature)], DOMAIN, WORKER) == [False]


@given(st.integers(min_value=0, max_value=255).filter(lambda v: v not in (27, 28)))
def test_v_outside_27_28_rejected(v: int) -> None:
    # eth_account 0.13 also recovers v = 0, 1 and 35 or more, but the contracts revert on them.
    receipt = _receipt()
    signature = fast.sign_digest(fast.receipt_digest_fast(receipt, DOMAIN), WORKER_KEY)[:64] + bytes([v])

    with pytest.raises(InvalidSignatureError, match="v must be 27 or 28"):
        fast.recover_signer(fast.receipt_digest_fast(receipt, DOMAIN), signature)
    assert fast.verify_receipts([(receipt, signature)], DOMAIN, WORKER) == [False]


@settings(max_examples=30, deadline=None)
@given(hashes, private_keys)
def test_high_s_rejected_though_eth_keys_recovers_it(digest: bytes, key: bytes) -> None:
    twin = high_s_twin(fast.sign_digest(digest, key))
    signer = Account.from_key(key).address

    # eth_keys 0.8 and eth_account 0.13 accept the high-s twin, but ECDSA.recover reverts on it.
    assert eth_keys_signer(digest, twin) == signer
    with pytest.raises(InvalidSignatureError, match="low-s"):
        fast.recover_signer(digest, twin)
    with pytest.raises(InvalidSignatureError, match="low-s"):
        verify_receipt(_receipt(), twin, DOMAIN)


@pytest.mark.parametrize(
    ("r", "s", "message"),
    [
        (0, 1, "signature r"),
        (SECP256K1_N, 1, "signature r"),
        (2**256 - 1, 1, "signature r"),
        (1, 0, "signature s"),
        (1, SECP256K1_N // 2 + 1, "low-s"),
        (5, 1, "could not recover"),  # x = 5 is not the x coordinate of a curve point
    ],
)
def test_out_of_range_r_s_rejected(r: int, s: int, message: str) -> None:
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27])
    reasons: list[tuple[int, str]] = []

    with pytest.raises(InvalidSignatureError, match=message):
        fast.recover_signer(bytes(32), signature)
    assert fast.verify_receipts([(_receipt(), signature)], DOMAIN, WORKER, on_invalid=lambda *a: reasons.append(a)) == [False]
    assert len(reasons) == 1
    assert reasons[0][0] == 0


# Batch verification


def _receipt(sequence: int = 0) -> Receipt:
    return Receipt(
        worker_id=3,
        request_hash=reference_keccak(b"request"),
        app_cid=bytes.fromhex("01551220") + reference_keccak(b"app"),
        output_hash=reference_keccak(b"output"),
        fuel_used=1_000,
        epoch=4,
        sequence=sequence,
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["valid", "other key", "high s", "short", "changed"]), max_size=12))
def test_verify_receipts_agrees_with_eip712(kinds: list[str]) -> None:
    other_key = bytes.fromhex("03" * 32)
    items: list[tuple[Receipt, bytes]] = []
    for sequence, kind in enumerate(kinds):
        receipt = _receipt(sequence)
        signature = fast.sign_digest(fast.receipt_digest_fast(receipt, DOMAIN), other_key if kind == "other key" else WORKER_KEY)
        if kind == "high s":
            signature = high_s_twin(signature)
        elif kind == "short":
            signature = signature[:64]
        elif kind == "changed":
            receipt = _receipt(sequence + 1000)
        items.append((receipt, signature))

    def eip712_accepts(receipt: Receipt, signature: bytes) -> bool:
        try:
            verify_receipt(receipt, signature, DOMAIN, expected_signer=WORKER)
        except InvalidSignatureError:
            return False
        return True

    reasons: dict[int, str] = {}
    results = fast.verify_receipts(items, DOMAIN, WORKER, on_invalid=reasons.__setitem__)

    assert results == [kind == "valid" for kind in kinds]
    assert results == [eip712_accepts(receipt, signature) for receipt, signature in items]
    assert sorted(reasons) == [position for position, kind in enumerate(kinds) if kind != "valid"]


def test_verify_receipts_names_other_signer() -> None:
    receipt = _receipt()
    other_key = bytes.fromhex("03" * 32)
    signature = fast.sign_digest(fast.receipt_digest_fast(receipt, DOMAIN), other_key)
    reasons: list[tuple[int, str]] = []

    assert fast.verify_receipts([(receipt, signature)], DOMAIN, WORKER, on_invalid=lambda *a: reasons.append(a)) == [False]
    assert reasons == [(0, f"signed by {Account.from_key(other_key).address}, expected {WORKER}")]


def test_verify_receipts_accepts_wire_models() -> None:
    signed = [SignedReceipt.sign(_receipt(sequence), WORKER_KEY, DOMAIN) for sequence in range(3)]

    assert fast.verify_receipts(signed, DOMAIN, WORKER.lower()) == [True, True, True]


def test_verify_receipts_rejects_bad_expected_signer() -> None:
    with pytest.raises(ReceiptError, match="expected_signer must be 0x and 40 hex digits"):
        fast.verify_receipts([], DOMAIN, "worker")
