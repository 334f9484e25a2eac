// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Cloudless deals: escrow, on-chain matching checks, workers, epoch billing, proofs and claims.
/// @notice One contract holds every deal. Epochs count chain time:
/// `epoch = (block.timestamp - genesis) / epochDuration`.
///
/// Billing is lazy. Each state-changing call on a deal first settles it: every
/// whole epoch since the last settlement (up to the current epoch, exclusive,
/// and up to the deal's end) moves `ratePerEpoch` from the deal's balance to its
/// pending amount while the balance covers it. Epochs the balance cannot cover
/// are unfunded: nobody is charged or paid for them. A later top-up funds
/// epochs from the current one on.
///
/// A worker is in the deal for epochs `joinedEpoch <= e < leftEpoch`. The peer
/// signer proves each such epoch after it ends and before its proof window
/// closes. A claim moves the worker's share of each funded epoch from pending
/// to the provider's earnings when the epoch was proven, and back to the deal's
/// balance when it was not.
///
/// Billing modes: a SUBSCRIPTION worker earns its matched price times its CUs
/// per proven epoch. A USAGE worker earns that base rate plus the reported fuel,
/// capped at `maxUsagePerWorkerEpoch`, at `usagePricePerMegafuel`; settlement
/// reserves the cap and the claim returns what the usage did not use.
interface IDealManager {
    enum BillingMode {
        SUBSCRIPTION,
        USAGE
    }

    enum AccessMode {
        NONE,
        ALLOW_LIST,
        DENY_LIST
    }

    enum DealStatus {
        ACTIVE,
        NOT_ENOUGH_WORKERS,
        INSUFFICIENT_FUNDS,
        ENDED
    }

    /// @notice Why {matchDeal} skipped a candidate peer.
    enum SkipReason {
        NONE,
        NO_FREE_SLOT,
        PEER_NOT_FOUND,
        OFFER_PAUSED,
        TOKEN_MISMATCH,
        PRICE_ABOVE_CAP,
        REGION_NOT_ALLOWED,
        TIER_TOO_LOW,
        SLA_TOO_LOW,
        PROVIDER_NOT_ALLOWED,
        NOT_ENOUGH_CUS,
        PEER_ALREADY_IN_DEAL,
        PROVIDER_LIMIT,
        INSUFFICIENT_STAKE,
        INSUFFICIENT_FUNDS
    }

    /// @notice What a developer sends to {createDeal}.
    struct DealParams {
        bytes appCid; // binary CIDv1 (raw codec, sha2-256) of the function package
        address paymentToken;
        uint256 maxPricePerCuPerEpoch; // price cap, payment-token base units
        uint32 cuPerWorker;
        uint32 minWorkers;
        uint32 targetWorkers;
        uint32 maxWorkersPerProvider;
        uint64 durationEpochs; // 0 = until the money runs out or the owner stops it
        uint16[] regions; // empty = any region
        uint8 minTier;
        uint16 minSlaBps;
        AccessMode accessMode;
        address[] providers; // the allow- or deny-list that `accessMode` names
        BillingMode billingMode;
        uint256 usagePricePerMegafuel; // USAGE only: payment-token base units per 10**6 fuel
        uint64 maxUsagePerWorkerEpoch; // USAGE only: fuel billed at most per worker and epoch
        uint256 deposit; // pulled from the caller, payment-token base units
    }

    /// @notice On-chain view of a deal.
    struct Deal {
        address owner;
        bytes appCid;
        address paymentToken;
        uint256 maxPricePerCuPerEpoch;
        uint32 cuPerWorker;
        uint32 minWorkers;
        uint32 targetWorkers;
        uint32 maxWorkersPerProvider;
        uint16[] regions;
        uint8 minTier;
        uint16 minSlaBps;
        AccessMode accessMode;
        address[] providers;
        BillingMode billingMode;
        uint256 usagePricePerMegafuel;
        uint64 maxUsagePerWorkerEpoch;
        uint64 startEpoch; // epoch of creation
        uint64 endEpoch; // first epoch not billed; type(uint64).max while open-ended
        uint64 settledEpoch; // epochs before this one are settled
        bool stopped;
        uint32 activeWorkers;
        uint256 ratePerEpoch; // sum of the billed workers' epoch rates (see {workerEpochRate})
        uint256 balance; // free escrow, payment-token base units
        uint256 pending; // charged for settled epochs, not yet claimed or returned
    }

    /// @notice On-chain view of a worker: one slot of a deal on one peer.
    struct Worker {
        uint256 dealId;
        uint256 peerId;
        address provider;
        uint256 pricePerCuPerEpoch; // fixed when matched
        uint32 cus;
        uint64 joinedEpoch;
        uint64 leftEpoch; // type(uint64).max while the worker is in the deal
        uint64 claimedUntilEpoch; // epochs before this one are claimed
        bool active; // holds CUs on its peer
    }

