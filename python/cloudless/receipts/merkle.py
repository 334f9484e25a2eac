"""Merkle trees of receipt digests in the layout of OpenZeppelin's StandardMerkleTree.

A tree built here has the same root and proofs as
`StandardMerkleTree.of(digests.map(d => [d]), ["bytes32"])` from
`@openzeppelin/merkle-tree` 1.0.8, so `MerkleProof.verify(proof, root, leaf)`
accepts its proofs on chain. The layout:

- leaf = keccak256(keccak256(abi.encode(bytes32 digest))). For one bytes32
  the ABI encoding is the digest itself.
- Leaves are sorted by hash (a stable sort, so equal leaves keep input order)
  and stored in reverse at the end of an array of 2n - 1 nodes.
- Node i has children 2i + 1 and 2i + 2, and its hash is keccak256 of the two
  children concatenated in ascending order. Node 0 is the root.

An epoch without receipts has no tree. Its root is `EMPTY_ROOT`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from eth_hash.auto import keccak

from cloudless.exceptions import MerkleProofError

__all__ = [
    "EMPTY_ROOT",
    "ReceiptMerkleTree",
    "leaf_hash",
    "node_hash",
    "process_proof",
    "verify_proof",
]

EMPTY_ROOT: Final = bytes(32)


def _check_node(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        actual = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise MerkleProofError(f"{name} must be 32 bytes, got {actual}")
    return value


def leaf_hash(digest: bytes) -> bytes:
    """Compute the Merkle leaf of a receipt digest, as `receiptLeaf` does on chain."""
    _check_node("receipt digest", digest)
    return keccak(keccak(digest))


def node_hash(a: bytes, b: bytes) -> bytes:
    """Hash two sibling nodes in ascending order, as OpenZeppelin's `Hashes.commutativeKeccak256` does."""
    return keccak(a + b) if a <= b else keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold `proof` into `leaf` and return the root it implies."""
    node = _check_node("leaf", leaf)
    for position, sibling in enumerate(proof):
        node = node_hash(node, _check_node(f"proof[{position}]", sibling))
    return node


def verify_proof(root: bytes, digest: bytes, proof: Sequence[bytes]) -> bool:
    """Return whether `proof` shows that receipt `digest` is in the tree with `root`.

    Raises MerkleProofError when `root`, `digest` or a proof node is not 32 bytes.
    No proof verifies against `EMPTY_ROOT`.
    """
    _check_node("root", root)
    return process_proof(leaf_hash(digest), proof) == root


class ReceiptMerkleTree:
    """Merkle tree of receipt digests. The digests may be given in any order."""

    __slots__ = ("_digests", "_leaves", "_nodes", "_tree_index", "_index_by_leaf")

    def __init__(self, digests: Iterable[bytes]) -> None:
        self._digests: tuple[bytes, ...] = tuple(digests)
        self._leaves: tuple[bytes, ...] = tuple(leaf_hash(digest) for digest in self._digests)

        count = len(self._leaves)
        # Python's sort is stable, like the JavaScript sort that
        # @openzeppelin/merkle-tree uses, so equal leaves land where it puts them.
        order = sorted(range(count), key=lambda index: self._leaves[index])
        nodes: list[bytes] = [b""] * max(2 * count - 1, 0)
        tree_index = [0] * count
        for sorted_position, value_index in enumerate(order):
            position = len(nodes) - 1 - sorted_position
            nodes[position] = self._leaves[value_index]
            tree_index[value_index] = position
        for position in range(len(nodes) - 1 - count, -1, -1):
            nodes[position] = node_hash(nodes[2 * position + 1], nodes[2 * position + 2])

        self._nodes: tuple[bytes, ...] = tuple(nodes)
        self._tree_index: tuple[int, ...] = tuple(tree_index)
        # A later duplicate replaces an earlier one, so proof(digest) picks the
        # last occurrence, as @openzeppelin/merkle-tree's getProof(value) does.
        self._index_by_leaf: dict[bytes, int] = {
            leaf: value_index for value_index, leaf in enumerate(self._leaves)
        }

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"ReceiptMerkleTree(leaves={len(self)}, root=0x{self.root.hex()})"

    @property
    def root(self) -> bytes:
        """Root of the tree, or `EMPTY_ROOT` when the tree has no leaves."""
        return self._nodes[0] if self._nodes else EMPTY_ROOT

    @property
    def digests(self) -> tuple[bytes, ...]:
        """Receipt digests in the order the tree was built from."""
        return self._digests

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """Leaf hashes in the order of `digests`, so `leaves[i]` is the leaf of `digests[i]`."""
        return self._leaves

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """All 2n - 1 nodes in array layout, root first, equal to `StandardMerkleTree.dump().tree`."""
        return self._nodes

    def index(self, digest: bytes) -> int:
        """Return the position of `digest` in `digests`, its last one if it occurs twice.

        Raises MerkleProofError when the digest is not in the tree.
        """
        leaf = leaf_hash(digest)
        try:
            return self._index_by_leaf[leaf]
        except KeyError:
            raise MerkleProofError(
                f"receipt digest 0x{digest.hex()} is not in the tree with root 0x{self.root.hex()}; "
                "check that the receipt belongs to this worker and epoch"
            ) from None

    def _value_index(self, index_or_digest: int | bytes) -> int:
        if isinstance(index_or_digest, bytes):
            return self.index(index_or_digest)
        if not isinstance(index_or_digest, int) or isinstance(index_or_digest, bool):
            raise MerkleProofError(
                "expected an int index or a 32-byte digest, "
                f"got {type(index_or_digest).__name__}"
            )
        if not 0 <= index_or_digest < len(self):
            raise MerkleProofError(
                f"receipt index {index_or_digest} is out of range for a tree of {len(self)} "
                f"receipts; use 0 to {len(self) - 1}"
            )
        return index_or_digest

    def proof(self, index_or_digest: int | bytes) -> list[bytes]:
        """Build the inclusion proof of one receipt, from leaf to root.

        `index_or_digest` is a position in `digests` or a digest itself. A tree
        of one leaf returns an empty proof. Raises MerkleProofError when the
        index is out of range or the digest is not in the tree.
        """
        proof: list[bytes] = []
        position = self._tree_index[self._value_index(index_or_digest)]
        while position > 0:
            # Odd positions are left children, so the sibling is to the right.
            sibling = position + 1 if position % 2 == 1 else position - 1
            proof.append(self._nodes[sibling])
            position = (position - 1) // 2
        return proof

    def verify(self, index_or_digest: int | bytes, proof: Sequence[bytes]) -> bool:
        """Return whether `proof` proves a digest, or the digest at an index, against this root.

        A digest that is not in the tree returns False. An index out of range
        raises MerkleProofError.
        """
        if isinstance(index_or_digest, bytes):
            digest = index_or_digest
        else:
            digest = self._digests[self._value_index(index_or_digest)]
        return verify_proof(self.root, digest, proof)
