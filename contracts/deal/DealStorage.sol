// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {DealBilling} from "./DealBilling.sol";

/// @title State of the DealManager, epoch clock and lazy settlement.
/// @notice Contains every deal, worker, proof and earning. {_settle} brings a
/// deal's books up to the current epoch, and {_settledNow} computes the same
/// result without writing.
/// @dev Deals and workers are stored packed ({DealRecord}, {WorkerRecord}) because
/// storage writes dominate the gas of creating deals and placing workers; the
/// views rebuild the wide {Deal} and {Worker} structs of the interface.
abstract contract DealStorage is IDealManager {
    /// @notice Maximum `targetWorkers` of a deal. It bounds the gas of
    /// {stopDeal}, which releases every active worker in one call.
    uint32 public constant MAX_TARGET_WORKERS = 100;
    /// @notice Maximum length of a deal's region list.
    uint256 public constant MAX_REGIONS = 32;
    /// @notice Maximum length of a deal's allow- or deny-list.
    uint256 public constant MAX_PROVIDERS = 64;
    /// @notice Fuel per unit of `usagePricePerMegafuel`.
    uint256 public constant FUEL_PER_MEGAFUEL = 1_000_000;
    uint8 internal constant MAX_TIER = 4;
    uint16 internal constant MAX_SLA_BPS = 10_000;

    /// @dev A deal in seven slots; the comments mark the slot boundaries.
    struct DealRecord {
        // slot 0
        address owner;
        uint32 cuPerWorker;
        uint32 minWorkers;
        uint32 targetWorkers;
        // slot 1
        address paymentToken;
        uint32 maxWorkersPerProvider;
        uint16 minSlaBps;
        uint8 minTier;
        AccessMode accessMode;
        BillingMode billingMode;
        bool stopped;
        // slot 2
        uint64 startEpoch;
        uint64 endEpoch;
        uint64 settledEpoch;
        uint32 activeWorkers;
        bytes4 appCidPrefix; // CIDv1 version, codec, hash code and digest length
        // slot 3
        bytes32 appCidDigest;
        // slot 4
        uint128 maxPricePerCuPerEpoch;
        uint128 ratePerEpoch;
        // slot 5
        uint128 balance;
        uint128 pending;
        // slot 6, written for USAGE deals only
        uint128 usagePricePerMegafuel;
        uint64 maxUsagePerWorkerEpoch;
    }

    /// @dev A worker in two slots. It is active (holds CUs) while `leftEpoch` is
    /// `type(uint64).max`. Its provider is the owner of its peer's offer in the
    /// Market, so it is not stored. `position` is its index in the deal's worker list.
    struct WorkerRecord {
        // slot 0
        uint64 dealId;
        uint64 peerId;
        uint64 joinedEpoch;
        uint64 leftEpoch;
        // slot 1
        uint128 pricePerCuPerEpoch;
        uint64 claimedUntilEpoch;
        uint32 cus;
        uint32 position;
    }

    /// @inheritdoc IDealManager
    address public immutable market;
    /// @inheritdoc IDealManager
    uint64 public immutable genesis;
    /// @inheritdoc IDealManager
    uint64 public immutable epochDuration;
    /// @inheritdoc IDealManager
    uint64 public immutable proofWindowEpochs;
    /// @inheritdoc IDealManager
    uint64 public immutable challengeWindowEpochs;
    /// @inheritdoc IDealManager
    uint64 public immutable minDepositedEpochs;

    /// @inheritdoc IDealManager
    uint256 public dealCount;
    /// @inheritdoc IDealManager
    uint256 public workerCount;
    /// @inheritdoc IDealManager
    mapping(address token => bool) public isPaymentToken;
    /// @inheritdoc IDealManager
    mapping(address provider => mapping(address token => uint256)) public earnings;
    /// @inheritdoc IDealManager
    mapping(bytes32 batchHash => uint64) public proofBatchSubmittedAt;
    /// @inheritdoc IDealManager
    address public challengeManager;

    mapping(uint256 dealId => DealRecord) internal _deals;
    mapping(uint256 dealId => uint16[]) internal _dealRegions;
    mapping(uint256 dealId => address[]) internal _dealProviders;
    // Settled epochs that the balance could not pay while workers were billed.
    // Deals that never run dry write nothing here.
    mapping(uint256 dealId => EpochSpan[]) internal _unfundedSpans;
    // Every worker of a deal, four 64-bit ids to a slot, and one bit per list
    // position for the active ones: word `position >> 8`.
    mapping(uint256 dealId => uint64[]) internal _dealWorkerIds;
    mapping(uint256 dealId => mapping(uint256 word => uint256 bits)) internal _activeBits;
    mapping(uint256 workerId => WorkerRecord) internal _workers;

    // Proven epochs of a worker, one bit per epoch: word `epoch >> 8`, bit `epoch & 255`.
    mapping(uint256 workerId => mapping(uint256 word => uint256 bits)) internal _provenBits;
    // Reported fuel of USAGE workers, four 64-bit fields per slot: slot `epoch >> 2`.
    mapping(uint256 workerId => mapping(uint256 slot => uint256 packed)) internal _usageSlots;

    // Matching state, kept per deal so that each candidate check is O(1).
    // Peers in the deal, one bit per peer id: word `peerId >> 8`.
    mapping(uint256 dealId => mapping(uint256 word => uint256 bits)) internal _peerBits;
    // Kept only when `maxWorkersPerProvider < targetWorkers`, the only case in which the limit can bind.
    mapping(uint256 dealId => mapping(address provider => uint32)) internal _activeWorkersOfProvider;
    mapping(uint256 dealId => mapping(address provider => bool)) internal _listedProvider;
    mapping(uint256 dealId => mapping(uint16 region => bool)) internal _allowedRegion;

    /// @param market_ Market that holds the offers and peers
    /// @param genesis_ unix seconds at which epoch 0 starts, or 0 for the deployment block's timestamp
    /// @param epochDuration_ seconds per epoch, at least 1
    /// @param proofWindowEpochs_ epochs after an epoch ends during which its proof is accepted, at least 1
    /// @param challengeWindowEpochs_ epochs after the proof window during which a proof may be challenged, 0 for none
    /// @param minDepositedEpochs_ epochs at the price cap that a running deal keeps, at least 1
    constructor(
        address market_,
        uint64 genesis_,
        uint64 epochDuration_,
        uint64 proofWindowEpochs_,
        uint64 challengeWindowEpochs_,
        uint64 minDepositedEpochs_
    ) {
        if (market_ == address(0)) revert DealInvalidParams("market");
        if (genesis_ > block.timestamp) revert DealInvalidParams("genesis");
        if (epochDuration_ == 0) revert DealInvalidParams("epochDuration");
        if (proofWindowEpochs_ == 0) revert DealInvalidParams("proofWindowEpochs");
        if (minDepositedEpochs_ == 0) revert DealInvalidParams("minDepositedEpochs");

        market = market_;
        genesis = genesis_ == 0 ? uint64(block.timestamp) : genesis_;
        epochDuration = epochDuration_;
        proofWindowEpochs = proofWindowEpochs_;
        challengeWindowEpochs = challengeWindowEpochs_;
        minDepositedEpochs = minDepositedEpochs_;
    }

    /// @inheritdoc IDealManager
    function currentEpoch() public view returns (uint64) {
        return uint64((block.timestamp - genesis) / epochDuration);
    }

    // ------------------------------------------------------------ settlement

    /// @dev Charges every epoch from `settledEpoch` up to the current epoch
    /// (exclusive) and the deal's end that the balance covers. Unfunded epochs
    /// are skipped for good: a later top-up funds epochs from the current one on.
    /// The cost does not depend on how many epochs passed: one division and at
    /// most one span write. Epochs without billed workers (rate 0) are neither
    /// charged nor recorded as unfunded, because no worker can claim them.
    function _settle(uint256 dealId, DealRecord storage deal) internal {
        uint64 fromEpoch = deal.settledEpoch;
        uint64 toEpoch = DealBilling.min64(currentEpoch(), deal.endEpoch);
        if (toEpoch <= fromEpoch) return;
        uint256 rate = deal.ratePerEpoch;
        uint256 balance = deal.balance;
        uint64 funded = DealBilling.fundedEpochs(balance, rate, toEpoch - fromEpoch);
        uint256 charged = uint256(funded) * rate;

        // `charged <= balance`, and balance plus pending never exceeds what was
        // deposited, which fits in 128 bits (checked on deposit).
        deal.balance = uint128(balance - charged);
        deal.pending += uint128(charged);
        deal.settledEpoch = toEpoch;
        if (rate > 0 && fromEpoch + funded < toEpoch) {
            DealBilling.recordSpan(_unfundedSpans[dealId], fromEpoch + funded, toEpoch);
        }

        emit DealSettled(dealId, fromEpoch, toEpoch, funded, charged);
    }

    /// @dev Returns the balance and settled epoch that {_settle} would write now.
    function _settledNow(DealRecord storage deal) internal view returns (uint256 balance, uint64 settledEpoch) {
        balance = deal.balance;
        settledEpoch = deal.settledEpoch;
        uint64 toEpoch = DealBilling.min64(currentEpoch(), deal.endEpoch);
        if (toEpoch > settledEpoch) {
            uint64 funded = DealBilling.fundedEpochs(balance, deal.ratePerEpoch, toEpoch - settledEpoch);
            balance -= uint256(funded) * deal.ratePerEpoch;
            settledEpoch = toEpoch;
        }
    }

    /// @dev Returns the balance a settled deal must keep: nothing once ended, the
    /// cost of the remaining billed epochs once stopped, and otherwise
    /// `minDepositedEpochs` epochs (or the epochs left, if fewer) at the largest
    /// epoch rate of all target workers.
    function _reserve(DealRecord storage deal, uint64 settledEpoch) internal view returns (uint256) {
        uint64 nowEpoch = currentEpoch();
        if (nowEpoch >= deal.endEpoch) return 0;
        if (deal.stopped) return uint256(deal.ratePerEpoch) * (deal.endEpoch - settledEpoch);
        uint64 epochs = DealBilling.min64(minDepositedEpochs, deal.endEpoch - nowEpoch);
        return _maxWorkerRate(deal) * deal.targetWorkers * epochs;
    }

    /// @dev Returns the most a worker of the deal can reserve per epoch: the price
    /// cap times `cuPerWorker`, plus the usage cap at the usage price.
    function _maxWorkerRate(DealRecord storage deal) internal view returns (uint256) {
        return uint256(deal.maxPricePerCuPerEpoch) * deal.cuPerWorker + _usageReserve(deal);
    }

    /// @dev Returns what a USAGE deal reserves per worker and epoch for metered
    /// usage: the usage cap at the usage price. 0 for SUBSCRIPTION deals.
    function _usageReserve(DealRecord storage deal) internal view returns (uint256) {
        return DealBilling.usageCharge(deal.maxUsagePerWorkerEpoch, deal.usagePricePerMegafuel);
    }

    /// @dev Returns the largest `toEpoch` a claim of `worker` accepts once the
    /// deal is settled to `settledEpoch`: epochs must be in the worker's range,
    /// before the deal's end, settled, and past their proof and challenge windows.
    function _maxClaimEpoch(WorkerRecord storage worker, DealRecord storage deal, uint64 settledEpoch)
        internal
        view
        returns (uint64)
    {
        uint64 nowEpoch = currentEpoch();
        uint64 delay = proofWindowEpochs + challengeWindowEpochs;
        uint64 windowClosedBefore = nowEpoch > delay ? nowEpoch - delay : 0;
        uint64 inDealUntil = DealBilling.min64(worker.leftEpoch, deal.endEpoch);
        return DealBilling.min64(inDealUntil, DealBilling.min64(settledEpoch, windowClosedBefore));
    }

    function _hasEnded(DealRecord storage deal) internal view returns (bool) {
        return currentEpoch() >= deal.endEpoch;
    }

    function _isProven(uint256 workerId, uint64 epoch) internal view returns (bool) {
        return (_provenBits[workerId][epoch >> 8] >> (epoch & 255)) & 1 == 1;
    }

    function _usageOf(uint256 workerId, uint64 epoch) internal view returns (uint64) {
        return uint64(_usageSlots[workerId][epoch >> 2] >> ((epoch & 3) * 64));
    }

    function _appCid(DealRecord storage deal) internal view returns (bytes memory) {
        return abi.encodePacked(deal.appCidPrefix, deal.appCidDigest);
    }

    // --------------------------------------------------------------- lookups

    function _existingDeal(uint256 dealId) internal view returns (DealRecord storage deal) {
        if (dealId == 0 || dealId > dealCount) revert DealNotFound(dealId);
        deal = _deals[dealId];
    }

    function _ownedDeal(uint256 dealId) internal view returns (DealRecord storage deal) {
        deal = _existingDeal(dealId);
        if (deal.owner != msg.sender) revert DealNotOwner(dealId, msg.sender);
    }

    function _existingWorker(uint256 workerId) internal view returns (WorkerRecord storage worker) {
        if (workerId == 0 || workerId > workerCount) revert DealWorkerNotFound(workerId);
        worker = _workers[workerId];
    }

    function _providerWorker(uint256 workerId) internal view returns (WorkerRecord storage worker) {
        worker = _existingWorker(workerId);
        if (_providerOf(worker) != msg.sender) revert DealNotWorkerProvider(workerId, msg.sender);
    }

    function _providerOf(WorkerRecord storage worker) internal view returns (address) {
        return IMarket(market).peerProvider(worker.peerId);
    }
}
