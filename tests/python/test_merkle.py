"""Receipt Merkle trees: proofs verify, tampering fails, and trees equal @openzeppelin/merkle-tree's.

A leaf commits (receipt digest, leaf index, fuel before the leaf). The
cross-check builds `StandardMerkleTree.of(rows, ["bytes32", "uint256",
"uint256"])` in Node from rows computed here, independently of the tree code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from itertools import accumulate
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
    NO_OPENING,
    LeafOpening,
    ReceiptMerkleTree,
    leaf_hash,
    node_hash,
    process_proof,
    verify_proof,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MERKLE_TREE_SCRIPT = Path(__file__).resolve().parent / "js" / "merkle_tree.mjs"
UINT64_MAX = 2**64 - 1

digests = st.binary(min_size=32, max_size=32)
# Fuel per receipt: small values, zero, and values large enough that a few of
# them pass 2**53, where JavaScript numbers lose precision.
fuel_amounts = st.one_of(st.integers(0, 1_000_000), st.integers(2**53, 2**57))
receipt_lists = st.lists(st.tuples(digests, fuel_amounts), min_size=1, max_size=64)
# Drawing digests from a small pool makes duplicates likely.
receipt_lists_with_duplicates = st.lists(
    st.tuples(st.sampled_from([bytes([value]) * 32 for value in range(4)]), st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


def flip_bit(value: bytes, bit: int = 0) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


def fuel_before(receipts: list[tuple[bytes, int]]) -> list[int]:
    """Running fuel totals before each receipt, computed without the tree code."""
    return [0, *accumulate(fuel for _, fuel in receipts)][: len(receipts)]


def leaf_rows(receipts: list[tuple[bytes, int]]) -> list[list[str]]:
    """Rows (digest, index, fuel before) for StandardMerkleTree, numbers as decimal strings."""
    return [
        ["0x" + digest.hex(), str(index), str(before)]
        for index, ((digest, _), before) in enumerate(zip(receipts, fuel_before(receipts)))
    ]


def openzeppelin_trees(trees: list[list[tuple[bytes, int]]]) -> list[dict[str, Any]]:
    """Build every tree in one Node process with @openzeppelin/merkle-tree."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH, so the @openzeppelin/merkle-tree cross-check cannot run")
    request = {"trees": [leaf_rows(tree) for tree in trees]}
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
        assert to_hex_list(tree.opening(index).proof) == expected_proof, f"opening of index {index}"
    for index, expected_proof in enumerate(reference["proofsByValue"]):
        assert to_hex_list(tree.proof(index)) == expected_proof, f"proof of row {index}"


# Leaves and nodes


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    digest = keccak(b"receipt")

    expected = keccak(keccak(abi_encode(["bytes32", "uint256", "uint256"], [digest, 7, 12_345])))
    assert leaf_hash(digest, 7, 12_345) == expected


def test_leaf_hash_commits_index_and_fuel() -> None:
    digest = keccak(b"receipt")

    assert leaf_hash(digest, 0, 0) != leaf_hash(digest, 1, 0)
    assert leaf_hash(digest, 0, 0) != leaf_hash(digest, 0, 1)


def test_node_hash_is_commutative() -> None:
    a, b = keccak(b"a"), keccak(b"b")

    assert node_hash(a, b) == node_hash(b, a)
    assert node_hash(a, b) == keccak(min(a, b) + max(a, b))


def test_leaf_hash_rejects_wrong_length() -> None:
    with pytest.raises(MerkleProofError, match="31 bytes"):
        leaf_hash(bytes(31), 0, 0)


@pytest.mark.parametrize(
    ("index", "fuel", "message"),
    [(-1, 0, "leaf index"), (2**64, 0, "leaf index"), (0, -1, "fuel before"), (0, 2**64, "fuel before")],
)
def test_leaf_hash_rejects_out_of_range_numbers(index: int, fuel: int, message: str) -> None:
    with pytest.raises(MerkleProofError, match=message):
        leaf_hash(keccak(b"a"), index, fuel)


# Small trees


def test_empty_tree_root_is_zero() -> None:
    tree = ReceiptMerkleTree([])

    assert tree.root == EMPTY_ROOT == bytes(32)
    assert len(tree) == 0
    assert tree.nodes == ()
    assert tree.total_fuel == 0
    with pytest.raises(MerkleProofError, match="out of range"):
        tree.proof(0)


def test_empty_root_verifies_nothing() -> None:
    assert not verify_proof(EMPTY_ROOT, keccak(b"x"), 0, 0, [])


def test_single_leaf_root_is_leaf() -> None:
    digest = keccak(b"only receipt")
    tree = ReceiptMerkleTree([(digest, 500)])

    assert tree.root == leaf_hash(digest, 0, 0)
    assert tree.proof(0) == []
    assert tree.proof(digest) == []
    assert tree.total_fuel == 500
    assert verify_proof(tree.root, digest, 0, 0, [])


