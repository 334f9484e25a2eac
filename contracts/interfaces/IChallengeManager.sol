// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "./IDealManager.sol";
import {IExecutionReceipts} from "./IExecutionReceipts.sol";

/// @title Challenges of epoch proofs, fraud proofs and per-deal replication.
/// @notice The timeline of epoch `e`, with `pw` the proof window and `cw` the
/// challenge window of the DealManager, both in epochs:
///
///   epochs e+1 .. e+pw        the peer proves the epoch
///   epochs e+pw+1 .. e+pw+cw  anyone may challenge the proof, paying a bond;
///                             the peer answers within `answerPeriod` seconds
///   epoch e+pw+cw+1 on        the provider claims the epoch's pay
///
/// A challenge forfeits the epoch while it is open. A valid answer restores it
/// and pays the bond to the provider. No answer by the deadline, or an answer
/// that shows a bad receipt inside the proof, upholds the challenge: the epoch
/// stays forfeited, the provider's FLT stake is slashed, the challenger gets
/// the bond back and a share of the slashed stake from the Market.
///
/// Fraud proofs need no challenge: two receipts by one peer signer for one
/// request (equivocation or replay), and receipts of replicated workers that
/// outvote a worker's output (disagreement), slash at once.
interface IChallengeManager {
    enum ChallengeKind {
        SAMPLE, // the contract picks a leaf index from on-chain randomness
        RECEIPT // the challenger shows a receipt signed by the peer that the proof must contain
    }

    enum ChallengeStatus {
        NONE,
        OPEN,
        ANSWERED, // the proof stands
        UPHELD // the provider was slashed and the epoch forfeited
    }

    /// @notice Why a challenge was upheld or a fraud proof slashed.
    enum Fault {
        UNANSWERED,
        BAD_CALLER_SIGNATURE,
        WRONG_WORKER,
        WRONG_EPOCH,
        WRONG_DEAL,
        EXPIRED_REQUEST,
        USAGE_MISMATCH,
        EQUIVOCATION,
        DISAGREEMENT,
        MISSED_PROOF
    }

    struct Challenge {
        uint64 workerId;
        uint64 dealId;
        uint64 epoch;
        uint64 deadline; // unix seconds by which the answer must land
        uint64 leafIndex; // SAMPLE: the leaf to open
        address challenger;
        ChallengeKind kind;
        ChallengeStatus status;
        address provider;
        address signer; // the worker's peer signer when the challenge opened
        bytes32 receiptsRoot;
        bytes32 receiptDigest; // RECEIPT: the receipt the proof must contain
        uint64 calls;
        uint64 usage;
        uint128 bond; // FLT
    }

    /// @notice A caller's signed request and the worker's signed receipt for it.
    struct SignedCall {
        IExecutionReceipts.CallRequest request;
        bytes requestSignature;
        IExecutionReceipts.Receipt receipt;
        bytes receiptSignature;
    }

    /// @notice A receipt and the peer signer's signature over it.
    struct SignedReceipt {
        IExecutionReceipts.Receipt receipt;
        bytes signature;
    }

    /// @notice One leaf of an epoch's receipts tree and its Merkle path.
    struct LeafOpening {
        bytes32 receiptDigest;
        uint64 index;
        uint64 fuelBefore;
        bytes32[] proof;
    }

    /// @notice Settings of the challenge game, in FLT base units and seconds.
    struct Parameters {
        uint128 challengeBond; // paid by a challenger, lost to the provider when the proof stands
        uint128 slashAmount; // taken from a provider per upheld challenge or fraud proof
        uint128 missedProofSlashAmount; // taken per epoch a worker did not prove
        uint64 answerPeriod; // seconds a peer has to answer a challenge
    }

    // ----------------------------------------------------------------- errors

