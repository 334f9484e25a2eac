// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarket} from "../interfaces/IMarket.sol";
import {DealStorage} from "./DealStorage.sol";

/// @title Candidate checks and worker bookkeeping of the DealManager.
/// @notice {_checkCandidate} re-checks a peer against a deal with the Market's
/// current data. {_placeWorker} and {_releaseWorker} keep the deal's counters,
/// the per-deal matching state and the peer's CUs in the Market in step.
abstract contract DealMatching is DealStorage {
    /// @dev Returns why `peerId` cannot take a worker of the settled deal, or
    /// {SkipReason.NONE} with the Market's data on the peer when it can. The
    /// checks run in the order of {SkipReason}, so the first failing one is reported.
    function _checkCandidate(uint256 dealId, DealRecord storage deal, uint256 peerId)
        internal
        view
        returns (SkipReason reason, IMarket.PeerPlacement memory peer)
    {
        if (deal.activeWorkers >= deal.targetWorkers) return (SkipReason.NO_FREE_SLOT, peer);
        peer = IMarket(market).peerPlacement(peerId);
        if (!peer.live) return (SkipReason.PEER_NOT_FOUND, peer);

        reason = _checkTerms(dealId, deal, peer);
        if (reason != SkipReason.NONE) return (reason, peer);

        if (peer.freeCus < deal.cuPerWorker) return (SkipReason.NOT_ENOUGH_CUS, peer);
        if (_peerInDeal(dealId, peerId)) return (SkipReason.PEER_ALREADY_IN_DEAL, peer);
        if (_tracksProviderLimit(deal) && _activeWorkersOfProvider[dealId][peer.provider] >= deal.maxWorkersPerProvider)
        {
            return (SkipReason.PROVIDER_LIMIT, peer);
        }
        if (!peer.stakeCovered) return (SkipReason.INSUFFICIENT_STAKE, peer);
        uint256 workerRate = peer.pricePerCuPerEpoch * deal.cuPerWorker + _usageReserve(deal);
        if (deal.balance < uint256(deal.ratePerEpoch) + workerRate) return (SkipReason.INSUFFICIENT_FUNDS, peer);
    }

    /// @dev Checks the offer's state, terms and provider against the deal.
    function _checkTerms(uint256 dealId, DealRecord storage deal, IMarket.PeerPlacement memory peer)
        private
        view
        returns (SkipReason)
    {
        if (peer.offerPaused) return SkipReason.OFFER_PAUSED;
        if (peer.paymentToken != deal.paymentToken) return SkipReason.TOKEN_MISMATCH;
        if (peer.pricePerCuPerEpoch > deal.maxPricePerCuPerEpoch) return SkipReason.PRICE_ABOVE_CAP;
        if (_dealRegions[dealId].length > 0 && !_allowedRegion[dealId][peer.region]) {
            return SkipReason.REGION_NOT_ALLOWED;
        }
        if (peer.tier < deal.minTier) return SkipReason.TIER_TOO_LOW;
        if (peer.slaBps < deal.minSlaBps) return SkipReason.SLA_TOO_LOW;
        AccessMode accessMode = deal.accessMode;
        if (accessMode != AccessMode.NONE) {
            bool listed = _listedProvider[dealId][peer.provider];
            if (accessMode == AccessMode.ALLOW_LIST && !listed) return SkipReason.PROVIDER_NOT_ALLOWED;
            if (accessMode == AccessMode.DENY_LIST && listed) return SkipReason.PROVIDER_NOT_ALLOWED;
        }
        return SkipReason.NONE;
    }

    /// @dev Creates an active worker of the settled deal on `peerId` at the
    /// offer's current price and takes the peer's CUs in the Market.
    function _placeWorker(uint256 dealId, DealRecord storage deal, uint256 peerId, IMarket.PeerPlacement memory peer)
        internal
        returns (uint256 workerId)
    {
        uint64 joinedEpoch = currentEpoch();
        uint32 cus = deal.cuPerWorker;
        uint64[] storage workerIds = _dealWorkerIds[dealId];
        uint256 position = workerIds.length;

        workerId = ++workerCount;
        _workers[workerId] = WorkerRecord({
            dealId: uint64(dealId),
            peerId: uint64(peerId),
            joinedEpoch: joinedEpoch,
            leftEpoch: type(uint64).max,
            pricePerCuPerEpoch: uint128(peer.pricePerCuPerEpoch),
            claimedUntilEpoch: joinedEpoch,
            cus: cus,
            position: uint32(position)
        });
        workerIds.push(uint64(workerId));
        _activeBits[dealId][position >> 8] |= 1 << (position & 255);
        _peerBits[dealId][peerId >> 8] |= 1 << (peerId & 255);
        if (_tracksProviderLimit(deal)) _activeWorkersOfProvider[dealId][peer.provider] += 1;
        deal.activeWorkers += 1;
        deal.ratePerEpoch += uint128(peer.pricePerCuPerEpoch * cus + _usageReserve(deal));

        emit WorkerJoined(dealId, workerId, peerId, peer.provider, peer.pricePerCuPerEpoch, cus, joinedEpoch);

        IMarket(market).allocateCus(peerId, cus);
    }

    /// @dev Ends an active worker's stay at `leftEpoch` and gives its CUs back
    /// to the peer. The caller adjusts `ratePerEpoch` when the worker's epochs
    /// from `leftEpoch` on would otherwise still be billed.
    function _releaseWorker(uint256 dealId, DealRecord storage deal, uint256 workerId, uint64 leftEpoch) internal {
        WorkerRecord storage worker = _workers[workerId];
        uint256 peerId = worker.peerId;
        uint256 position = worker.position;

        worker.leftEpoch = leftEpoch;
        _activeBits[dealId][position >> 8] &= ~(uint256(1) << (position & 255));
        _peerBits[dealId][peerId >> 8] &= ~(uint256(1) << (peerId & 255));
        if (_tracksProviderLimit(deal)) _activeWorkersOfProvider[dealId][_providerOf(worker)] -= 1;
        deal.activeWorkers -= 1;

        emit WorkerLeft(dealId, workerId, peerId, leftEpoch);

        IMarket(market).releaseCus(peerId, worker.cus);
    }

    /// @dev Releases every active worker of the deal at `leftEpoch`, walking the
    /// active bits 256 list positions at a time.
    function _releaseAllWorkers(uint256 dealId, DealRecord storage deal, uint64 leftEpoch) internal {
        uint64[] storage workerIds = _dealWorkerIds[dealId];
        uint256 words = (workerIds.length + 255) >> 8;
        for (uint256 word = 0; word < words && deal.activeWorkers > 0; word++) {
            uint256 bits = _activeBits[dealId][word];
            for (uint256 bit = 0; bits != 0; bit++) {
                if (bits & 1 == 1) _releaseWorker(dealId, deal, workerIds[(word << 8) | bit], leftEpoch);
                bits >>= 1;
            }
        }
    }

    function _isActive(WorkerRecord storage worker) internal view returns (bool) {
        return worker.leftEpoch == type(uint64).max;
    }

    /// @dev Returns the epoch rate a worker reserves: its price times its CUs plus the deal's usage reserve.
    function _workerRate(DealRecord storage deal, WorkerRecord storage worker) internal view returns (uint256) {
        return uint256(worker.pricePerCuPerEpoch) * worker.cus + _usageReserve(deal);
    }

    function _peerInDeal(uint256 dealId, uint256 peerId) internal view returns (bool) {
        return (_peerBits[dealId][peerId >> 8] >> (peerId & 255)) & 1 == 1;
    }

    /// @dev The per-provider count only matters when the limit is below the
    /// target; skipping it otherwise saves a storage write per placed worker.
    function _tracksProviderLimit(DealRecord storage deal) internal view returns (bool) {
        return deal.maxWorkersPerProvider < deal.targetWorkers;
    }
}
