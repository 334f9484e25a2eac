// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IExecutionReceipts} from "../interfaces/IExecutionReceipts.sol";

/// @title EIP-712 hashing and signer recovery for call requests and receipts.
/// @notice Deployed once, next to the DealManager, so that off-chain signers,
/// challenges and fraud proofs share one domain: name "Cloudless", version "1",
/// and this contract's address as the verifying contract. It is a contract of
/// its own, not a base of the DealManager, to keep the DealManager under the
/// 24 KiB code size limit.
contract ExecutionReceipts is IExecutionReceipts, EIP712 {
    bytes32 private constant CALL_REQUEST_TYPEHASH = keccak256(
        "CallRequest(uint256 dealId,string functionName,bytes32 inputHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(uint256 workerId,bytes32 requestHash,bytes appCid,bytes32 outputHash,uint64 fuelUsed,uint64 epoch,uint64 sequence)"
    );

    constructor() EIP712("Cloudless", "1") {}

    /// @inheritdoc IExecutionReceipts
    function hashCallRequest(CallRequest calldata request) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                CALL_REQUEST_TYPEHASH,
                request.dealId,
                keccak256(bytes(request.functionName)),
                request.inputHash,
                request.nonce,
                request.deadline
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @inheritdoc IExecutionReceipts
    function hashReceipt(Receipt calldata receipt) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                RECEIPT_TYPEHASH,
                receipt.workerId,
                receipt.requestHash,
                keccak256(receipt.appCid),
                receipt.outputHash,
                receipt.fuelUsed,
                receipt.epoch,
                receipt.sequence
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @inheritdoc IExecutionReceipts
    function recoverCallRequestSigner(CallRequest calldata request, bytes calldata signature)
        external
        view
        returns (address)
    {
        return ECDSA.recover(hashCallRequest(request), signature);
    }

    /// @inheritdoc IExecutionReceipts
    function recoverReceiptSigner(Receipt calldata receipt, bytes calldata signature) external view returns (address) {
        return ECDSA.recover(hashReceipt(receipt), signature);
    }

    /// @inheritdoc IExecutionReceipts
    function receiptLeaf(bytes32 receiptDigest, uint64 index, uint64 fuelBefore) public pure returns (bytes32) {
        // Double hashing, as OpenZeppelin's StandardMerkleTree does, keeps a
        // leaf from ever equalling an inner node (second-preimage attack).
        return keccak256(bytes.concat(keccak256(abi.encode(receiptDigest, index, fuelBefore))));
    }

    /// @inheritdoc IExecutionReceipts
    function verifyReceiptInclusion(
        bytes32 root,
        bytes32 receiptDigest,
        uint64 index,
        uint64 fuelBefore,
        bytes32[] calldata proof
    ) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, receiptLeaf(receiptDigest, index, fuelBefore));
    }
}
