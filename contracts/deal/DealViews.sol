// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";
import {DealStorage} from "./DealStorage.sol";

/// @title Read-only views of the DealManager.
/// @notice Balances, status, reserve and claim limits are computed as if the
/// deal were settled now, without writing.
abstract contract DealViews is DealStorage {
    /// @inheritdoc IDealManager
    function getDeal(uint256 dealId) external view returns (Deal memory) {
        return _existingDeal(dealId);
    }

    /// @inheritdoc IDealManager
    function dealStatus(uint256 dealId) external view returns (DealStatus) {
        Deal storage deal = _existingDeal(dealId);
        if (_hasEnded(deal)) return DealStatus.ENDED;
        (uint256 balance,) = _settledNow(deal);
        if (deal.ratePerEpoch > 0 && balance < deal.ratePerEpoch) return DealStatus.INSUFFICIENT_FUNDS;
        if (deal.activeWorkers < deal.minWorkers) return DealStatus.NOT_ENOUGH_WORKERS;
        return DealStatus.ACTIVE;
    }

    /// @inheritdoc IDealManager
    function dealBalance(uint256 dealId) external view returns (uint256 balance) {
        (balance,) = _settledNow(_existingDeal(dealId));
    }

    /// @inheritdoc IDealManager
    function withdrawable(uint256 dealId) external view returns (uint256) {
        Deal storage deal = _existingDeal(dealId);
        (uint256 balance, uint64 settledEpoch) = _settledNow(deal);
        uint256 reserve = _reserve(deal, settledEpoch);
        return balance > reserve ? balance - reserve : 0;
    }

    /// @inheritdoc IDealManager
    /// @dev Returns 0 once the deal has ended. After a stop it returns the cost
    /// of the epochs still billed.
    function reserveOf(uint256 dealId) external view returns (uint256) {
        Deal storage deal = _existingDeal(dealId);
        (, uint64 settledEpoch) = _settledNow(deal);
        return _reserve(deal, settledEpoch);
    }

    /// @inheritdoc IDealManager
    function dealWorkerIds(uint256 dealId) external view returns (uint256[] memory) {
        _existingDeal(dealId);
        return _dealWorkerIds[dealId];
    }

    /// @inheritdoc IDealManager
    /// @dev Lists the spans recorded so far, without the settlement that is due now.
    function fundedSpans(uint256 dealId) external view returns (FundedSpan[] memory) {
        _existingDeal(dealId);
        return _fundedSpans[dealId];
    }

    /// @inheritdoc IDealManager
    function getWorker(uint256 workerId) external view returns (Worker memory) {
        return _existingWorker(workerId);
    }

    /// @inheritdoc IDealManager
    function getEpochProof(uint256 workerId, uint64 epoch) external view returns (EpochProof memory) {
        _existingWorker(workerId);
        return _proofs[workerId][epoch];
    }

    /// @inheritdoc IDealManager
    function maxClaimEpoch(uint256 workerId) external view returns (uint64) {
        Worker storage worker = _existingWorker(workerId);
        Deal storage deal = _deals[worker.dealId];
        (, uint64 settledEpoch) = _settledNow(deal);
        return _maxClaimEpoch(worker, deal, settledEpoch);
    }
}