    error ChallengeInvalidParameters(string field);
    error ChallengeNotDealOwner(uint256 dealId, address caller);
    error ChallengeReplicationOutOfRange(uint256 dealId, uint8 replication, uint8 maxReplication);
    error ChallengeUnknownBatch(bytes32 batchHash);
    error ChallengeEntryOutOfRange(uint256 entryIndex, uint256 entries);
    error ChallengeProofNotStanding(uint256 workerId, uint64 epoch);
    error ChallengeOutsideWindow(uint256 workerId, uint64 epoch, uint64 opensAt, uint64 closesAt);
    error ChallengeNothingToSample(uint256 workerId, uint64 epoch);
    error ChallengeReceiptNotFromWorker(uint256 workerId, uint64 epoch, address signer, address expectedSigner);
    error ChallengeReceiptNotOfEntry(uint256 workerId, uint64 epoch, uint256 receiptWorkerId, uint64 receiptEpoch);
    error ChallengeNotOpen(uint256 challengeId, ChallengeStatus status);
    error ChallengeDeadlinePassed(uint256 challengeId, uint64 deadline);
    error ChallengeDeadlineNotReached(uint256 challengeId, uint64 deadline);
    error ChallengeWrongLeaf(uint256 challengeId, bytes32 receiptDigest, uint64 index);
    error ChallengeLeafNotInRoot(uint256 challengeId, uint64 index);
    error ChallengeBadReceiptSignature(address signer, address expectedSigner);
    error ChallengeRequestMismatch(bytes32 requestHash, bytes32 receiptRequestHash);
    error ChallengeNotAnswerer(uint256 challengeId, address caller);
    error FraudNotProven(string reason);
    error FraudAlreadyProven(bytes32 fraudKey);
    error MissedProofNotReportable(uint256 workerId, uint64 epoch, string reason);

    // ----------------------------------------------------------------- events

    event ParametersSet(uint128 challengeBond, uint128 slashAmount, uint128 missedProofSlashAmount, uint64 answerPeriod);
    event ReplicationSet(uint256 indexed dealId, uint8 replication);
    /// @notice A change of the deal's allowed callers, applied to receipts of `effectiveEpoch` on.
    event CallerAllowed(uint256 indexed dealId, address indexed caller, bool allowed, uint64 effectiveEpoch);
    event ChallengeOpened(
        uint256 indexed challengeId,
        uint256 indexed workerId,
        uint64 epoch,
        address indexed challenger,
        ChallengeKind kind,
        uint64 leafIndex,
        bytes32 receiptDigest,
        uint64 deadline
    );
    /// @notice The proof stands; the provider received the challenger's bond.
    event ChallengeAnswered(uint256 indexed challengeId, uint256 indexed workerId, uint64 epoch, address provider);
    /// @notice The provider failed the challenge for `fault`; the epoch stays forfeited.
    event ChallengeUpheld(
        uint256 indexed challengeId, uint256 indexed workerId, uint64 epoch, address provider, Fault fault
    );
    /// @notice A fraud proof or a missed-proof report slashed `provider`.
    event FraudProven(
        bytes32 indexed fraudKey,
        address indexed provider,
        uint256 indexed workerId,
        uint64 epoch,
        address reporter,
        Fault fault,
        uint256 slashed
    );

    // -------------------------------------------------------------- settings

    /// @notice Changes the bond, the slash amounts and the answer period.
    /// @dev Only the owner. Emits {ParametersSet}.
    function setParameters(Parameters calldata parameters_) external;

    /// @notice Asks the gateways to run each call of a deal on `replication`
    /// workers of different providers and return only a result they agree on.
    /// @dev Only the deal's owner; 1 to {MAX_REPLICATION}. Emits {ReplicationSet}.
    function setReplication(uint256 dealId, uint8 replication) external;

    /// @notice Adds `caller` to, or removes it from, the keys whose signed
    /// requests count for the deal. A deal without allowed callers counts a
    /// request signed by any key. Once restricted, a receipt whose request
    /// another key signed upholds a challenge with {Fault.BAD_CALLER_SIGNATURE},
    /// so provider nodes reject such calls. The first caller restricts the deal,
    /// and a removal applies, only from {CALLER_CHANGE_DELAY_EPOCHS} epochs after
    /// the current one, so that no receipt signed under the old rules turns bad.
    /// Further callers count at once. A deal stays restricted even when its
    /// last caller is removed.
    /// @dev Only the deal's owner. Setting the current value changes nothing.
    /// Emits {CallerAllowed}.
    function setCallerAllowed(uint256 dealId, address caller, bool allowed) external;

    // ------------------------------------------------------------ challenges

    /// @notice Challenges one entry of a recorded proof batch; the contract picks
    /// the leaf that the peer must open. Pulls {Parameters.challengeBond} FLT.
    /// @param batch every entry of the batch, as in its {IDealManager.EpochProofsSubmitted} log
    /// @param entryIndex the challenged entry
    /// @dev Emits {ChallengeOpened} and {IDealManager.EpochProofStatusChanged}.
    function challengeSample(IDealManager.EpochProofEntry[] calldata batch, uint256 entryIndex)
        external
        returns (uint256 challengeId);

