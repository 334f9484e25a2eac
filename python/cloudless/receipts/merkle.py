"""Merkle trees of an epoch's receipts in the layout of OpenZeppelin's StandardMerkleTree.

The receipts of one worker and epoch, in sequence order, are the leaves. Leaf
`index` commits three values: the receipt digest, the index itself and
`fuel_before`, the fuel of the receipts before it. The index lets a challenge
name one leaf; the running fuel total lets one opened leaf and its neighbour
show whether the epoch's usage adds up (see docs/proofs.md).

A tree built here has the same root and proofs as
`StandardMerkleTree.of(rows, ["bytes32", "uint256", "uint256"])` from
`@openzeppelin/merkle-tree` 1.0.8, so `MerkleProof.verify(proof, root, leaf)`
accepts its proofs on chain. The layout:

- leaf = keccak256(keccak256(abi.encode(digest, index, fuel_before))).
- Leaves are sorted by hash and stored in reverse at the end of an array of
  2n - 1 nodes.
- Node i has children 2i + 1 and 2i + 2, and its hash is keccak256 of the two
  children concatenated in ascending order. Node 0 is the root.

An epoch without receipts has no tree. Its root is `EMPTY_ROOT`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from eth_hash.auto import keccak

from cloudless.exceptions import MerkleProofError

__all__ = [
    "EMPTY_ROOT",
    "LeafOpening",
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


def _check_uint64(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise MerkleProofError(f"{name} must be an integer from 0 to 2**64 - 1, got {value!r}")
    return value


def leaf_hash(digest: bytes, index: int, fuel_before: int) -> bytes:
    """Compute the Merkle leaf of the receipt at `index`, as `receiptLeaf` does on chain."""
    _check_node("receipt digest", digest)
    encoded = (
        digest
        + _check_uint64("leaf index", index).to_bytes(32, "big")
        + _check_uint64("fuel before", fuel_before).to_bytes(32, "big")
    )
    return keccak(keccak(encoded))


def node_hash(a: bytes, b: bytes) -> bytes:
    """Hash two sibling nodes in ascending order, as OpenZeppelin's `Hashes.commutativeKeccak256` does."""
    return keccak(a + b) if a <= b else keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold `proof` into `leaf` and return the root it implies."""
    node = _check_node("leaf", leaf)
    for position, sibling in enumerate(proof):
        node = node_hash(node, _check_node(f"proof[{position}]", sibling))
    return node


def verify_proof(root: bytes, digest: bytes, index: int, fuel_before: int, proof: Sequence[bytes]) -> bool:
    """Return whether `proof` shows that leaf (`digest`, `index`, `fuel_before`) is in the tree with `root`.

    Raises MerkleProofError when `root`, `digest` or a proof node is not 32
    bytes. No proof verifies against `EMPTY_ROOT`.
    """
    _check_node("root", root)
    return process_proof(leaf_hash(digest, index, fuel_before), proof) == root


@dataclass(frozen=True)
class LeafOpening:
    """One leaf of a receipts tree and its Merkle path, as a challenge answer sends it."""

    digest: bytes
    index: int
    fuel_before: int
    proof: tuple[bytes, ...]

    def as_tuple(self) -> tuple[bytes, int, int, list[bytes]]:
        """Build the `LeafOpening` struct of the ChallengeManager's ABI."""
        return (self.digest, self.index, self.fuel_before, list(self.proof))

    def to_json(self) -> dict[str, object]:
        return {
            "digest": "0x" + self.digest.hex(),
            "index": self.index,
            "fuel_before": self.fuel_before,
            "proof": ["0x" + node.hex() for node in self.proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LeafOpening:
        """Parse `to_json` output; raises MerkleProofError on a malformed field."""
        try:
            proof = data["proof"]
            if not isinstance(proof, list):
                raise TypeError("proof is not a list")
            return cls(
                digest=_check_node("digest", bytes.fromhex(str(data["digest"]).removeprefix("0x"))),
                index=_check_uint64("index", data["index"]),
                fuel_before=_check_uint64("fuel_before", data["fuel_before"]),
                proof=tuple(
                    _check_node(f"proof[{i}]", bytes.fromhex(str(node).removeprefix("0x")))
                    for i, node in enumerate(proof)
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MerkleProofError(f"malformed leaf opening: {error}") from None


NO_OPENING: Final = LeafOpening(digest=bytes(32), index=0, fuel_before=0, proof=())
"""The `next` opening of an answer whose leaf is the epoch's last: the contract ignores it."""


class ReceiptMerkleTree:
    """Merkle tree of one epoch's receipts, given as (digest, fuel used) pairs in sequence order."""

    __slots__ = ("_digests", "_fuel_before", "_total_fuel", "_leaves", "_nodes", "_tree_index", "_index_by_digest")

    def __init__(self, receipts: Iterable[tuple[bytes, int]]) -> None:
        digests: list[bytes] = []
        fuel_before: list[int] = []
        total = 0
        for digest, fuel_used in receipts:
            digests.append(_check_node("receipt digest", digest))
            fuel_before.append(total)
            total += _check_uint64("fuel used", fuel_used)
        self._digests: tuple[bytes, ...] = tuple(digests)
        self._fuel_before: tuple[int, ...] = tuple(fuel_before)
        self._total_fuel = _check_uint64("epoch fuel total", total)
        self._leaves: tuple[bytes, ...] = tuple(
            leaf_hash(digest, index, before) for index, (digest, before) in enumerate(zip(digests, fuel_before))
        )

        count = len(self._leaves)
        # Python's sort is stable, like the JavaScript sort that
        # @openzeppelin/merkle-tree uses. Leaves differ anyway, because each
        # contains its own index.
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
        # A digest that occurs twice maps to its first index.
        self._index_by_digest: dict[bytes, int] = {}
        for index, digest in enumerate(digests):
            self._index_by_digest.setdefault(digest, index)

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
        """Receipt digests in leaf index order."""
        return self._digests

    @property
    def fuel_before(self) -> tuple[int, ...]:
        """Running fuel total before each leaf, in leaf index order."""
        return self._fuel_before

    @property
    def total_fuel(self) -> int:
        """Fuel of all receipts: the usage an epoch proof of this tree reports."""
        return self._total_fuel

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """Leaf hashes in index order, so `leaves[i]` is the leaf of `digests[i]`."""
        return self._leaves

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """All 2n - 1 nodes in array layout, root first, equal to `StandardMerkleTree.dump().tree`."""
        return self._nodes

    def index(self, digest: bytes) -> int:
        """Return the leaf index of `digest`, its first one if it occurs twice.

        Raises MerkleProofError when the digest is not in the tree.
        """
        _check_node("receipt digest", digest)
        try:
            return self._index_by_digest[digest]
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
        """Build the inclusion proof of one leaf, from leaf to root.

        `index_or_digest` is a leaf index or a receipt digest. A tree of one
        leaf returns an empty proof. Raises MerkleProofError when the index is
        out of range or the digest is not in the tree.
        """
        proof: list[bytes] = []
        position = self._tree_index[self._value_index(index_or_digest)]
        while position > 0:
            # Odd positions are left children, so the sibling is to the right.
            sibling = position + 1 if position % 2 == 1 else position - 1
            proof.append(self._nodes[sibling])
            position = (position - 1) // 2
        return proof

    def opening(self, index_or_digest: int | bytes) -> LeafOpening:
        """Return the leaf at an index, or of a digest, with its Merkle path."""
        index = self._value_index(index_or_digest)
        return LeafOpening(
            digest=self._digests[index],
            index=index,
            fuel_before=self._fuel_before[index],
            proof=tuple(self.proof(index)),
        )

    def verify(self, index_or_digest: int | bytes, proof: Sequence[bytes]) -> bool:
        """Return whether `proof` proves the leaf at an index, or of a digest, against this root.

        A digest that is not in the tree returns False. An index out of range
        raises MerkleProofError.
        """
        if isinstance(index_or_digest, bytes):
            if index_or_digest not in self._index_by_digest:
                return False
        index = self._value_index(index_or_digest)
        return verify_proof(self.root, self._digests[index], index, self._fuel_before[index], proof)
