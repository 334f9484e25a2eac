"""Python receipt hashing, signing, Merkle leaves and proofs against the Solidity `ExecutionReceipts`.

Run with `ape test`, which starts anvil. The `execution_receipts` fixture of
conftest.py deploys the contract. Every contract call here is a view, so the
tests leave no state behind.
"""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudless.exceptions import InvalidSignatureError
from cloudless.receipts.eip712 import (
    CallRequest,
    Domain,
    Receipt,
    receipt_digest,
    recover_request_signer,
    request_digest,
    sign_receipt,
    sign_request,
)
from cloudless.receipts.merkle import EMPTY_ROOT, ReceiptMerkleTree, leaf_hash

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Each example makes a few RPC calls to anvil, so fewer examples keep the run short.
onchain_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

uint64s = st.integers(min_value=0, max_value=2**64 - 1)
uint256s = st.integers(min_value=0, max_value=2**256 - 1)
hashes = st.binary(min_size=32, max_size=32)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda key: key.to_bytes(32, "big")
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


def request_struct(request: CallRequest) -> dict[str, Any]:
    return {
        "dealId": request.deal_id,
        "functionName": request.function_name,
        "inputHash": request.input_hash,
        "nonce": request.nonce,
        "deadline": request.deadline,
    }


def receipt_struct(receipt: Receipt) -> dict[str, Any]:
    return {
        "workerId": receipt.worker_id,
        "requestHash": receipt.request_hash,
        "appCid": receipt.app_cid,
        "outputHash": receipt.output_hash,
        "fuelUsed": receipt.fuel_used,
        "epoch": receipt.epoch,
        "sequence": receipt.sequence,
    }


def flip_bit(value: bytes, bit: int = 0) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


@pytest.fixture(scope="module")
def domain(execution_receipts: Any, chain: Any) -> Domain:
    return Domain(chain_id=chain.chain_id, verifying_contract=execution_receipts.address)


def test_contract_reports_domain(execution_receipts: Any, domain: Domain) -> None:
    fields = execution_receipts.eip712Domain()

    assert fields[1] == "Cloudless"
    assert fields[2] == "1"
    assert fields[3] == domain.chain_id
    assert fields[4] == domain.verifying_contract


@onchain_settings
@given(request=requests)
def test_request_digest_matches_contract(execution_receipts: Any, domain: Domain, request: CallRequest) -> None:
    on_chain = execution_receipts.hashCallRequest(request_struct(request))

    assert bytes(on_chain) == request_digest(request, domain)


@onchain_settings
@given(receipt=receipts)
def test_receipt_digest_matches_contract(execution_receipts: Any, domain: Domain, receipt: Receipt) -> None:
    on_chain = execution_receipts.hashReceipt(receipt_struct(receipt))

    assert bytes(on_chain) == receipt_digest(receipt, domain)


@onchain_settings
@given(request=requests, private_key=private_keys)
def test_contract_recovers_request_signer(
    execution_receipts: Any, domain: Domain, request: CallRequest, private_key: bytes
) -> None:
    signature = sign_request(request, private_key, domain)

    signer = execution_receipts.recoverCallRequestSigner(request_struct(request), signature)

    assert signer == Account.from_key(private_key).address


@onchain_settings
@given(receipt=receipts, private_key=private_keys)
def test_contract_recovers_receipt_signer(
    execution_receipts: Any, domain: Domain, receipt: Receipt, private_key: bytes
) -> None:
    signature = sign_receipt(receipt, private_key, domain)

    signer = execution_receipts.recoverReceiptSigner(receipt_struct(receipt), signature)

    assert signer == Account.from_key(private_key).address


def test_high_s_signature_rejected_by_both(execution_receipts: Any, domain: Domain) -> None:
    request = CallRequest(deal_id=1, function_name="f", input_hash=bytes(32), nonce=0, deadline=0)
    signature = sign_request(request, bytes.fromhex("01" * 32), domain)
    s = int.from_bytes(signature[32:64], "big")
    high_s = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])

    with pytest.raises(ContractLogicError):
        execution_receipts.recoverCallRequestSigner(request_struct(request), high_s)
    with pytest.raises(InvalidSignatureError):
        recover_request_signer(request, high_s, domain)