    /// @notice A peer's commitment for one worker and one epoch, as sent to {submitEpochProofs}.
    struct EpochProofEntry {
        uint256 workerId;
        uint64 epoch;
        bytes32 receiptsRoot; // OpenZeppelin-compatible Merkle root; bytes32(0) when no calls
        uint64 calls;
        uint64 usage; // Wasm fuel used by all calls of the epoch
    }

    /// @notice What the contract keeps of an epoch proof. The receipts root and
    /// call count live in {EpochProofsSubmitted} and in its batch hash.
    struct EpochProof {
        bool proven;
        uint64 usage; // fuel as reported; recorded for USAGE deals only, 0 otherwise
    }

    /// @notice A half-open range of epochs `[start, end)`.
    struct EpochSpan {
        uint64 start;
        uint64 end;
    }

    // ----------------------------------------------------------------- errors

    error DealNotFound(uint256 dealId);
    error DealNotOwner(uint256 dealId, address caller);
    error DealInvalidParams(string field);
    error DealTokenNotAccepted(address token);
    error DealDepositBelowReserve(uint256 deposit, uint256 reserve);
    error DealWithdrawBelowReserve(uint256 dealId, uint256 amount, uint256 withdrawable);
    error DealZeroAmount();
    error DealEnded(uint256 dealId);
    error DealNoWorkerPlaced(uint256 dealId);
    error DealWorkerNotFound(uint256 workerId);
    error DealWorkerNotActive(uint256 workerId);
    error DealNotWorkerProvider(uint256 workerId, address caller);
    error DealNotPeerSigner(uint256 workerId, address caller, address signer);
    error DealEpochNotInWorker(uint256 workerId, uint64 epoch);
    error DealProofWindowClosed(uint256 workerId, uint64 epoch, uint64 currentEpoch);
    error DealEpochNotEnded(uint64 epoch, uint64 currentEpoch);
    error DealProofAlreadySubmitted(uint256 workerId, uint64 epoch);
    error DealClaimRangeInvalid(uint256 workerId, uint64 fromEpoch, uint64 toEpoch, uint64 maxToEpoch);
    error DealNothingToWithdraw(address provider, address token);
    error DealNotAdmin(address caller);
    error DealNothingToClaim(address provider);
    error DealMixedPaymentTokens(address token, address otherToken);
    error DealEmptyProofBatch();
    error DealNotChallengeManager(address caller);
    error DealInvalidProofEntry(uint256 workerId, uint64 epoch);

    // ----------------------------------------------------------------- events

    event DealCreated(
        uint256 indexed dealId,
        address indexed owner,
        address indexed paymentToken,
        bytes appCid,
        uint32 targetWorkers,
        uint256 maxPricePerCuPerEpoch,
        uint64 endEpoch
    );
    event DealDeposited(uint256 indexed dealId, address indexed from, uint256 amount, uint256 balance);
    event DealWithdrawn(uint256 indexed dealId, address indexed to, uint256 amount, uint256 balance);
    event DealAppCidChanged(uint256 indexed dealId, bytes appCid);
    event DealStopped(uint256 indexed dealId, uint64 endEpoch);
    event DealSettled(uint256 indexed dealId, uint64 fromEpoch, uint64 toEpoch, uint64 fundedEpochs, uint256 charged);
    event CandidateSkipped(uint256 indexed dealId, uint256 indexed peerId, SkipReason reason);
    event WorkerJoined(
        uint256 indexed dealId,
        uint256 indexed workerId,
        uint256 indexed peerId,
        address provider,
        uint256 pricePerCuPerEpoch,
        uint32 cus,
        uint64 joinedEpoch
    );
    event WorkerLeft(uint256 indexed dealId, uint256 indexed workerId, uint256 indexed peerId, uint64 leftEpoch);
    /// @notice One event per proof batch rather than per entry: a batch of many
    /// epochs then costs one log. `batchHash` is `keccak256(abi.encode(entries))`.
    event EpochProofsSubmitted(bytes32 indexed batchHash, address indexed signer, EpochProofEntry[] entries);
    event WorkerClaimed(
        uint256 indexed workerId,
        uint64 fromEpoch,
        uint64 toEpoch,
        uint64 provenEpochs,
        uint256 paid,
        uint256 returned
    );
    event EarningsWithdrawn(address indexed provider, address indexed token, uint256 amount);
    event PaymentTokenSet(address indexed token, bool accepted);
    event ChallengeManagerSet(address indexed challengeManager);
    /// @notice The challenge manager forfeited (`proven` false) or restored an epoch proof.
    event EpochProofStatusChanged(uint256 indexed workerId, uint64 epoch, bool proven);