def test_three_leaf_root_matches_recorded_value() -> None:
    # Root printed by @openzeppelin/merkle-tree 1.0.8 for the rows
    # (0x11..11, 0, 0), (0x22..22, 1, 100), (0x33..33, 2, 300), so this test
    # guards the layout even where Node is not installed.
    tree = ReceiptMerkleTree([(bytes([0x11]) * 32, 100), (bytes([0x22]) * 32, 200), (bytes([0x33]) * 32, 5)])

    assert tree.fuel_before == (0, 100, 300)
    assert tree.total_fuel == 305
    assert tree.root.hex() == "e1253735f81120141e00c60b982750d391b39c375231f007cdfdb39334d6dcee"


def test_opening_names_leaf_and_fuel() -> None:
    receipts = [(keccak(bytes([i])), 10 * (i + 1)) for i in range(5)]
    tree = ReceiptMerkleTree(receipts)

    opening = tree.opening(3)

    assert opening == LeafOpening(digest=receipts[3][0], index=3, fuel_before=60, proof=tuple(tree.proof(3)))
    assert tree.opening(receipts[3][0]) == opening
    assert opening.as_tuple() == (receipts[3][0], 3, 60, list(opening.proof))


def test_opening_json_round_trip() -> None:
    tree = ReceiptMerkleTree([(keccak(bytes([i])), i) for i in range(4)])
    opening = tree.opening(2)

    encoded = json.loads(json.dumps(opening.to_json()))

    assert encoded["digest"] == "0x" + opening.digest.hex()
    assert encoded["index"] == 2
    assert encoded["fuel_before"] == 1
    assert LeafOpening.from_json(encoded) == opening


@pytest.mark.parametrize(
    "change",
    [
        {"digest": "0x1234"},
        {"index": -1},
        {"fuel_before": 2**64},
        {"proof": "0x00"},
        {"proof": ["not hex"]},
    ],
)
def test_opening_from_json_rejects_malformed(change: dict[str, object]) -> None:
    encoded = ReceiptMerkleTree([(keccak(b"a"), 1), (keccak(b"b"), 2)]).opening(1).to_json()
    encoded.update(change)

    with pytest.raises(MerkleProofError):
        LeafOpening.from_json(encoded)


def test_no_opening_is_zero_leaf() -> None:
    assert NO_OPENING.as_tuple() == (bytes(32), 0, 0, [])


def test_proof_rejects_unknown_digest() -> None:
    tree = ReceiptMerkleTree([(keccak(b"a"), 1), (keccak(b"b"), 1)])

    with pytest.raises(MerkleProofError, match="not in the tree"):
        tree.proof(keccak(b"c"))


@pytest.mark.parametrize("index", [-1, 2, 100])
def test_proof_rejects_index_out_of_range(index: int) -> None:
    tree = ReceiptMerkleTree([(keccak(b"a"), 1), (keccak(b"b"), 1)])

    with pytest.raises(MerkleProofError, match="out of range"):
        tree.proof(index)


def test_proof_rejects_bool_index() -> None:
    tree = ReceiptMerkleTree([(keccak(b"a"), 1), (keccak(b"b"), 1)])

    with pytest.raises(MerkleProofError, match="bool"):
        tree.proof(True)


def test_tree_rejects_fuel_total_past_uint64() -> None:
    with pytest.raises(MerkleProofError, match="epoch fuel total"):
        ReceiptMerkleTree([(keccak(b"a"), UINT64_MAX), (keccak(b"b"), 1)])


def test_verify_proof_rejects_malformed_nodes() -> None:
    digest = keccak(b"a")

    with pytest.raises(MerkleProofError, match="root"):
        verify_proof(bytes(31), digest, 0, 0, [])
    with pytest.raises(MerkleProofError, match=r"proof\[1\]"):
        verify_proof(bytes(32), digest, 0, 0, [bytes(32), bytes(33)])


def test_tree_verify_returns_false_for_unknown_digest() -> None:
    tree = ReceiptMerkleTree([(keccak(b"a"), 1), (keccak(b"b"), 1)])

    assert not tree.verify(keccak(b"c"), tree.proof(0))


def test_duplicate_digest_maps_to_first_index() -> None:
    digest = keccak(b"twice")
    tree = ReceiptMerkleTree([(digest, 1), (keccak(b"other"), 2), (digest, 3)])

    assert tree.index(digest) == 0
    assert tree.opening(digest).index == 0
    assert tree.opening(2).fuel_before == 3
    assert tree.leaves[0] != tree.leaves[2]


# Properties over random trees. Building trees of up to 64 leaves can take
# longer than hypothesis' default deadline of 200 ms on a busy machine, so
# these properties run without one.