def test_zero_v_signature_rejected_by_both(execution_receipts: Any, domain: Domain) -> None:
    request = CallRequest(deal_id=1, function_name="f", input_hash=bytes(32), nonce=0, deadline=0)
    signature = sign_request(request, bytes.fromhex("01" * 32), domain)
    zero_v = signature[:64] + bytes([signature[64] - 27])

    with pytest.raises(ContractLogicError):
        execution_receipts.recoverCallRequestSigner(request_struct(request), zero_v)
    with pytest.raises(InvalidSignatureError):
        recover_request_signer(request, zero_v, domain)


@onchain_settings
@given(digest=hashes, index=uint64s, fuel_before=uint64s)
def test_receipt_leaf_matches_contract(execution_receipts: Any, digest: bytes, index: int, fuel_before: int) -> None:
    on_chain = execution_receipts.receiptLeaf(digest, index, fuel_before)

    assert bytes(on_chain) == leaf_hash(digest, index, fuel_before)


# Fuel per receipt stays below 2**58, so 64 receipts add up to less than 2**64.
leaf_rows = st.lists(st.tuples(hashes, st.integers(min_value=0, max_value=2**58)), min_size=1, max_size=64)


@onchain_settings
@given(rows=leaf_rows, bit=st.integers(0, 255), data=st.data())
def test_python_proofs_pass_on_chain(
    execution_receipts: Any, rows: list[tuple[bytes, int]], bit: int, data: st.DataObject
) -> None:
    tree = ReceiptMerkleTree(rows)
    index = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    opening = tree.opening(index)
    digest, fuel_before, proof = opening.digest, opening.fuel_before, list(opening.proof)
    verify = execution_receipts.verifyReceiptInclusion

    assert (opening.index, digest, fuel_before) == (index, rows[index][0], sum(fuel for _, fuel in rows[:index]))
    assert verify(tree.root, digest, index, fuel_before, proof)
    assert not verify(tree.root, flip_bit(digest, bit), index, fuel_before, proof)
    assert not verify(flip_bit(tree.root, bit), digest, index, fuel_before, proof)
    # The leaf commits its position and running fuel total, so neither can change.
    assert not verify(tree.root, digest, index + 1, fuel_before, proof)
    assert not verify(tree.root, digest, index, fuel_before + 1, proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        tampered = list(proof)
        tampered[position] = flip_bit(tampered[position], bit)
        assert not verify(tree.root, digest, index, fuel_before, tampered)


def test_every_opening_of_tree_passes_on_chain(execution_receipts: Any) -> None:
    rows = [(bytes([i]) * 32, 1_000 * i) for i in range(1, 18)]
    tree = ReceiptMerkleTree(rows)

    for index in range(len(rows)):
        opening = tree.opening(index)
        assert execution_receipts.verifyReceiptInclusion(
            tree.root, opening.digest, opening.index, opening.fuel_before, list(opening.proof)
        ), index


def test_opening_by_digest_passes_on_chain(execution_receipts: Any) -> None:
    rows = [(bytes([i]) * 32, 7) for i in range(1, 6)]
    tree = ReceiptMerkleTree(rows)

    opening = tree.opening(rows[3][0])

    assert (opening.index, opening.fuel_before) == (3, 21)
    assert execution_receipts.verifyReceiptInclusion(tree.root, opening.digest, 3, 21, list(opening.proof))


def test_single_leaf_tree_passes_on_chain(execution_receipts: Any) -> None:
    digest = bytes([7]) * 32
    tree = ReceiptMerkleTree([(digest, 500)])

    assert tree.root == leaf_hash(digest, 0, 0)
    assert execution_receipts.verifyReceiptInclusion(tree.root, digest, 0, 0, [])


def test_empty_root_proves_nothing_on_chain(execution_receipts: Any) -> None:
    assert not execution_receipts.verifyReceiptInclusion(EMPTY_ROOT, bytes([7]) * 32, 0, 0, [])