    // ------------------------------------------------------------------ deals

    /// @notice Creates a deal and pulls `params.deposit` of the payment token from the caller.
    /// @dev The deposit must cover the reserve: `minDepositedEpochs` epochs (or the
    /// duration, if shorter) at the largest epoch rate of all target workers.
    /// `appCid` must be a binary CIDv1 with a sha2-256 digest (36 bytes). A
    /// USAGE deal needs a usage price and a usage cap; a SUBSCRIPTION deal must
    /// leave both at 0. Reverts with {DealInvalidParams}, {DealTokenNotAccepted}
    /// or {DealDepositBelowReserve}. Emits {DealCreated} and {DealDeposited}.
    /// @return dealId the new deal's id (ids start at 1)
    function createDeal(DealParams calldata params) external returns (uint256 dealId);

    /// @notice Adds `amount` to a deal's balance; anyone may top a deal up.
    /// @dev Settles first. Reverts with {DealEnded} or {DealZeroAmount}. Emits {DealDeposited}.
    function deposit(uint256 dealId, uint256 amount) external;

    /// @notice Sends `amount` of the deal's balance to the owner.
    /// @dev Only the owner. Settles first. While the deal runs, the balance must
    /// keep the reserve; after a stop it must keep what the remaining billed
    /// epochs cost. Reverts with {DealWithdrawBelowReserve}. Emits {DealWithdrawn}.
    function withdraw(uint256 dealId, uint256 amount) external;

    /// @notice Points the deal at a new function package.
    /// @dev Only the owner, not after the end. Emits {DealAppCidChanged}.
    function setAppCid(uint256 dealId, bytes calldata appCid) external;

    /// @notice Stops the deal: the current epoch is the last one billed and every
    /// worker's CUs go back to its peer.
    /// @dev Only the owner. Emits {DealStopped} and one {WorkerLeft} per worker.
    function stopDeal(uint256 dealId) external;

    /// @notice Places workers of a deal on the given peers, re-checking each on chain.
    /// @dev Anyone may call. A peer that does not fit is skipped with
    /// {CandidateSkipped}; the call reverts with {DealNoWorkerPlaced} only if it
    /// placed no worker, and with {DealEnded} for an ended deal. Emits {WorkerJoined}.
    /// @return placed number of workers placed
    function matchDeal(uint256 dealId, uint256[] calldata peerIds) external returns (uint256 placed);

    /// @notice Removes a worker from its deal at the current epoch and frees its CUs.
    /// @dev Only the worker's provider. The slot opens for the matcher again.
    /// Emits {WorkerLeft}.
    function exitWorker(uint256 workerId) external;

    // ------------------------------------------------------- proofs and claims

    /// @notice Records the peer's proof of one worker epoch; {submitEpochProofs} with one entry.
    function submitEpochProof(uint256 workerId, uint64 epoch, bytes32 receiptsRoot, uint64 calls, uint64 usage)
        external;

    /// @notice Records a batch of epoch proofs in one transaction: any workers and
    /// epochs whose peer signer is the caller.
    /// @dev For each entry: only the worker's peer signer, after `epoch` ended and
    /// while `currentEpoch <= epoch + proofWindowEpochs`, for an epoch the worker
    /// was in, once. An entry with 0 calls must have an empty root and 0 usage,
    /// and an entry with calls a non-empty root. Reverts with
    /// {DealEmptyProofBatch}, {DealWorkerNotFound}, {DealNotPeerSigner},
    /// {DealEpochNotInWorker}, {DealEpochNotEnded}, {DealProofWindowClosed},
    /// {DealProofAlreadySubmitted} or {DealInvalidProofEntry}; a revert records
    /// nothing. Emits {EpochProofsSubmitted} with the batch hash,
    /// `keccak256(abi.encode(entries))`, that a later challenge can check.
    function submitEpochProofs(EpochProofEntry[] calldata entries) external;

    /// @notice Settles the worker's epochs `[claimedUntilEpoch, toEpoch)`: proven
    /// funded epochs go to the provider's earnings, unproven ones back to the deal.
    /// @dev Only the worker's provider. `toEpoch` may not pass the worker's leave
    /// epoch, the deal's end or an epoch whose proof window is still open
    /// ({maxClaimEpoch}). Reverts with {DealClaimRangeInvalid}. Emits {WorkerClaimed}.
    function claim(uint256 workerId, uint64 toEpoch) external;

