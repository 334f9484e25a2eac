// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarket} from "../interfaces/IMarket.sol";
import {DealStorage} from "./DealStorage.sol";

/// @title Candidate checks and worker bookkeeping of the DealManager.
/// @notice {_checkCandidate} re-checks a peer against a deal with the Market's
/// current data. {_placeWorker} and {_releaseWorker} keep the deal's counters,
/// the per-deal matching state and the peer's CUs in the Market in step.
abstract contract DealMatching is DealStorage {
    /// @dev A peer that passed every check, with the offer data the worker needs.
    struct Candidate {
        uint256 peerId;
        address provider;
        uint256 pricePerCuPerEpoch;
    }

    /// @dev Returns why `peerId` cannot take a worker of the settled deal, or
    /// {SkipReason.NONE} with the candidate when it can. The checks run in the
    /// order of {SkipReason}, so the first failing one is reported.
    function _checkCandidate(uint256 dealId, Deal storage deal, uint256 peerId)
        internal
        view
        returns (SkipReason reason, Candidate memory candidate)
    {
        if (deal.activeWorkers >= deal.targetWorkers) return (SkipReason.NO_FREE_SLOT, candidate);
        IMarket marketContract = IMarket(market);
        if (peerId == 0 || peerId > marketContract.peerCount()) return (SkipReason.PEER_NOT_FOUND, candidate);
        IMarket.Peer memory peer = marketContract.getPeer(peerId);
        if (peer.removed) return (SkipReason.PEER_NOT_FOUND, candidate);
        IMarket.Offer memory offer = marketContract.getOffer(peer.offerId);

        candidate = Candidate({peerId: peerId, provider: offer.provider, pricePerCuPerEpoch: offer.terms.pricePerCuPerEpoch});
        reason = _checkOffer(dealId, deal, offer);
        if (reason != SkipReason.NONE) return (reason, candidate);

        if (peer.freeCus < deal.cuPerWorker) return (SkipReason.NOT_ENOUGH_CUS, candidate);
        if (_peerInDeal[dealId][peerId]) return (SkipReason.PEER_ALREADY_IN_DEAL, candidate);
        if (_activeWorkersOfProvider[dealId][offer.provider] >= deal.maxWorkersPerProvider) {
            return (SkipReason.PROVIDER_LIMIT, candidate);
        }
        uint256 stake = marketContract.getProvider(offer.provider).stake;
        if (stake < marketContract.requiredStake(offer.provider)) return (SkipReason.INSUFFICIENT_STAKE, candidate);
        uint256 workerRate = candidate.pricePerCuPerEpoch * deal.cuPerWorker;
        if (deal.balance < deal.ratePerEpoch + workerRate) return (SkipReason.INSUFFICIENT_FUNDS, candidate);
    }

    /// @dev Checks the offer's state, terms and provider against the deal.
    function _checkOffer(uint256 dealId, Deal storage deal, IMarket.Offer memory offer)
        private
        view
        returns (SkipReason)
    {
        IMarket.OfferTerms memory terms = offer.terms;
        if (offer.paused) return SkipReason.OFFER_PAUSED;
        if (terms.paymentToken != deal.paymentToken) return SkipReason.TOKEN_MISMATCH;
        if (terms.pricePerCuPerEpoch > deal.maxPricePerCuPerEpoch) return SkipReason.PRICE_ABOVE_CAP;
        if (deal.regions.length > 0 && !_allowedRegion[dealId][terms.region]) return SkipReason.REGION_NOT_ALLOWED;
        if (terms.tier < deal.minTier) return SkipReason.TIER_TOO_LOW;
        if (terms.slaBps < deal.minSlaBps) return SkipReason.SLA_TOO_LOW;
        bool listed = _listedProvider[dealId][offer.provider];
        if (deal.accessMode == AccessMode.ALLOW_LIST && !listed) return SkipReason.PROVIDER_NOT_ALLOWED;
        if (deal.accessMode == AccessMode.DENY_LIST && listed) return SkipReason.PROVIDER_NOT_ALLOWED;
        return SkipReason.NONE;
    }

    /// @dev Creates an active worker of the settled deal on the candidate's peer
    /// at the offer's current price and takes the peer's CUs in the Market.
    function _placeWorker(uint256 dealId, Deal storage deal, Candidate memory candidate)
        internal
        returns (uint256 workerId)
    {
        uint64 joinedEpoch = currentEpoch();
        uint32 cus = deal.cuPerWorker;

        workerId = ++workerCount;
        _workers[workerId] = Worker({
            dealId: dealId,
            peerId: candidate.peerId,
            provider: candidate.provider,
            pricePerCuPerEpoch: candidate.pricePerCuPerEpoch,
            cus: cus,
            joinedEpoch: joinedEpoch,
            leftEpoch: type(uint64).max,
            claimedUntilEpoch: joinedEpoch,
            active: true
        });
        _dealWorkerIds[dealId].push(workerId);
        _activeWorkerIndex[workerId] = _activeWorkerIds[dealId].length;
        _activeWorkerIds[dealId].push(workerId);
        _peerInDeal[dealId][candidate.peerId] = true;
        _activeWorkersOfProvider[dealId][candidate.provider] += 1;
        deal.activeWorkers += 1;
        deal.ratePerEpoch += candidate.pricePerCuPerEpoch * cus;

        emit WorkerJoined(
            dealId, workerId, candidate.peerId, candidate.provider, candidate.pricePerCuPerEpoch, cus, joinedEpoch
        );

        IMarket(market).allocateCus(candidate.peerId, cus);
    }

    /// @dev Ends an active worker's stay at `leftEpoch` and gives its CUs back
    /// to the peer. The caller adjusts `ratePerEpoch` when the worker's epochs
    /// from `leftEpoch` on would otherwise still be billed.
    function _releaseWorker(uint256 dealId, Deal storage deal, uint256 workerId, uint64 leftEpoch) internal {
        Worker storage worker = _workers[workerId];

        worker.leftEpoch = leftEpoch;
        worker.active = false;
        _removeActiveWorkerId(dealId, workerId);
        _peerInDeal[dealId][worker.peerId] = false;
        _activeWorkersOfProvider[dealId][worker.provider] -= 1;
        deal.activeWorkers -= 1;

        emit WorkerLeft(dealId, workerId, worker.peerId, leftEpoch);

        IMarket(market).releaseCus(worker.peerId, worker.cus);
    }

    /// @dev Removes `workerId` from the deal's active list by moving the last entry into its slot.
    function _removeActiveWorkerId(uint256 dealId, uint256 workerId) private {
        uint256[] storage active = _activeWorkerIds[dealId];
        uint256 index = _activeWorkerIndex[workerId];
        uint256 lastWorkerId = active[active.length - 1];

        active[index] = lastWorkerId;
        _activeWorkerIndex[lastWorkerId] = index;
        active.pop();
        delete _activeWorkerIndex[workerId];
    }
}
