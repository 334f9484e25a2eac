// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title EIP-712 call requests, execution receipts and their Merkle leaves.
/// @notice The EIP-712 domain is name "Cloudless", version "1", the chain id and
/// the DealManager's address. The type strings are:
///
///   CallRequest(uint256 dealId,string functionName,bytes32 inputHash,uint256 nonce,uint256 deadline)
///   Receipt(uint256 workerId,bytes32 requestHash,bytes appCid,bytes32 outputHash,uint64 fuelUsed,uint64 epoch,uint64 sequence)
///
/// A caller signs a CallRequest. The worker's peer signer signs a Receipt whose
/// `requestHash` is the request's EIP-712 digest.
///
/// An epoch's receipts, in sequence order, are the leaves of its Merkle tree.
/// Leaf `index` commits the receipt digest, its position and `fuelBefore`, the
/// fuel of the receipts before it in the epoch:
/// `keccak256(bytes.concat(keccak256(abi.encode(receiptDigest, index, fuelBefore))))`.
/// That is the leaf format of OpenZeppelin's StandardMerkleTree for the types
/// `(bytes32, uint256, uint256)`, so `MerkleProof.verify` checks inclusion. The
/// position lets a challenge name one leaf, and the running fuel total lets one
/// opened leaf and its neighbour show whether the epoch's usage adds up.
interface IExecutionReceipts {
    struct CallRequest {
        uint256 dealId;
        string functionName;
        bytes32 inputHash; // keccak256 of the call's input bytes
        uint256 nonce;
        uint256 deadline; // unix seconds
    }

    struct Receipt {
        uint256 workerId;
        bytes32 requestHash; // EIP-712 digest of the CallRequest
        bytes appCid;
        bytes32 outputHash; // keccak256 of the output bytes (or of the error JSON)
        uint64 fuelUsed;
        uint64 epoch;
        uint64 sequence; // per worker, starts at 0
    }

    /// @notice EIP-712 digest of a call request under this contract's domain.
    function hashCallRequest(CallRequest calldata request) external view returns (bytes32);

    /// @notice EIP-712 digest of a receipt under this contract's domain.
    function hashReceipt(Receipt calldata receipt) external view returns (bytes32);

    /// @notice Address that signed `request`, from a 65-byte signature.
    function recoverCallRequestSigner(CallRequest calldata request, bytes calldata signature)
        external
        view
        returns (address);

    /// @notice Address that signed `receipt`, from a 65-byte signature.
    function recoverReceiptSigner(Receipt calldata receipt, bytes calldata signature) external view returns (address);

    /// @notice Merkle leaf of the receipt at position `index` of its epoch, after
    /// `fuelBefore` fuel of earlier receipts.
    function receiptLeaf(bytes32 receiptDigest, uint64 index, uint64 fuelBefore) external pure returns (bytes32);

    /// @notice Whether the leaf (`receiptDigest`, `index`, `fuelBefore`) is in the
    /// tree with `root`, by OpenZeppelin's `MerkleProof.verify`.
    function verifyReceiptInclusion(
        bytes32 root,
        bytes32 receiptDigest,
        uint64 index,
        uint64 fuelBefore,
        bytes32[] calldata proof
    ) external pure returns (bool);
}