    /// @notice Challenges a proof to contain a receipt that the worker's peer
    /// signed for that epoch. Pulls {Parameters.challengeBond} FLT.
    /// @dev The receipt must name the entry's worker and epoch, because a proof
    /// need not contain the receipts of other epochs or workers. Reverts with
    /// {ChallengeReceiptNotOfEntry} or {ChallengeReceiptNotFromWorker}.
    /// Emits {ChallengeOpened} and {IDealManager.EpochProofStatusChanged}.
    function challengeReceipt(
        IDealManager.EpochProofEntry[] calldata batch,
        uint256 entryIndex,
        SignedReceipt calldata signedReceipt
    ) external returns (uint256 challengeId);

    /// @notice Answers a challenge with the named receipt, its request and its
    /// leaf. `next` opens the following leaf, whose running fuel total must follow
    /// on; for the last leaf it is ignored and the total must equal the proof's usage.
    /// @dev Only the worker's peer signer or its provider. An answer that does
    /// not open the named leaf, whose receipt the peer did not sign, or whose
    /// request is not the receipt's, reverts and may be sent again. An answer
    /// that opens a bad receipt upholds the challenge with its {Fault}.
    /// Emits {ChallengeAnswered} or {ChallengeUpheld}.
    function answerChallenge(
        uint256 challengeId,
        SignedCall calldata call,
        LeafOpening calldata leaf,
        LeafOpening calldata next
    ) external;

    /// @notice Upholds a challenge whose deadline passed without an answer.
    /// @dev Anyone may call. Emits {ChallengeUpheld}.
    function resolveUnanswered(uint256 challengeId) external;

    // ---------------------------------------------------------- fraud proofs

    /// @notice Slashes a peer that signed two different receipts for one request:
    /// two outputs (equivocation) or one call counted twice (replay).
    /// @dev Anyone may call, once per signer and request. Emits {FraudProven}.
    function proveEquivocation(SignedReceipt calldata first, SignedReceipt calldata second) external;

    /// @notice Slashes the provider of `minority`, whose output or fuel differs
    /// from that of at least two workers of other providers for the same signed request.
    /// @dev Anyone may call, once per worker and request. Emits {FraudProven}.
    function proveDisagreement(
        IExecutionReceipts.CallRequest calldata request,
        bytes calldata requestSignature,
        SignedReceipt[] calldata majority,
        SignedReceipt calldata minority
    ) external;

    /// @notice Slashes a provider whose worker did not prove a funded epoch
    /// within the proof window. Callable during the epoch's challenge window.
    /// @dev Anyone may call, once per worker and epoch. An epoch that this
    /// contract forfeited (under a challenge or after a fraud proof) was proven,
    /// so it is not reportable. Emits {FraudProven}.
    function reportMissedProof(uint256 workerId, uint64 epoch) external;

    // ------------------------------------------------------------------ views

    function MAX_REPLICATION() external view returns (uint8);
    function dealManager() external view returns (address);
    function market() external view returns (address);
    function receipts() external view returns (address);
    function flt() external view returns (address);
    function parameters() external view returns (Parameters memory);
    function challengeCount() external view returns (uint256);
    function getChallenge(uint256 challengeId) external view returns (Challenge memory);
    /// @notice Whether requests that `caller` signs count for the deal in the current epoch.
    function isCallerAllowed(uint256 dealId, address caller) external view returns (bool);
    /// @notice Whether requests that `caller` signs count in receipts of `epoch`:
    /// true for every key before the deal is restricted.
    function isCallerAllowedAt(uint256 dealId, address caller, uint64 epoch) external view returns (bool);
    /// @notice First epoch in which only allowed callers count for the deal; 0 while any key counts.
    function callersRestrictedFrom(uint256 dealId) external view returns (uint64);
    /// @notice Epochs after the current one at which a restriction or removal of callers applies.
    function CALLER_CHANGE_DELAY_EPOCHS() external view returns (uint64);
    /// @notice Number of keys the deal's owner allowed to sign requests; 0 = any key.
    function allowedCallerCount(uint256 dealId) external view returns (uint256);
    /// @notice Calls of the deal run on this many workers; 1 unless the owner asked for more.
    function replicationOf(uint256 dealId) external view returns (uint8);
    /// @notice Whether a fraud proof or missed-proof report with this key was already counted.
    function fraudSettled(bytes32 fraudKey) external view returns (bool);
}