@settings(deadline=None)
@given(receipt_lists)
def test_every_proof_verifies(receipts: list[tuple[bytes, int]]) -> None:
    tree = ReceiptMerkleTree(receipts)
    befores = fuel_before(receipts)

    assert tree.fuel_before == tuple(befores)
    assert tree.total_fuel == sum(fuel for _, fuel in receipts)
    for index, (digest, _) in enumerate(receipts):
        proof = tree.proof(index)
        assert verify_proof(tree.root, digest, index, befores[index], proof)
        assert tree.verify(index, proof)
        assert process_proof(tree.leaves[index], proof) == tree.root


@settings(deadline=None)
@given(receipt_lists, st.integers(min_value=0, max_value=255), st.data())
def test_tampered_opening_fails(receipts: list[tuple[bytes, int]], bit: int, data: st.DataObject) -> None:
    tree = ReceiptMerkleTree(receipts)
    index = data.draw(st.integers(min_value=0, max_value=len(receipts) - 1))
    opening = tree.opening(index)
    digest, before, proof = opening.digest, opening.fuel_before, list(opening.proof)

    assert verify_proof(tree.root, digest, index, before, proof)
    assert not verify_proof(tree.root, flip_bit(digest, bit), index, before, proof)
    assert not verify_proof(flip_bit(tree.root, bit), digest, index, before, proof)
    other_index = data.draw(st.integers(min_value=0, max_value=UINT64_MAX).filter(lambda value: value != index))
    assert not verify_proof(tree.root, digest, other_index, before, proof)
    other_fuel = data.draw(st.integers(min_value=0, max_value=UINT64_MAX).filter(lambda value: value != before))
    assert not verify_proof(tree.root, digest, index, other_fuel, proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        tampered = list(proof)
        tampered[position] = flip_bit(tampered[position], bit)
        assert not verify_proof(tree.root, digest, index, before, tampered)
        assert not verify_proof(tree.root, digest, index, before, proof[:-1])


@settings(deadline=None)
@given(st.lists(st.tuples(digests, fuel_amounts), min_size=2, max_size=16, unique_by=lambda row: row[0]))
def test_proof_does_not_fit_other_leaf(receipts: list[tuple[bytes, int]]) -> None:
    tree = ReceiptMerkleTree(receipts)
    second = tree.opening(1)

    assert not verify_proof(tree.root, second.digest, second.index, second.fuel_before, tree.proof(0))


@settings(deadline=None)
@given(receipt_lists, st.randoms(use_true_random=False))
def test_root_depends_on_order(receipts: list[tuple[bytes, int]], random: Any) -> None:
    shuffled = list(receipts)
    random.shuffle(shuffled)
    # Leaves commit their index, so a reordering changes the root unless the
    # rows stay the same: equal (digest, fuel before) at every index.
    same_rows = [row[0] for row in shuffled] == [row[0] for row in receipts] and fuel_before(shuffled) == fuel_before(
        receipts
    )

    assert (ReceiptMerkleTree(shuffled).root == ReceiptMerkleTree(receipts).root) == same_rows


def test_leaves_follow_input_order() -> None:
    receipts = [(keccak(bytes([i])), i + 1) for i in range(5)]
    tree = ReceiptMerkleTree(receipts)

    assert tree.digests == tuple(digest for digest, _ in receipts)
    assert tree.leaves == tuple(
        leaf_hash(digest, index, before)
        for index, ((digest, _), before) in enumerate(zip(receipts, fuel_before(receipts)))
    )


# Cross-check with @openzeppelin/merkle-tree


def test_matches_openzeppelin_for_sizes_1_to_64() -> None:
    trees = [[(keccak(f"{size}:{i}".encode()), 1_000 * i + size) for i in range(size)] for size in range(1, 65)]
    trees.append([(keccak(f"big:{i}".encode()), 2**55 + i) for i in range(257)])

    references = openzeppelin_trees(trees)

    for receipts, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(receipts), reference)


# Each example batches many trees into one Node process, because starting
# Node and loading the library costs about half a second.
@settings(max_examples=5, deadline=None)
@given(st.lists(receipt_lists, min_size=10, max_size=30))
def test_matches_openzeppelin_random_trees(trees: list[list[tuple[bytes, int]]]) -> None:
    references = openzeppelin_trees(trees)

    for receipts, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(receipts), reference)


@settings(max_examples=3, deadline=None)
@given(st.lists(receipt_lists_with_duplicates, min_size=10, max_size=30))
def test_matches_openzeppelin_with_duplicates(trees: list[list[tuple[bytes, int]]]) -> None:
    references = openzeppelin_trees(trees)

    for receipts, reference in zip(trees, references, strict=True):
        assert_matches_openzeppelin(ReceiptMerkleTree(receipts), reference)


def test_openzeppelin_rejects_empty_tree() -> None:
    # @openzeppelin/merkle-tree has no empty tree, which is why an epoch
    # without receipts uses EMPTY_ROOT instead.
    (reference,) = openzeppelin_trees([[]])

    assert "non-zero number of leaves" in reference["error"]
