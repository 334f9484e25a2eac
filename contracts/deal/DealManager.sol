// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDealManager} from "../interfaces/IDealManager.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {ExecutionReceipts} from "../receipts/ExecutionReceipts.sol";
import {DealBilling} from "./DealBilling.sol";
import {DealMatching} from "./DealMatching.sol";
import {DealStorage} from "./DealStorage.sol";
import {DealViews} from "./DealViews.sol";

/// @title Cloudless deals: escrow, on-chain matching checks, workers, epoch billing, proofs and claims.
/// @notice See {IDealManager}. The owner is the admin who accepts payment tokens.
/// A stopped deal takes no new workers even during its last billed epoch.
contract DealManager is IDealManager, DealMatching, DealViews, ExecutionReceipts, ReentrancyGuard, Ownable {
    using SafeERC20 for IERC20;

    /// @param market_ Market that holds the offers and peers
    /// @param genesis_ unix seconds at which epoch 0 starts, or 0 for the deployment block's timestamp
    /// @param epochDuration_ seconds per epoch, at least 1
    /// @param proofWindowEpochs_ epochs after an epoch ends during which its proof is accepted, at least 1
    /// @param minDepositedEpochs_ epochs at the price cap that a running deal keeps, at least 1
    /// @param admin owner who accepts and rejects payment tokens
    constructor(
        address market_,
        uint64 genesis_,
        uint64 epochDuration_,
        uint64 proofWindowEpochs_,
        uint64 minDepositedEpochs_,
        address admin
    ) DealStorage(market_, genesis_, epochDuration_, proofWindowEpochs_, minDepositedEpochs_) Ownable(admin) {}

    // ------------------------------------------------------------------ deals

    /// @inheritdoc IDealManager
    function createDeal(DealParams calldata params) external nonReentrant returns (uint256 dealId) {
        _validateParams(params);
        uint64 startEpoch = currentEpoch();
        uint64 durationEpochs = params.durationEpochs;
        uint64 reservedEpochs =
            durationEpochs == 0 ? minDepositedEpochs : DealBilling.min64(minDepositedEpochs, durationEpochs);
        uint256 reserve = DealBilling.reserve(
            params.maxPricePerCuPerEpoch, params.cuPerWorker, params.targetWorkers, reservedEpochs
        );
        if (params.deposit < reserve) revert DealDepositBelowReserve(params.deposit, reserve);

        dealId = ++dealCount;
        Deal storage deal = _deals[dealId];
        _storeParams(dealId, deal, params);
        deal.owner = msg.sender;
        deal.startEpoch = startEpoch;
        deal.endEpoch = durationEpochs == 0 ? type(uint64).max : startEpoch + durationEpochs;
        deal.settledEpoch = startEpoch;
        deal.balance = params.deposit;

        emit DealCreated(
            dealId,
            msg.sender,
            params.paymentToken,
            params.appCid,
            params.targetWorkers,
            params.maxPricePerCuPerEpoch,
            deal.endEpoch
        );
        emit DealDeposited(dealId, msg.sender, params.deposit, params.deposit);

        IERC20(params.paymentToken).safeTransferFrom(msg.sender, address(this), params.deposit);
    }

    /// @inheritdoc IDealManager
    function deposit(uint256 dealId, uint256 amount) external nonReentrant {
        Deal storage deal = _existingDeal(dealId);
        if (amount == 0) revert DealZeroAmount();
        if (_hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        deal.balance += amount;

        emit DealDeposited(dealId, msg.sender, amount, deal.balance);

        IERC20(deal.paymentToken).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IDealManager
    function withdraw(uint256 dealId, uint256 amount) external nonReentrant {
        Deal storage deal = _ownedDeal(dealId);
        if (amount == 0) revert DealZeroAmount();

        _settle(dealId, deal);
        uint256 reserve = _reserve(deal, deal.settledEpoch);
        uint256 available = deal.balance > reserve ? deal.balance - reserve : 0;
        if (amount > available) revert DealWithdrawBelowReserve(dealId, amount, available);
        deal.balance -= amount;

        emit DealWithdrawn(dealId, msg.sender, amount, deal.balance);

        IERC20(deal.paymentToken).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IDealManager
    function setAppCid(uint256 dealId, bytes calldata appCid) external {
        Deal storage deal = _ownedDeal(dealId);
        if (appCid.length == 0) revert DealInvalidParams("appCid");
        if (_hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        deal.appCid = appCid;

        emit DealAppCidChanged(dealId, appCid);
    }

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealEnded} when the deal has ended or was already stopped.
    function stopDeal(uint256 dealId) external nonReentrant {
        Deal storage deal = _ownedDeal(dealId);
        if (deal.stopped || _hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        uint64 endEpoch = DealBilling.min64(deal.endEpoch, currentEpoch() + 1);
        deal.endEpoch = endEpoch;
        deal.stopped = true;

        emit DealStopped(dealId, endEpoch);

        // Each worker stays billed up to the new end, so `ratePerEpoch` keeps
        // its value and settlement stops at `endEpoch`.
        uint256[] storage active = _activeWorkerIds[dealId];
        while (active.length > 0) {
            _releaseWorker(dealId, deal, active[active.length - 1], endEpoch);
        }
    }

    /// @inheritdoc IDealManager
    /// @dev Also reverts with {DealEnded} for a stopped deal.
    function matchDeal(uint256 dealId, uint256[] calldata peerIds) external nonReentrant returns (uint256 placed) {
        Deal storage deal = _existingDeal(dealId);
        if (deal.stopped || _hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        for (uint256 i = 0; i < peerIds.length; i++) {
            (SkipReason reason, Candidate memory candidate) = _checkCandidate(dealId, deal, peerIds[i]);
            if (reason != SkipReason.NONE) {
                emit CandidateSkipped(dealId, peerIds[i], reason);
                continue;
            }
            _placeWorker(dealId, deal, candidate);
            placed++;
        }

        if (placed == 0) revert DealNoWorkerPlaced(dealId);
    }

    /// @inheritdoc IDealManager
    /// @dev After the deal's end the worker leaves at `endEpoch` and the rate stays as it is.
    function exitWorker(uint256 workerId) external nonReentrant {
        Worker storage worker = _providerWorker(workerId);
        if (!worker.active) revert DealWorkerNotActive(workerId);
        uint256 dealId = worker.dealId;
        Deal storage deal = _deals[dealId];

        _settle(dealId, deal);
        uint64 nowEpoch = currentEpoch();
        uint64 leftEpoch = nowEpoch;
        if (nowEpoch >= deal.endEpoch) {
            leftEpoch = deal.endEpoch;
        } else {
            deal.ratePerEpoch -= worker.pricePerCuPerEpoch * worker.cus;
        }

        _releaseWorker(dealId, deal, workerId, leftEpoch);
    }

    // ------------------------------------------------------- proofs and claims

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealWorkerNotFound} for an unknown worker. A proof is
    /// accepted after the worker left or the deal stopped, for epochs the worker was in.
    function submitEpochProof(uint256 workerId, uint64 epoch, bytes32 receiptsRoot, uint64 calls, uint64 usage)
        external
    {
        Worker storage worker = _existingWorker(workerId);
        address signer = IMarket(market).getPeer(worker.peerId).signer;
        if (msg.sender != signer) revert DealNotPeerSigner(workerId, msg.sender, signer);
        uint64 inDealUntil = DealBilling.min64(worker.leftEpoch, _deals[worker.dealId].endEpoch);
        if (epoch < worker.joinedEpoch || epoch >= inDealUntil) revert DealEpochNotInWorker(workerId, epoch);
        uint64 nowEpoch = currentEpoch();
        if (epoch >= nowEpoch) revert DealEpochNotEnded(epoch, nowEpoch);
        if (nowEpoch - epoch > proofWindowEpochs) revert DealProofWindowClosed(workerId, epoch, nowEpoch);
        EpochProof storage proof = _proofs[workerId][epoch];
        if (proof.submittedAt != 0) revert DealProofAlreadySubmitted(workerId, epoch);

        proof.receiptsRoot = receiptsRoot;
        proof.calls = calls;
        proof.usage = usage;
        proof.submittedAt = uint64(block.timestamp);

        emit EpochProofSubmitted(workerId, epoch, receiptsRoot, calls, usage);
    }

    /// @inheritdoc IDealManager
    /// @dev `provenEpochs` in {WorkerClaimed} counts the funded epochs with a
    /// proof, the ones paid. Unfunded epochs of the range move no money.
    function claim(uint256 workerId, uint64 toEpoch) external nonReentrant {
        Worker storage worker = _providerWorker(workerId);
        Deal storage deal = _deals[worker.dealId];

        _settle(worker.dealId, deal);
        uint64 fromEpoch = worker.claimedUntilEpoch;
        uint64 maxToEpoch = _maxClaimEpoch(worker, deal, deal.settledEpoch);
        if (toEpoch <= fromEpoch || toEpoch > maxToEpoch) {
            revert DealClaimRangeInvalid(workerId, fromEpoch, toEpoch, maxToEpoch);
        }
        (uint64 proven, uint64 unproven) =
            DealBilling.countClaimEpochs(_fundedSpans[worker.dealId], _proofs[workerId], fromEpoch, toEpoch);
        uint256 workerRate = worker.pricePerCuPerEpoch * worker.cus;
        uint256 paid = uint256(proven) * workerRate;
        uint256 returned = uint256(unproven) * workerRate;

        deal.pending -= paid + returned;
        deal.balance += returned;
        earnings[worker.provider][deal.paymentToken] += paid;
        worker.claimedUntilEpoch = toEpoch;

        emit WorkerClaimed(workerId, fromEpoch, toEpoch, proven, paid, returned);
    }

    /// @inheritdoc IDealManager
    function withdrawEarnings(address token) external nonReentrant {
        uint256 amount = earnings[msg.sender][token];
        if (amount == 0) revert DealNothingToWithdraw(msg.sender, token);

        earnings[msg.sender][token] = 0;

        emit EarningsWithdrawn(msg.sender, token, amount);

        IERC20(token).safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealNotAdmin} unless the caller is the owner.
    function setPaymentToken(address token, bool accepted) external {
        if (msg.sender != owner()) revert DealNotAdmin(msg.sender);
        if (token == address(0)) revert DealInvalidParams("token");

        isPaymentToken[token] = accepted;

        emit PaymentTokenSet(token, accepted);
    }

    // -------------------------------------------------------------- internal

    function _validateParams(DealParams calldata params) private view {
        if (params.appCid.length == 0) revert DealInvalidParams("appCid");
        if (params.maxPricePerCuPerEpoch == 0) revert DealInvalidParams("maxPricePerCuPerEpoch");
        if (params.cuPerWorker == 0) revert DealInvalidParams("cuPerWorker");
        if (params.minWorkers == 0) revert DealInvalidParams("minWorkers");
        if (params.targetWorkers < params.minWorkers || params.targetWorkers > MAX_TARGET_WORKERS) {
            revert DealInvalidParams("targetWorkers");
        }
        if (params.maxWorkersPerProvider == 0) revert DealInvalidParams("maxWorkersPerProvider");
        // endEpoch must stay below type(uint64).max, which marks an open-ended deal.
        if (params.durationEpochs >= type(uint64).max - currentEpoch()) revert DealInvalidParams("durationEpochs");
        if (params.regions.length > MAX_REGIONS) revert DealInvalidParams("regions");
        if (params.minTier > MAX_TIER) revert DealInvalidParams("minTier");
        if (params.minSlaBps > MAX_SLA_BPS) revert DealInvalidParams("minSlaBps");
        _validateAccessList(params.accessMode, params.providers.length);
        if (!isPaymentToken[params.paymentToken]) revert DealTokenNotAccepted(params.paymentToken);
        if (params.billingMode != BillingMode.SUBSCRIPTION) {
            // NOTE: usage billing needs metered usage proofs that a claim can
            // verify. Epoch proofs only report usage, so only subscriptions are accepted.
            revert DealBillingModeNotSupported(params.billingMode);
        }
    }

    /// @dev An allow-list must name a provider, because an empty one matches nobody.
    function _validateAccessList(AccessMode accessMode, uint256 length) private pure {
        if (length > MAX_PROVIDERS) revert DealInvalidParams("providers");
        if (accessMode == AccessMode.NONE && length > 0) revert DealInvalidParams("providers");
        if (accessMode == AccessMode.ALLOW_LIST && length == 0) revert DealInvalidParams("providers");
    }

    /// @dev Copies the deal's terms and builds its region and provider lookups.
    function _storeParams(uint256 dealId, Deal storage deal, DealParams calldata params) private {
        deal.appCid = params.appCid;
        deal.paymentToken = params.paymentToken;
        deal.maxPricePerCuPerEpoch = params.maxPricePerCuPerEpoch;
        deal.cuPerWorker = params.cuPerWorker;
        deal.minWorkers = params.minWorkers;
        deal.targetWorkers = params.targetWorkers;
        deal.maxWorkersPerProvider = params.maxWorkersPerProvider;
        deal.regions = params.regions;
        deal.minTier = params.minTier;
        deal.minSlaBps = params.minSlaBps;
        deal.accessMode = params.accessMode;
        deal.providers = params.providers;
        deal.billingMode = params.billingMode;
        for (uint256 i = 0; i < params.regions.length; i++) {
            _allowedRegion[dealId][params.regions[i]] = true;
        }
        for (uint256 i = 0; i < params.providers.length; i++) {
            _listedProvider[dealId][params.providers[i]] = true;
        }
    }
}
