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
/// `requestHash` is the request's EIP-712 digest. The Merkle leaf of a receipt
/// is `keccak256(bytes.concat(keccak256(abi.encode(receiptDigest))))`, the leaf
/// format of OpenZeppelin's StandardMerkleTree for a single `bytes32` value, so
/// `MerkleProof.verify` checks inclusion.
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

    /// @notice Merkle leaf of a receipt digest.
    function receiptLeaf(bytes32 receiptDigest) external pure returns (bytes32);

    /// @notice Whether `receiptDigest` is in the tree with `root`, by OpenZeppelin's `MerkleProof.verify`.
    function verifyReceiptInclusion(bytes32 root, bytes32 receiptDigest, bytes32[] calldata proof)
        external
        pure
        returns (bool);
}
