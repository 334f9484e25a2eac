"""EIP-712 digests, signing and signer recovery of call requests and receipts."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudless.exceptions import InvalidSignatureError, ReceiptError, RequestExpiredError
from cloudless.receipts.eip712 import (
    CALL_REQUEST_TYPEHASH,
    RECEIPT_TYPEHASH,
    CallRequest,
    Domain,
    Receipt,
    hash_input,
    receipt_digest,
    receipt_typed_data,
    recover_receipt_signer,
    recover_request_signer,
    request_digest,
    request_typed_data,
    sign_receipt,
    sign_request,
    verify_receipt,
    verify_request,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEAL_MANAGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = Domain(chain_id=31337, verifying_contract=DEAL_MANAGER)
CALLER_KEY = bytes.fromhex("01" * 32)
WORKER_KEY = bytes.fromhex("02" * 32)
APP_CID = bytes.fromhex("01551220") + keccak(b"app package")

uint64s = st.integers(min_value=0, max_value=2**64 - 1)
uint256s = st.integers(min_value=0, max_value=2**256 - 1)
hashes = st.binary(min_size=32, max_size=32)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda key: key.to_bytes(32, "big")
)
domains = st.builds(
    Domain,
    chain_id=uint256s,
    verifying_contract=st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex()),
)
requests = st.builds(
    CallRequest,
    deal_id=uint256s,
    function_name=st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    input_hash=hashes,
    nonce=uint256s,
    deadline=uint256s,
)
app_cids = st.tuples(st.integers(min_value=0, max_value=0x7F), hashes).map(
    lambda parts: bytes([0x01, parts[0], 0x12, 0x20]) + parts[1]
)
receipts = st.builds(
    Receipt,
    worker_id=uint256s,
    request_hash=hashes,
    app_cid=app_cids,
    output_hash=hashes,
    fuel_used=uint64s,
    epoch=uint64s,
    sequence=uint64s,
)


def make_request(**changes: object) -> CallRequest:
    fields: dict[str, object] = {
        "deal_id": 7,
        "function_name": "resize_image",
        "input_hash": hash_input(b"input bytes"),
        "nonce": 1,
        "deadline": 1_700_000_000,
    }
    fields.update(changes)
    return CallRequest(**fields)  # type: ignore[arg-type]


def make_receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "worker_id": 3,
        "request_hash": request_digest(make_request(), DOMAIN),
        "app_cid": APP_CID,
        "output_hash": keccak(b"output bytes"),
        "fuel_used": 12_345,
        "epoch": 9,
        "sequence": 0,
    }
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


def eip191_digest(message: SignableMessage) -> bytes:
    return keccak(b"\x19" + message.version + message.header + message.body)


def high_s_twin(signature: bytes) -> bytes:
    """Return the other valid ECDSA signature of the same digest: s -> n - s, v flipped."""
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


# Type strings and digests


def test_typehashes_match_type_strings() -> None:
    assert CALL_REQUEST_TYPEHASH == keccak(
        b"CallRequest(uint256 dealId,string functionName,bytes32 inputHash,uint256 nonce,uint256 deadline)"
    )
    assert RECEIPT_TYPEHASH == keccak(
        b"Receipt(uint256 workerId,bytes32 requestHash,bytes appCid,bytes32 outputHash,"
        b"uint64 fuelUsed,uint64 epoch,uint64 sequence)"
    )


@given(requests, domains)
def test_request_digest_matches_eth_account(request: CallRequest, domain: Domain) -> None:
    message = encode_typed_data(full_message=request_typed_data(request, domain))

    assert request_digest(request, domain) == eip191_digest(message)


@given(receipts, domains)
def test_receipt_digest_matches_eth_account(receipt: Receipt, domain: Domain) -> None:
    message = encode_typed_data(full_message=receipt_typed_data(receipt, domain))

    assert receipt_digest(receipt, domain) == eip191_digest(message)


def test_digest_depends_on_domain() -> None:
    request = make_request()
    other_chain = Domain(chain_id=1, verifying_contract=DEAL_MANAGER)
    other_contract = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)

    assert request_digest(request, DOMAIN) != request_digest(request, other_chain)
    assert request_digest(request, DOMAIN) != request_digest(request, other_contract)


def test_for_input_hashes_input() -> None:
    request = CallRequest.for_input(
        deal_id=1, function_name="f", input=b"payload", nonce=0, deadline=10
    )

    assert request.input_hash == keccak(b"payload")


def test_domain_checksums_address() -> None:
    domain = Domain(chain_id=1, verifying_contract=DEAL_MANAGER.lower())

    assert domain.verifying_contract == DEAL_MANAGER


# Signing and recovery


@settings(max_examples=30, deadline=None)
@given(requests, domains, private_keys)
def test_request_sign_recover_round_trip(
    request: CallRequest, domain: Domain, private_key: bytes
) -> None:
    signature = sign_request(request, private_key, domain)
    address = Account.from_key(private_key).address

    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert recover_request_signer(request, signature, domain) == address
    assert verify_request(request, signature, domain, expected_signer=address, now=0) == address


@settings(max_examples=30, deadline=None)
@given(receipts, domains, private_keys)
def test_receipt_sign_recover_round_trip(
    receipt: Receipt, domain: Domain, private_key: bytes
) -> None:
    signature = sign_receipt(receipt, private_key, domain)
    address = Account.from_key(private_key).address

    assert recover_receipt_signer(receipt, signature, domain) == address
    assert verify_receipt(receipt, signature, domain, expected_signer=address) == address


@settings(max_examples=10, deadline=None)
@given(receipts, private_keys)
def test_signature_matches_eth_account_sign_typed_data(
    receipt: Receipt, private_key: bytes
) -> None:
    expected = Account.sign_typed_data(private_key, full_message=receipt_typed_data(receipt, DOMAIN))

    assert sign_receipt(receipt, private_key, DOMAIN) == bytes(expected.signature)


def test_verify_request_rejects_wrong_key() -> None:
    request = make_request()
    signature = sign_request(request, WORKER_KEY, DOMAIN)
    caller = Account.from_key(CALLER_KEY).address

    with pytest.raises(InvalidSignatureError, match=caller):
        verify_request(request, signature, DOMAIN, expected_signer=caller, now=0)


def test_verify_receipt_rejects_wrong_key() -> None:
    receipt = make_receipt()
    signature = sign_receipt(receipt, CALLER_KEY, DOMAIN)
    worker = Account.from_key(WORKER_KEY).address

    with pytest.raises(InvalidSignatureError, match=worker):
        verify_receipt(receipt, signature, DOMAIN, expected_signer=worker)


def test_verify_accepts_lower_case_expected_signer() -> None:
    request = make_request()
    signature = sign_request(request, CALLER_KEY, DOMAIN)
    caller = Account.from_key(CALLER_KEY).address

    assert verify_request(request, signature, DOMAIN, expected_signer=caller.lower(), now=0) == caller


@pytest.mark.parametrize(
    "changes",
    [
        {"deal_id": 8},
        {"function_name": "resize_image2"},
        {"input_hash": hash_input(b"other input")},
        {"nonce": 2},
        {"deadline": 1_700_000_001},
    ],
)
def test_changed_request_field_changes_signer(changes: dict[str, object]) -> None:
    signature = sign_request(make_request(), CALLER_KEY, DOMAIN)
    caller = Account.from_key(CALLER_KEY).address

    with pytest.raises(InvalidSignatureError):
        verify_request(make_request(**changes), signature, DOMAIN, expected_signer=caller, now=0)


@pytest.mark.parametrize(
    "changes",
    [
        {"worker_id": 4},
        {"request_hash": keccak(b"other request")},
        {"app_cid": bytes.fromhex("01701220") + keccak(b"app package")},
        {"output_hash": keccak(b"other output")},
        {"fuel_used": 12_346},
        {"epoch": 10},
        {"sequence": 1},
    ],
)
def test_changed_receipt_field_changes_signer(changes: dict[str, object]) -> None:
    signature = sign_receipt(make_receipt(), WORKER_KEY, DOMAIN)
    worker = Account.from_key(WORKER_KEY).address

    with pytest.raises(InvalidSignatureError):
        verify_receipt(make_receipt(**changes), signature, DOMAIN, expected_signer=worker)


def test_other_domain_recovers_other_signer() -> None:
    request = make_request()
    signature = sign_request(request, CALLER_KEY, DOMAIN)
    other = Domain(chain_id=1, verifying_contract=DEAL_MANAGER)

    assert recover_request_signer(request, signature, other) != Account.from_key(CALLER_KEY).address


# Deadlines


def test_request_valid_at_deadline() -> None:
    request = make_request(deadline=1_000)
    signature = sign_request(request, CALLER_KEY, DOMAIN)

    assert verify_request(request, signature, DOMAIN, now=1_000) == Account.from_key(CALLER_KEY).address


def test_request_expired_after_deadline() -> None:
    request = make_request(deadline=1_000)
    signature = sign_request(request, CALLER_KEY, DOMAIN)

    with pytest.raises(RequestExpiredError, match="deadline 1000"):
        verify_request(request, signature, DOMAIN, now=1_001)


@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=1, max_value=2**40))
def test_expired_check_precedes_signature_check(deadline: int, late_by: int) -> None:
    request = make_request(deadline=deadline)

    with pytest.raises(RequestExpiredError):
        verify_request(request, bytes(65), DOMAIN, now=deadline + late_by)


# Malformed signatures, rejected as OpenZeppelin's ECDSA.recover rejects them


@pytest.mark.parametrize("length", [0, 64, 66])
def test_recover_rejects_wrong_length(length: int) -> None:
    with pytest.raises(InvalidSignatureError, match="65 bytes"):
        recover_request_signer(make_request(), bytes(length), DOMAIN)


@pytest.mark.parametrize("v", [0, 1, 26, 29])
def test_recover_rejects_bad_v(v: int) -> None:
    signature = sign_request(make_request(), CALLER_KEY, DOMAIN)

    with pytest.raises(InvalidSignatureError, match="v must be 27 or 28"):
        recover_request_signer(make_request(), signature[:64] + bytes([v]), DOMAIN)


def test_recover_rejects_high_s() -> None:
    signature = sign_request(make_request(), CALLER_KEY, DOMAIN)

    with pytest.raises(InvalidSignatureError, match="low-s"):
        recover_request_signer(make_request(), high_s_twin(signature), DOMAIN)


def test_recover_rejects_zero_r() -> None:
    signature = sign_request(make_request(), CALLER_KEY, DOMAIN)

    with pytest.raises(InvalidSignatureError, match="signature r"):
        recover_request_signer(make_request(), bytes(32) + signature[32:], DOMAIN)


def test_recover_rejects_r_off_curve() -> None:
    # x = 5 is not the x coordinate of any secp256k1 point, so no key recovers.
    signature = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes([27])

    with pytest.raises(InvalidSignatureError, match="could not recover"):
        recover_request_signer(make_request(), signature, DOMAIN)


# Field checks


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"deal_id": -1}, "deal_id must fit in uint256"),
        ({"deal_id": 2**256}, "deal_id must fit in uint256"),
        ({"deal_id": True}, "deal_id must be an int"),
        ({"nonce": "1"}, "nonce must be an int"),
        ({"function_name": b"f"}, "function_name must be a str"),
        ({"function_name": "\ud800"}, "not valid UTF-8"),
        ({"input_hash": bytes(31)}, "input_hash must be 32 bytes"),
        ({"input_hash": "0x" + "00" * 32}, "input_hash must be 32 bytes"),
    ],
)
def test_request_rejects_invalid_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ReceiptError, match=message):
        make_request(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fuel_used": 2**64}, "fuel_used must fit in uint64"),
        ({"epoch": -1}, "epoch must fit in uint64"),
        ({"sequence": 2**64}, "sequence must fit in uint64"),
        ({"worker_id": 2**256}, "worker_id must fit in uint256"),
        ({"request_hash": bytes(33)}, "request_hash must be 32 bytes"),
        ({"output_hash": None}, "output_hash must be 32 bytes"),
        ({"app_cid": APP_CID[:35]}, "36-byte binary CIDv1"),
        ({"app_cid": b"\x00" + APP_CID[1:]}, "36-byte binary CIDv1"),
        ({"app_cid": APP_CID[:2] + b"\x13\x20" + APP_CID[4:]}, "sha2-256"),
        ({"app_cid": "bafkrei"}, "app_cid must be bytes"),
    ],
)
def test_receipt_rejects_invalid_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ReceiptError, match=message):
        make_receipt(**changes)


@pytest.mark.parametrize(
    "address",
    [
        "0x5fbdb2315678afecb367f032d93f642f64180aa",  # 19 bytes
        "5fbdb2315678afecb367f032d93f642f64180aa3",  # no 0x
        "0x5FbDB2315678afecb367f032d93F642f64180aA3",  # wrong checksum
    ],
)
def test_domain_rejects_invalid_address(address: str) -> None:
    with pytest.raises(ReceiptError, match="verifying_contract"):
        Domain(chain_id=1, verifying_contract=address)


def test_domain_rejects_negative_chain_id() -> None:
    with pytest.raises(ReceiptError, match="chain_id"):
        Domain(chain_id=-1, verifying_contract=DEAL_MANAGER)


def test_dataclasses_are_frozen() -> None:
    request = make_request()

    with pytest.raises(AttributeError):
        request.nonce = 2  # type: ignore[misc]
