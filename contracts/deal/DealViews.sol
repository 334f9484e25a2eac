// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDealManager} from "../interfaces/IDealManager.sol";
import {DealBilling} from "./DealBilling.sol";
import {DealMatching} from "./DealMatching.sol";

/// @title Read-only views of the DealManager.
/// @notice Balances, status, reserve and claim limits are computed as if the
/// deal were settled now, without writing.
abstract contract DealViews is DealMatching {
    /// @inheritdoc IDealManager
    function getDeal(uint256 dealId) external view returns (Deal memory view_) {
        DealRecord storage deal = _existingDeal(dealId);
        view_.owner = deal.owner;
        view_.appCid = _appCid(deal);
        view_.paymentToken = deal.paymentToken;
        view_.maxPricePerCuPerEpoch = deal.maxPricePerCuPerEpoch;
        view_.cuPerWorker = deal.cuPerWorker;
        view_.minWorkers = deal.minWorkers;
        view_.targetWorkers = deal.targetWorkers;
        view_.maxWorkersPerProvider = deal.maxWorkersPerProvider;
        view_.regions = _dealRegions[dealId];
        view_.minTier = deal.minTier;
        view_.minSlaBps = deal.minSlaBps;
        view_.accessMode = deal.accessMode;
        view_.providers = _dealProviders[dealId];
        view_.billingMode = deal.billingMode;
        view_.usagePricePerMegafuel = deal.usagePricePerMegafuel;
        view_.maxUsagePerWorkerEpoch = deal.maxUsagePerWorkerEpoch;
        view_.startEpoch = deal.startEpoch;
        view_.endEpoch = deal.endEpoch;
        view_.settledEpoch = deal.settledEpoch;
        view_.stopped = deal.stopped;
        view_.activeWorkers = deal.activeWorkers;
        view_.ratePerEpoch = deal.ratePerEpoch;
        view_.balance = deal.balance;
        view_.pending = deal.pending;
    }

    /// @inheritdoc IDealManager
    function dealStatus(uint256 dealId) external view returns (DealStatus) {
        DealRecord storage deal = _existingDeal(dealId);
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
    /// @dev While the balance pays the current epoch's rate, the answer is in
    /// the future; once it does not, it is the current epoch.
    function fundedUntilEpoch(uint256 dealId) external view returns (uint64) {
        DealRecord storage deal = _existingDeal(dealId);
        (uint256 balance, uint64 settledEpoch) = _settledNow(deal);
        uint256 rate = deal.ratePerEpoch;
        if (rate == 0) return deal.endEpoch;
        uint256 until = uint256(DealBilling.max64(settledEpoch, currentEpoch())) + balance / rate;
        return until < deal.endEpoch ? uint64(until) : deal.endEpoch;
    }

    /// @inheritdoc IDealManager
    function withdrawable(uint256 dealId) external view returns (uint256) {
        DealRecord storage deal = _existingDeal(dealId);
        (uint256 balance, uint64 settledEpoch) = _settledNow(deal);
        uint256 reserve = _reserve(deal, settledEpoch);
        return balance > reserve ? balance - reserve : 0;
    }

    /// @inheritdoc IDealManager
    /// @dev Returns 0 once the deal has ended. After a stop it returns the cost
    /// of the epochs still billed.
    function reserveOf(uint256 dealId) external view returns (uint256) {
        DealRecord storage deal = _existingDeal(dealId);
        (, uint64 settledEpoch) = _settledNow(deal);
        return _reserve(deal, settledEpoch);
    }

    /// @inheritdoc IDealManager
    function dealWorkerIds(uint256 dealId) external view returns (uint256[] memory workerIds) {
        _existingDeal(dealId);
        uint64[] storage stored = _dealWorkerIds[dealId];
        workerIds = new uint256[](stored.length);
        for (uint256 i = 0; i < stored.length; i++) {
            workerIds[i] = stored[i];
        }
    }

    /// @inheritdoc IDealManager
    /// @dev Lists the spans recorded so far, without the settlement that is due now.
    function unfundedSpans(uint256 dealId) external view returns (EpochSpan[] memory) {
        _existingDeal(dealId);
        return _unfundedSpans[dealId];
    }

    /// @inheritdoc IDealManager
    function getWorker(uint256 workerId) external view returns (Worker memory) {
        WorkerRecord storage worker = _existingWorker(workerId);
        return Worker({
            dealId: worker.dealId,
            peerId: worker.peerId,
            provider: _providerOf(worker),
            pricePerCuPerEpoch: worker.pricePerCuPerEpoch,
            cus: worker.cus,
            joinedEpoch: worker.joinedEpoch,
            leftEpoch: worker.leftEpoch,
            claimedUntilEpoch: worker.claimedUntilEpoch,
            active: _isActive(worker)
        });
    }

    /// @inheritdoc IDealManager
    function getEpochProof(uint256 workerId, uint64 epoch) external view returns (EpochProof memory) {
        _existingWorker(workerId);
        return EpochProof({proven: _isProven(workerId, epoch), usage: _usageOf(workerId, epoch)});
    }

    /// @inheritdoc IDealManager
    function workerEpochRate(uint256 workerId) external view returns (uint256) {
        WorkerRecord storage worker = _existingWorker(workerId);
        return _workerRate(_deals[worker.dealId], worker);
    }

    /// @inheritdoc IDealManager
    function maxClaimEpoch(uint256 workerId) external view returns (uint64) {
        WorkerRecord storage worker = _existingWorker(workerId);
        DealRecord storage deal = _deals[worker.dealId];
        (, uint64 settledEpoch) = _settledNow(deal);
        return _maxClaimEpoch(worker, deal, settledEpoch);
    }
}
