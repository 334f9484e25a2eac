// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";
import {DealBilling} from "./DealBilling.sol";

/// @title State of the DealManager, epoch clock and lazy settlement.
/// @notice Contains every deal, worker, proof and earning. {_settle} brings a
/// deal's books up to the current epoch, and {_settledNow} computes the same
/// result without writing.
abstract contract DealStorage is IDealManager {
    /// @notice Maximum `targetWorkers` of a deal. It bounds the gas of
    /// {stopDeal}, which releases every active worker in one call.
    uint32 public constant MAX_TARGET_WORKERS = 100;
    /// @notice Maximum length of a deal's region list.
    uint256 public constant MAX_REGIONS = 32;
    /// @notice Maximum length of a deal's allow- or deny-list.
    uint256 public constant MAX_PROVIDERS = 64;
    uint8 internal constant MAX_TIER = 4;
    uint16 internal constant MAX_SLA_BPS = 10_000;

    /// @inheritdoc IDealManager
    address public immutable market;
    /// @inheritdoc IDealManager
    uint64 public immutable genesis;
    /// @inheritdoc IDealManager
    uint64 public immutable epochDuration;
    /// @inheritdoc IDealManager
    uint64 public immutable proofWindowEpochs;
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

    mapping(uint256 dealId => Deal) internal _deals;
    mapping(uint256 dealId => FundedSpan[]) internal _fundedSpans;
    mapping(uint256 dealId => uint256[]) internal _dealWorkerIds;
    mapping(uint256 workerId => Worker) internal _workers;
    mapping(uint256 workerId => mapping(uint64 epoch => EpochProof)) internal _proofs;

    // Matching state, kept per deal so that each candidate check is O(1).
    mapping(uint256 dealId => uint256[]) internal _activeWorkerIds;
    mapping(uint256 workerId => uint256) internal _activeWorkerIndex;
    mapping(uint256 dealId => mapping(uint256 peerId => bool)) internal _peerInDeal;
    mapping(uint256 dealId => mapping(address provider => uint32)) internal _activeWorkersOfProvider;
    mapping(uint256 dealId => mapping(address provider => bool)) internal _listedProvider;
    mapping(uint256 dealId => mapping(uint16 region => bool)) internal _allowedRegion;

    /// @param market_ Market that holds the offers and peers
    /// @param genesis_ unix seconds at which epoch 0 starts, or 0 for the deployment block's timestamp
    /// @param epochDuration_ seconds per epoch, at least 1
    /// @param proofWindowEpochs_ epochs after an epoch ends during which its proof is accepted, at least 1
    /// @param minDepositedEpochs_ epochs at the price cap that a running deal keeps, at least 1
    constructor(
        address market_,
        uint64 genesis_,
        uint64 epochDuration_,
        uint64 proofWindowEpochs_,
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
    function _settle(uint256 dealId, Deal storage deal) internal {
        uint64 fromEpoch = deal.settledEpoch;
        uint64 toEpoch = DealBilling.min64(currentEpoch(), deal.endEpoch);
        if (toEpoch <= fromEpoch) return;
        uint64 funded = DealBilling.fundedEpochs(deal.balance, deal.ratePerEpoch, toEpoch - fromEpoch);
        uint256 charged = uint256(funded) * deal.ratePerEpoch;

        deal.balance -= charged;
        deal.pending += charged;
        deal.settledEpoch = toEpoch;
        if (funded > 0) {
            DealBilling.recordSpan(_fundedSpans[dealId], fromEpoch, fromEpoch + funded);
        }

        emit DealSettled(dealId, fromEpoch, toEpoch, funded, charged);
    }

    /// @dev Returns the balance and settled epoch that {_settle} would write now.
    function _settledNow(Deal storage deal) internal view returns (uint256 balance, uint64 settledEpoch) {
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
    /// `minDepositedEpochs` epochs (or the epochs left, if fewer) at the price
    /// cap for all target workers.
    function _reserve(Deal storage deal, uint64 settledEpoch) internal view returns (uint256) {
        uint64 nowEpoch = currentEpoch();
        if (nowEpoch >= deal.endEpoch) return 0;
        if (deal.stopped) return deal.ratePerEpoch * (deal.endEpoch - settledEpoch);
        uint64 epochs = DealBilling.min64(minDepositedEpochs, deal.endEpoch - nowEpoch);
        return DealBilling.reserve(deal.maxPricePerCuPerEpoch, deal.cuPerWorker, deal.targetWorkers, epochs);
    }

    /// @dev Returns the largest `toEpoch` a claim of `worker` accepts once the
    /// deal is settled to `settledEpoch`: epochs must be in the worker's range,
    /// before the deal's end, settled, and past their proof window.
    function _maxClaimEpoch(Worker storage worker, Deal storage deal, uint64 settledEpoch)
        internal
        view
        returns (uint64)
    {
        uint64 nowEpoch = currentEpoch();
        uint64 windowClosedBefore = nowEpoch > proofWindowEpochs ? nowEpoch - proofWindowEpochs : 0;
        uint64 inDealUntil = DealBilling.min64(worker.leftEpoch, deal.endEpoch);
        return DealBilling.min64(inDealUntil, DealBilling.min64(settledEpoch, windowClosedBefore));
    }

    function _hasEnded(Deal storage deal) internal view returns (bool) {
        return currentEpoch() >= deal.endEpoch;
    }

    // --------------------------------------------------------------- lookups

    function _existingDeal(uint256 dealId) internal view returns (Deal storage deal) {
        if (dealId == 0 || dealId > dealCount) revert DealNotFound(dealId);
        deal = _deals[dealId];
    }

    function _ownedDeal(uint256 dealId) internal view returns (Deal storage deal) {
        deal = _existingDeal(dealId);
        if (deal.owner != msg.sender) revert DealNotOwner(dealId, msg.sender);
    }

    function _existingWorker(uint256 workerId) internal view returns (Worker storage worker) {
        if (workerId == 0 || workerId > workerCount) revert DealWorkerNotFound(workerId);
        worker = _workers[workerId];
    }

    function _providerWorker(uint256 workerId) internal view returns (Worker storage worker) {
        worker = _existingWorker(workerId);
        if (worker.provider != msg.sender) revert DealNotWorkerProvider(workerId, msg.sender);
    }
}
