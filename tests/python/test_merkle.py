"""Receipt Merkle trees: proofs verify, tampering fails, and trees equal @openzeppelin/merkle-tree's."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudless.exceptions import MerkleProofError
from cloudless.receipts.merkle import (
    EMPTY_ROOT,
    ReceiptMerkleTree,
    leaf_hash,
    node_hash,
    process_proof,
    verify_proof,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MERKLE_TREE_SCRIPT = Path(__file__).resolve().parent / "js" / "merkle_tree.mjs"

digests = st.binary(min_size=32, max_size=32)
digest_lists = st.lists(digests, min_size=1, max_size=64)
# Drawing from a small pool makes duplicate digests likely.
digest_lists_with_duplicates = st.lists(
    st.sampled_from([bytes([value]) * 32 for value in range(4)]), min_size=1, max_size=12
)


def flip_bit(value: bytes, bit: int = 0) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


def openzeppelin_trees(trees: list[list[bytes]]) -> list[dict[str, Any]]:
    """Build every tree in one Node process with @openzeppelin/merkle-tree."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH, so the @openzeppelin/merkle-tree cross-check cannot run")
    request = {"trees": [["0x" + digest.hex() for digest in tree] for tree in trees]}
    completed = subprocess.run(
        [node, str(MERKLE_TREE_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{MERKLE_TREE_SCRIPT.name} failed (run `npm install` in {REPO_ROOT}?): "
        f"{completed.stderr}"
    )
    result: list[dict[str, Any]] = json.loads(completed.stdout)
    assert len(result) == len(trees)
    return result


def to_hex_list(values: list[bytes] | tuple[bytes, ...]) -> list[str]:
    return ["0x" + value.hex() for value in values]


def assert_matches_openzeppelin(tree: ReceiptMerkleTree, reference: dict[str, Any]) -> None:
    assert "error" not in reference, reference.get("error")
    assert "0x" + tree.root.hex() == reference["root"]
    assert to_hex_list(tree.nodes) == reference["tree"]
    for index, expected_proof in enumerate(reference["proofs"]):
        assert to_hex_list(tree.proof(index)) == expected_proof, f"proof of index {index}"
    for index, expected_proof in enumerate(reference["proofsByValue"]):
        digest = tree.digests[index]
        assert to_hex_list(tree.proof(digest)) == expected_proof, f"proof of digest {index}"


# Leaves and nodes


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    digest = keccak(b"receipt")

    assert leaf_hash(digest) == keccak(keccak(abi_encode(["bytes32"], [digest])))


def test_node_hash_is_commutative() -> None:
    a, b = keccak(b"a"), keccak(b"b")

    assert node_hash(a, b) == node_hash(b, a)
    assert node_hash(a, b) == keccak(min(a, b) + max(a, b))


def test_leaf_hash_rejects_wrong_length() -> None:
    with pytest.raises(MerkleProofError, match="31 bytes"):
        leaf_hash(bytes(31))


# Small trees


def test_empty_tree_root_is_zero() -> None:
    tree = ReceiptMerkleTree([])

    assert tree.root == EMPTY_ROOT == bytes(32)
    assert len(tree) == 0
    assert tree.nodes == ()
    with pytest.raises(MerkleProofError, match="out of range"):
        tree.proof(0)


def test_empty_root_verifies_nothing() -> None:
    assert not verify_proof(EMPTY_ROOT, keccak(b"x"), [])


def test_single_leaf_root_is_leaf() -> None:
    digest = keccak(b"only receipt")
    tree = ReceiptMerkleTree([digest])

    assert tree.root == leaf_hash(digest)
    assert tree.proof(0) == []
    assert tree.proof(digest) == []
    assert verify_proof(tree.root, digest, [])


def test_three_leaf_root_matches_recorded_value() -> None:
    # Root printed by @openzeppelin/merkle-tree 1.0.8 for these three values,
    # so this test guards the layout even where Node is not installed.
    tree = ReceiptMerkleTree([bytes([0x11]) * 32, bytes([0x22]) * 32, bytes([0x33]) * 32])

    assert tree.root.hex() == "a9b9d19e00269b8e357d6b17ae987e7f306e63b8e77615ce706ec522974d2fea"


def test_proof_rejects_unknown_digest() -> None:
    tree = ReceiptMerkleTree([keccak(b"a"), keccak(b"b")])

    with pytest.raises(MerkleProofError, match="not in the tree"):
        tree.proof(keccak(b"c"))


@pytest.mark.parametrize("index", [-1, 2, 100])
def test_proof_rejects_index_out_of_range(index: int) -> None:
    tree = ReceiptMerkleTree([keccak(b"a"), keccak(b"b")])

    with pytest.raises(MerkleProofError, match="out of range"):
        tree.proof(index)


def test_proof_rejects_bool_index() -> None:
    tree = ReceiptMerkleTree([keccak(b"a"), keccak(b"b")])

    with pytest.raises(MerkleProofError, match="bool"):
        tree.proof(True)


def test_verify_proof_rejects_malformed_nodes() -> None:
    digest = keccak(b"a")

    with pytest.raises(MerkleProofError, match="root"):
        verify_proof(bytes(31), digest, [])
    with pytest.raises(MerkleProofError, match=r"proof\[1\]"):
        verify_proof(bytes(32), digest, [bytes(32), bytes(33)])


def test_tree_verify_returns_false_for_unknown_digest() -> None:
    tree = ReceiptMerkleTree([keccak(b"a"), keccak(b"b")])

    assert not tree.verify(keccak(b"c"), tree.proof(0))


# Properties over random trees


@given(digest_lists)
def test_every_proof_verifies(values: list[bytes]) -> None:
    tree = ReceiptMerkleTree(values)

    for index, digest in enumerate(values):
        proof = tree.proof(index)
        assert verify_proof(tree.root, digest, proof)
        assert tree.verify(index, proof)
        assert process_proof(tree.leaves[index], proof) == tree.root


@given(digest_lists, st.integers(min_value=0, max_value=255), st.data())
def test_tampered_proof_fails(values: list[bytes], bit: int, data: st.DataObject) -> None:
    tree = ReceiptMerkleTree(values)
    index = data.draw(st.integers(min_value=0, max_value=len(values) - 1))
    proof = tree.proof(index)

    assert not verify_proof(tree.root, flip_bit(values[index], bit), proof)
    assert not verify_proof(flip_bit(tree.root, bit), values[index], proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        tampered = list(proof)
        tampered[position] = flip_bit(tampered[position], bit)
        assert not verify_proof(tree.root, values[index], tampered)
        assert not verify_proof(tree.root, values[index], proof[:-1])


@given(st.lists(digests, min_size=2, max_size=16, unique=True))
def test_proof_does_not_fit_other_leaf(values: list[bytes]) -> None:
    tree = ReceiptMerkleTree(values)

    assert not verify_proof(tree.root, values[1], tree.proof(0))


@given(digest_lists, st.randoms(use_true_random=False))
def test_root_ignores_input_order(values: list[bytes], random: Any) -> None:
    shuffled = list(values)
    random.shuffle(shuffled)

    assert ReceiptMerkleTree(shuffled).root == ReceiptMerkleTree(values).root


def test_leaves_follow_input_order() -> None:
    values = [keccak(bytes([i])) for i in range(5)]
    tree = ReceiptMerkleTree(values)

    assert tree.digests == tuple(values)
    assert tree.leaves == tuple(leaf_hash(value) for value in values)


# Cross-check with @openzeppelin/merkle-tree


def test_matches_openzeppelin_for_sizes_1_to_64() -> None:
    trees = [[keccak(f"{size}:{i}".encode()) for i in range(size)] for size in range(1, 65)]
    trees.append([keccak(f"big:{i}".encode()) for i in range(257)])

    references = openzeppelin_trees(trees)

    for values, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(values), reference)


# Each example batches many trees into one Node process, because starting
# Node and loading the library costs about half a second.
@settings(max_examples=5, deadline=None)
@given(st.lists(digest_lists, min_size=10, max_size=30))
def test_matches_openzeppelin_random_trees(trees: list[list[bytes]]) -> None:
    references = openzeppelin_trees(trees)

    for values, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(values), reference)


@settings(max_examples=3, deadline=None)
@given(st.lists(digest_lists_with_duplicates, min_size=10, max_size=30))
def test_matches_openzeppelin_with_duplicates(trees: list[list[bytes]]) -> None:
    references = openzeppelin_trees(trees)

    for values, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(values), reference)


def test_openzeppelin_rejects_empty_tree() -> None:
    # @openzeppelin/merkle-tree has no empty tree, which is why an epoch
    # without receipts uses EMPTY_ROOT instead.
    (reference,) = openzeppelin_trees([[]])

    assert "non-zero number of leaves" in reference["error"]
