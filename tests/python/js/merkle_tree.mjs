// Build Merkle trees with @openzeppelin/merkle-tree, the reference that
// cloudless.receipts.merkle must match.
//
// stdin:  {"trees": [["0x<bytes32>", ...], ...]}
// stdout: [{"root", "tree", "proofs", "proofsByValue"} or {"error"}, ...]
//
// Each tree is StandardMerkleTree.of(values, ["bytes32"]). proofs[i] is
// getProof(i), and proofsByValue[i] is getProof of the value at i, which for
// a duplicated value is the proof of its last occurrence.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function describeTree(digests) {
  let tree;
  try {
    tree = StandardMerkleTree.of(
      digests.map((digest) => [digest]),
      ["bytes32"],
    );
  } catch (error) {
    return { error: String(error.message ?? error) };
  }
  return {
    root: tree.root,
    tree: tree.dump().tree,
    proofs: digests.map((_, index) => tree.getProof(index)),
    proofsByValue: digests.map((digest) => tree.getProof([digest])),
  };
}

const request = JSON.parse(await readStdin());
process.stdout.write(JSON.stringify(request.trees.map(describeTree)));