    /// @notice Claims each of the caller's workers up to its {maxClaimEpoch} and
    /// sends what they earned to the caller in the same transaction.
    /// @dev Only workers of the caller, all in deals of one payment token. A
    /// worker with nothing to claim is passed over; the call reverts with
    /// {DealNothingToClaim} only if no worker had anything, and with
    /// {DealMixedPaymentTokens} when the workers' deals use different tokens.
    /// Earnings credited earlier by {claim} stay for {withdrawEarnings}. Emits
    /// {WorkerClaimed} per claimed worker and {EarningsWithdrawn} when it pays.
    /// @return paid payment-token base units sent to the caller
    function claimAndWithdraw(uint256[] calldata workerIds) external returns (uint256 paid);

    /// @notice Sends the caller's claimed earnings in `token`.
    /// @dev Reverts with {DealNothingToWithdraw}. Emits {EarningsWithdrawn}.
    function withdrawEarnings(address token) external;

    // ------------------------------------------------------------------ admin

    /// @notice Accepts or rejects a payment token for new deals.
    /// @dev Only the admin. Emits {PaymentTokenSet}.
    function setPaymentToken(address token, bool accepted) external;

    /// @notice Names the contract that may forfeit and restore epoch proofs.
    /// @dev Only the admin. Emits {ChallengeManagerSet}.
    function setChallengeManager(address challengeManager_) external;

    // ------------------------------------------------------------- challenges

    /// @notice Marks an epoch of a worker proven or not. A challenge clears the
    /// mark while it is open and for good when it is upheld; an answer restores it.
    /// A claim pays only epochs that are marked when it runs.
    /// @dev Only the challenge manager. Emits {EpochProofStatusChanged}.
    function setEpochProven(uint256 workerId, uint64 epoch, bool proven) external;

    // ------------------------------------------------------------------ views

    function market() external view returns (address);
    /// @notice Unix seconds at which epoch 0 starts.
    function genesis() external view returns (uint64);
    /// @notice Seconds per epoch.
    function epochDuration() external view returns (uint64);
    /// @notice Epochs after an epoch ends during which its proof is accepted.
    function proofWindowEpochs() external view returns (uint64);
    /// @notice Epochs after the proof window during which a proof may be
    /// challenged. Claims wait for them too. 0 turns challenges off.
    function challengeWindowEpochs() external view returns (uint64);
    /// @notice Contract allowed to forfeit and restore epoch proofs, or the zero address.
    function challengeManager() external view returns (address);
    /// @notice Epochs at the price cap for all target workers that a deal must keep while it runs.
    function minDepositedEpochs() external view returns (uint64);
    function currentEpoch() external view returns (uint64);
    function isPaymentToken(address token) external view returns (bool);
    function dealCount() external view returns (uint256);
    function workerCount() external view returns (uint256);
    /// @notice The deal as stored, not settled to the current epoch.
    function getDeal(uint256 dealId) external view returns (Deal memory);
    /// @notice The deal's status as if it were settled now.
    function dealStatus(uint256 dealId) external view returns (DealStatus);
    /// @notice The deal's balance as if it were settled now.
    function dealBalance(uint256 dealId) external view returns (uint256);
    /// @notice First epoch that the deal's balance, settled now, cannot pay at its
    /// current rate: the epoch at which it runs out of money. Returns the deal's
    /// end when the balance lasts until then, and `type(uint64).max` for an
    /// open-ended deal without billed workers.
    function fundedUntilEpoch(uint256 dealId) external view returns (uint64);
    /// @notice Amount the owner could withdraw now.
    function withdrawable(uint256 dealId) external view returns (uint256);
    /// @notice Balance the deal must keep while it runs.
    function reserveOf(uint256 dealId) external view returns (uint256);
    function dealWorkerIds(uint256 dealId) external view returns (uint256[] memory);
    /// @notice Settled epochs of the deal that its balance could not pay while
    /// workers were billed, as sorted, disjoint spans. Every other settled epoch
    /// with billed workers was funded.
    function unfundedSpans(uint256 dealId) external view returns (EpochSpan[] memory);
    function getWorker(uint256 workerId) external view returns (Worker memory);
    function getEpochProof(uint256 workerId, uint64 epoch) external view returns (EpochProof memory);
    /// @notice Payment-token base units a funded epoch of the worker reserves: its
    /// matched price times its CUs, plus, for USAGE deals, the usage cap at the usage price.
    function workerEpochRate(uint256 workerId) external view returns (uint256);
    /// @notice Unix seconds at which a proof batch with this hash was recorded, or 0.
    function proofBatchSubmittedAt(bytes32 batchHash) external view returns (uint64);
    /// @notice Largest `toEpoch` that {claim} accepts now for the worker.
    function maxClaimEpoch(uint256 workerId) external view returns (uint64);
    function earnings(address provider, address token) external view returns (uint256);
}
