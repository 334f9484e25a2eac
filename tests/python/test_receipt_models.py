"""JSON wire models of signed call requests and receipts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudless.exceptions import InvalidSignatureError, ReceiptError, RequestExpiredError
from cloudless.receipts.eip712 import (
    CallRequest,
    Domain,
    Receipt,
    receipt_digest,
    request_digest,
    sign_receipt,
    sign_request,
)
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
CALLER_KEY = bytes.fromhex("01" * 32)
WORKER_KEY = bytes.fromhex("02" * 32)
CALLER = Account.from_key(CALLER_KEY).address
WORKER = Account.from_key(WORKER_KEY).address
APP_CID = bytes.fromhex("01551220") + keccak(b"app package")

uint64s = st.integers(min_value=0, max_value=2**64 - 1)
uint256s = st.integers(min_value=0, max_value=2**256 - 1)
hashes = st.binary(min_size=32, max_size=32)
requests = st.builds(
    CallRequest,
    deal_id=uint256s,
    function_name=st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    input_hash=hashes,
    nonce=uint256s,
    deadline=uint256s,
)
receipts = st.builds(
    Receipt,
    worker_id=uint256s,
    request_hash=hashes,
    app_cid=hashes.map(lambda digest: bytes.fromhex("01701220") + digest),
    output_hash=hashes,
    fuel_used=uint64s,
    epoch=uint64s,
    sequence=uint64s,
)


def make_request() -> CallRequest:
    return CallRequest.for_input(
        deal_id=7, function_name="resize_image", input=b"input", nonce=1, deadline=1_000
    )


def make_receipt() -> Receipt:
    return Receipt(
        worker_id=3,
        request_hash=request_digest(make_request(), DOMAIN),
        app_cid=APP_CID,
        output_hash=keccak(b"output"),
        fuel_used=500,
        epoch=2,
        sequence=0,
    )


def signed_receipt_dict() -> dict[str, Any]:
    return SignedReceipt.sign(make_receipt(), WORKER_KEY, DOMAIN).to_dict()


# Round trips


@settings(max_examples=30, deadline=None)
@given(requests)
def test_request_json_round_trip(request: CallRequest) -> None:
    signed = SignedCallRequest.from_request(request, bytes(range(65)), CALLER)

    parsed = SignedCallRequest.from_json(signed.to_json())

    assert parsed == signed
    assert parsed.to_request() == request


@settings(max_examples=30, deadline=None)
@given(receipts)
def test_receipt_json_round_trip(receipt: Receipt) -> None:
    signed = SignedReceipt.from_receipt(receipt, bytes(range(65)), WORKER)

    parsed = SignedReceipt.from_json(signed.to_json())

    assert parsed == signed
    assert parsed.to_receipt() == receipt


def test_receipt_json_form() -> None:
    signed = SignedReceipt.sign(make_receipt(), WORKER_KEY, DOMAIN)

    data = json.loads(signed.to_json())

    assert data == signed.to_dict()
    assert data["worker_id"] == 3
    assert data["fuel_used"] == 500
    assert data["app_cid"] == "0x" + APP_CID.hex()
    assert data["output_hash"] == "0x" + keccak(b"output").hex()
    assert data["signature"] == "0x" + sign_receipt(make_receipt(), WORKER_KEY, DOMAIN).hex()
    assert data["signer"] == WORKER


def test_large_uint256_stays_json_int() -> None:
    request = CallRequest(
        deal_id=2**256 - 1, function_name="f", input_hash=bytes(32), nonce=0, deadline=0
    )
    signed = SignedCallRequest.from_request(request, bytes(65), CALLER)

    assert json.loads(signed.to_json())["deal_id"] == 2**256 - 1
    assert SignedCallRequest.from_json(signed.to_json()).deal_id == 2**256 - 1


def test_from_dict_accepts_upper_case_hex() -> None:
    data = signed_receipt_dict()
    data["output_hash"] = "0X" + data["output_hash"][2:].upper()
    data["signer"] = data["signer"].lower()

    parsed = SignedReceipt.from_dict(data)

    assert parsed.output_hash == keccak(b"output")
    assert parsed.signer == WORKER


# Signing and verification


def test_signed_request_verifies() -> None:
    signed = SignedCallRequest.sign(make_request(), CALLER_KEY, DOMAIN)

    assert signed.signer == CALLER
    assert signed.signature == sign_request(make_request(), CALLER_KEY, DOMAIN)
    assert signed.digest(DOMAIN) == request_digest(make_request(), DOMAIN)
    signed.verify(DOMAIN, now=1_000)


def test_signed_request_rejects_expired() -> None:
    signed = SignedCallRequest.sign(make_request(), CALLER_KEY, DOMAIN)

    with pytest.raises(RequestExpiredError):
        signed.verify(DOMAIN, now=1_001)


def test_signed_request_rejects_other_signer() -> None:
    signed = SignedCallRequest.sign(make_request(), CALLER_KEY, DOMAIN)
    forged = signed.model_copy(update={"signer": WORKER})

    with pytest.raises(InvalidSignatureError, match=WORKER):
        forged.verify(DOMAIN, now=0)


def test_signed_receipt_verifies() -> None:
    signed = SignedReceipt.sign(make_receipt(), WORKER_KEY, DOMAIN)

    assert signed.digest(DOMAIN) == receipt_digest(make_receipt(), DOMAIN)
    signed.verify(DOMAIN)


def test_signed_receipt_rejects_changed_fuel() -> None:
    data = signed_receipt_dict()
    data["fuel_used"] += 1

    with pytest.raises(InvalidSignatureError):
        SignedReceipt.from_dict(data).verify(DOMAIN)


# Invalid input


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fuel_used", "500", "valid integer"),
        ("fuel_used", 500.0, "valid integer"),
        ("fuel_used", True, "valid integer"),
        ("fuel_used", -1, "greater than or equal to 0"),
        ("fuel_used", 2**64, "less than or equal to"),
        ("worker_id", 2**256, "less than or equal to"),
        ("output_hash", "00" * 32, "0x-prefixed hex"),
        ("output_hash", "0x" + "00" * 31, "expected 32 bytes"),
        ("output_hash", "0x" + "0" * 63, "even number of hex digits"),
        ("output_hash", "0x" + "zz" * 32, "even number of hex digits"),
        ("signature", "0x" + "00" * 64, "expected 65 bytes"),
        ("app_cid", "0x0155", "36-byte binary CIDv1"),
        ("signer", "0x1234", "40 hex digits"),
        ("signer", "0x3d9f0ffE2D1CBdD6D8C6d5E3C3fb3d8b2e6b1e0a", "EIP-55 checksum"),
    ],
)
def test_receipt_rejects_invalid_field(field: str, value: object, message: str) -> None:
    data = signed_receipt_dict()
    data[field] = value

    with pytest.raises(ReceiptError, match=message):
        SignedReceipt.from_dict(data)


def test_receipt_rejects_missing_field() -> None:
    data = signed_receipt_dict()
    del data["epoch"]

    with pytest.raises(ReceiptError, match="epoch"):
        SignedReceipt.from_dict(data)


def test_receipt_rejects_unknown_field() -> None:
    data = signed_receipt_dict()
    data["gas"] = 1

    with pytest.raises(ReceiptError, match="gas"):
        SignedReceipt.from_dict(data)


def test_from_json_rejects_float_int() -> None:
    text = json.dumps(signed_receipt_dict()).replace('"fuel_used": 500', '"fuel_used": 500.0')

    with pytest.raises(ReceiptError, match="fuel_used"):
        SignedReceipt.from_json(text)


def test_from_json_rejects_malformed_json() -> None:
    with pytest.raises(ReceiptError, match="invalid SignedReceipt JSON"):
        SignedReceipt.from_json('{"worker_id": 3,')


def test_request_rejects_non_string_function_name() -> None:
    data = SignedCallRequest.sign(make_request(), CALLER_KEY, DOMAIN).to_dict()
    data["function_name"] = 5

    with pytest.raises(ReceiptError, match="function_name"):
        SignedCallRequest.from_dict(data)


def test_models_are_frozen() -> None:
    signed = SignedReceipt.from_dict(signed_receipt_dict())

    with pytest.raises(ValueError, match="frozen"):
        signed.fuel_used = 1
