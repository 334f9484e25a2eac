// Build Merkle trees with @openzeppelin/merkle-tree, the reference that
// cloudless.receipts.merkle must match.
//
// stdin:  {"trees": [[["0x<bytes32 digest>", "<index>", "<fuel before>"], ...], ...]}
// stdout: [{"root", "tree", "proofs", "proofsByValue"} or {"error"}, ...]
//
// Each tree is StandardMerkleTree.of(rows, ["bytes32", "uint256", "uint256"]).
// Index and fuel arrive as decimal strings, because fuel totals can pass
// 2**53, where a JavaScript number loses precision. proofs[i] is getProof(i)
// and proofsByValue[i] is getProof(rows[i]).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const LEAF_ENCODING = ["bytes32", "uint256", "uint256"];

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function describeTree(rows) {
  let tree;
  try {
    tree = StandardMerkleTree.of(rows, LEAF_ENCODING);
  } catch (error) {
    return { error: String(error.message ?? error) };
  }
  return {
    root: tree.root,
    tree: tree.dump().tree,
    proofs: rows.map((_, index) => tree.getProof(index)),
    proofsByValue: rows.map((row) => tree.getProof(row)),
  };
}

const request = JSON.parse(await readStdin());
process.stdout.write(JSON.stringify(request.trees.map(describeTree)));
