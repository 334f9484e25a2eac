// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDealManager} from "../interfaces/IDealManager.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {DealBilling} from "./DealBilling.sol";
import {DealMatching} from "./DealMatching.sol";
import {DealStorage} from "./DealStorage.sol";
import {DealViews} from "./DealViews.sol";

/// @title Cloudless deals: escrow, on-chain matching checks, workers, epoch billing, proofs and claims.
/// @notice See {IDealManager}. The owner is the admin who accepts payment tokens.
/// A stopped deal takes no new workers even during its last billed epoch.
contract DealManager is IDealManager, DealViews, ReentrancyGuard, Ownable {
    using SafeERC20 for IERC20;

    /// @param market_ Market that holds the offers and peers
    /// @param genesis_ unix seconds at which epoch 0 starts, or 0 for the deployment block's timestamp
    /// @param epochDuration_ seconds per epoch, at least 1
    /// @param proofWindowEpochs_ epochs after an epoch ends during which its proof is accepted, at least 1
    /// @param challengeWindowEpochs_ epochs after the proof window during which a proof may be challenged, 0 for none
    /// @param minDepositedEpochs_ epochs at the price cap that a running deal keeps, at least 1
    /// @param admin owner who accepts payment tokens and names the challenge manager
    constructor(
        address market_,
        uint64 genesis_,
        uint64 epochDuration_,
        uint64 proofWindowEpochs_,
        uint64 challengeWindowEpochs_,
        uint64 minDepositedEpochs_,
        address admin
    )
        DealStorage(market_, genesis_, epochDuration_, proofWindowEpochs_, challengeWindowEpochs_, minDepositedEpochs_)
        Ownable(admin)
    {}

    // ------------------------------------------------------------------ deals

    /// @inheritdoc IDealManager
    function createDeal(DealParams calldata params) external nonReentrant returns (uint256 dealId) {
        _validateParams(params);
        uint64 startEpoch = currentEpoch();
        uint64 durationEpochs = params.durationEpochs;

        dealId = ++dealCount;
        DealRecord storage deal = _deals[dealId];
        _storeParams(dealId, deal, params);
        deal.owner = msg.sender;
        deal.startEpoch = startEpoch;
        deal.endEpoch = durationEpochs == 0 ? type(uint64).max : startEpoch + durationEpochs;
        deal.settledEpoch = startEpoch;
        deal.balance = uint128(params.deposit);

        uint256 reserve = _reserve(deal, startEpoch);
        if (params.deposit < reserve) revert DealDepositBelowReserve(params.deposit, reserve);

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
    /// @dev Also reverts with {DealInvalidParams} ("amount") when the deal would
    /// hold more than 2**128 - 1 base units.
    function deposit(uint256 dealId, uint256 amount) external nonReentrant {
        DealRecord storage deal = _existingDeal(dealId);
        if (amount == 0) revert DealZeroAmount();
        if (_hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        uint256 balance = uint256(deal.balance) + amount;
        if (balance + deal.pending > type(uint128).max) revert DealInvalidParams("amount");
        deal.balance = uint128(balance);

        emit DealDeposited(dealId, msg.sender, amount, balance);

        IERC20(deal.paymentToken).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IDealManager
    function withdraw(uint256 dealId, uint256 amount) external nonReentrant {
        DealRecord storage deal = _ownedDeal(dealId);
        if (amount == 0) revert DealZeroAmount();

        _settle(dealId, deal);
        uint256 reserve = _reserve(deal, deal.settledEpoch);
        uint256 available = deal.balance > reserve ? deal.balance - reserve : 0;
        if (amount > available) revert DealWithdrawBelowReserve(dealId, amount, available);
        deal.balance = uint128(deal.balance - amount);

        emit DealWithdrawn(dealId, msg.sender, amount, deal.balance);

        IERC20(deal.paymentToken).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IDealManager
    function setAppCid(uint256 dealId, bytes calldata appCid) external {
        DealRecord storage deal = _ownedDeal(dealId);
        _validateAppCid(appCid);
        if (_hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        _storeAppCid(deal, appCid);

        emit DealAppCidChanged(dealId, appCid);
    }

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealEnded} when the deal has ended or was already stopped.
    function stopDeal(uint256 dealId) external nonReentrant {
        DealRecord storage deal = _ownedDeal(dealId);
        if (deal.stopped || _hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        uint64 endEpoch = DealBilling.min64(deal.endEpoch, currentEpoch() + 1);
        deal.endEpoch = endEpoch;
        deal.stopped = true;

        emit DealStopped(dealId, endEpoch);

        // Each worker stays billed up to the new end, so `ratePerEpoch` keeps
        // its value and settlement stops at `endEpoch`.
        _releaseAllWorkers(dealId, deal, endEpoch);
    }

    /// @inheritdoc IDealManager
    /// @dev Also reverts with {DealEnded} for a stopped deal.
    function matchDeal(uint256 dealId, uint256[] calldata peerIds) external nonReentrant returns (uint256 placed) {
        DealRecord storage deal = _existingDeal(dealId);
        if (deal.stopped || _hasEnded(deal)) revert DealEnded(dealId);

        _settle(dealId, deal);
        for (uint256 i = 0; i < peerIds.length; i++) {
            (SkipReason reason, IMarket.PeerPlacement memory peer) = _checkCandidate(dealId, deal, peerIds[i]);
            if (reason != SkipReason.NONE) {
                emit CandidateSkipped(dealId, peerIds[i], reason);
                continue;
            }
            _placeWorker(dealId, deal, peerIds[i], peer);
            placed++;
        }

        if (placed == 0) revert DealNoWorkerPlaced(dealId);
    }

    /// @inheritdoc IDealManager
    /// @dev After the deal's end the worker leaves at `endEpoch` and the rate stays as it is.
    function exitWorker(uint256 workerId) external nonReentrant {
        WorkerRecord storage worker = _providerWorker(workerId);
        if (!_isActive(worker)) revert DealWorkerNotActive(workerId);
        uint256 dealId = worker.dealId;
        DealRecord storage deal = _deals[dealId];

        _settle(dealId, deal);
        uint64 nowEpoch = currentEpoch();
        uint64 leftEpoch = nowEpoch;
        if (nowEpoch >= deal.endEpoch) {
            leftEpoch = deal.endEpoch;
        } else {
            deal.ratePerEpoch -= uint128(_workerRate(deal, worker));
        }

        _releaseWorker(dealId, deal, workerId, leftEpoch);
    }

    // ------------------------------------------------------- proofs and claims

    /// @inheritdoc IDealManager
    function submitEpochProof(uint256 workerId, uint64 epoch, bytes32 receiptsRoot, uint64 calls, uint64 usage)
        external
    {
        EpochProofEntry[] memory entries = new EpochProofEntry[](1);
        entries[0] = EpochProofEntry(workerId, epoch, receiptsRoot, calls, usage);
        _recordProof(entries[0], currentEpoch(), 0);
        _recordBatch(entries);
    }

    /// @inheritdoc IDealManager
    /// @dev A proof is accepted after the worker left or the deal stopped, for
    /// epochs the worker was in. A worker's peer signer is looked up once per run
    /// of entries on the same peer.
    function submitEpochProofs(EpochProofEntry[] calldata entries) external {
        if (entries.length == 0) revert DealEmptyProofBatch();
        uint64 nowEpoch = currentEpoch();
        uint256 checkedPeerId;
        for (uint256 i = 0; i < entries.length; i++) {
            checkedPeerId = _recordProof(entries[i], nowEpoch, checkedPeerId);
        }
        _recordBatch(entries);
    }

    /// @inheritdoc IDealManager
    /// @dev For a USAGE deal `paid` is the base rate of the proven epochs plus their
    /// capped usage at the usage price. Unfunded epochs of the range move no money.
    function claim(uint256 workerId, uint64 toEpoch) external nonReentrant {
        WorkerRecord storage worker = _providerWorker(workerId);
        DealRecord storage deal = _deals[worker.dealId];

        _settle(worker.dealId, deal);
        uint64 fromEpoch = worker.claimedUntilEpoch;
        uint64 maxToEpoch = _maxClaimEpoch(worker, deal, deal.settledEpoch);
        if (toEpoch <= fromEpoch || toEpoch > maxToEpoch) {
            revert DealClaimRangeInvalid(workerId, fromEpoch, toEpoch, maxToEpoch);
        }

        uint256 paid = _claim(workerId, worker, deal, toEpoch);
        earnings[msg.sender][deal.paymentToken] += paid;
    }

    /// @inheritdoc IDealManager
    /// @dev Each worker is checked as in {claim}: a worker of another provider
    /// reverts with {DealNotWorkerProvider}. The transfer comes last, after every
    /// worker's books are written.
    function claimAndWithdraw(uint256[] calldata workerIds) external nonReentrant returns (uint256 paid) {
        address token;
        uint256 claimed;
        for (uint256 i = 0; i < workerIds.length; i++) {
            WorkerRecord storage worker = _providerWorker(workerIds[i]);
            DealRecord storage deal = _deals[worker.dealId];
            if (token == address(0)) token = deal.paymentToken;
            if (deal.paymentToken != token) revert DealMixedPaymentTokens(token, deal.paymentToken);

            _settle(worker.dealId, deal);
            uint64 toEpoch = _maxClaimEpoch(worker, deal, deal.settledEpoch);
            if (toEpoch <= worker.claimedUntilEpoch) continue;

            paid += _claim(workerIds[i], worker, deal, toEpoch);
            claimed++;
        }
        if (claimed == 0) revert DealNothingToClaim(msg.sender);

        if (paid > 0) {
            emit EarningsWithdrawn(msg.sender, token, paid);
            IERC20(token).safeTransfer(msg.sender, paid);
        }
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

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealNotAdmin} unless the caller is the owner.
    function setChallengeManager(address challengeManager_) external {
        if (msg.sender != owner()) revert DealNotAdmin(msg.sender);

        challengeManager = challengeManager_;

        emit ChallengeManagerSet(challengeManager_);
    }

    /// @inheritdoc IDealManager
    /// @dev Reverts with {DealNotChallengeManager} for any other caller.
    function setEpochProven(uint256 workerId, uint64 epoch, bool proven) external {
        if (msg.sender != challengeManager || msg.sender == address(0)) revert DealNotChallengeManager(msg.sender);
        _existingWorker(workerId);

        uint256 bit = 1 << (epoch & 255);
        if (proven) _provenBits[workerId][epoch >> 8] |= bit;
        else _provenBits[workerId][epoch >> 8] &= ~bit;

        emit EpochProofStatusChanged(workerId, epoch, proven);
    }

    // -------------------------------------------------------------- internal

    /// @dev Checks one entry and marks its epoch proven. `checkedPeerId` is the
    /// peer whose signer the caller was already found to be; returns the
    /// entry's peer, which is then checked too.
    function _recordProof(EpochProofEntry memory entry, uint64 nowEpoch, uint256 checkedPeerId)
        private
        returns (uint256 peerId)
    {
        WorkerRecord storage worker = _existingWorker(entry.workerId);
        peerId = worker.peerId;
        if (peerId != checkedPeerId) {
            address signer = IMarket(market).peerSigner(peerId);
            if (msg.sender != signer) revert DealNotPeerSigner(entry.workerId, msg.sender, signer);
        }
        DealRecord storage deal = _deals[worker.dealId];
        _checkProofEpoch(entry.workerId, worker, deal, entry.epoch, nowEpoch);
        // An epoch without calls proves liveness only: empty root and no usage.
        // Calls need a root, or no challenge could open one of them.
        bool noCalls = entry.calls == 0;
        if (noCalls != (entry.receiptsRoot == bytes32(0)) || (noCalls && entry.usage != 0)) {
            revert DealInvalidProofEntry(entry.workerId, entry.epoch);
        }

        _provenBits[entry.workerId][entry.epoch >> 8] |= 1 << (entry.epoch & 255);
        if (deal.billingMode == BillingMode.USAGE) {
            _usageSlots[entry.workerId][entry.epoch >> 2] |= uint256(entry.usage) << ((entry.epoch & 3) * 64);
        }
    }

    /// @dev Stores the batch hash that a later challenge checks the entries
    /// against, and publishes the entries. The same entries cannot be recorded
    /// twice, so a hash is never reused.
    function _recordBatch(EpochProofEntry[] memory entries) private {
        bytes32 batchHash = keccak256(abi.encode(entries));
        proofBatchSubmittedAt[batchHash] = uint64(block.timestamp);

        emit EpochProofsSubmitted(batchHash, msg.sender, entries);
    }

    function _checkProofEpoch(
        uint256 workerId,
        WorkerRecord storage worker,
        DealRecord storage deal,
        uint64 epoch,
        uint64 nowEpoch
    ) private view {
        uint64 inDealUntil = DealBilling.min64(worker.leftEpoch, deal.endEpoch);
        if (epoch < worker.joinedEpoch || epoch >= inDealUntil) revert DealEpochNotInWorker(workerId, epoch);
        if (epoch >= nowEpoch) revert DealEpochNotEnded(epoch, nowEpoch);
        if (nowEpoch - epoch > proofWindowEpochs) revert DealProofWindowClosed(workerId, epoch, nowEpoch);
        if (_isProven(workerId, epoch)) revert DealProofAlreadySubmitted(workerId, epoch);
    }

    /// @dev Settles the worker's epochs `[claimedUntilEpoch, toEpoch)` of the
    /// settled deal and returns what the provider earned; the caller credits it.
    function _claim(uint256 workerId, WorkerRecord storage worker, DealRecord storage deal, uint64 toEpoch)
        private
        returns (uint256 paid)
    {
        uint64 fromEpoch = worker.claimedUntilEpoch;
        DealBilling.UsageTerms memory usage =
            DealBilling.UsageTerms(deal.maxUsagePerWorkerEpoch, deal.usagePricePerMegafuel);
        DealBilling.ClaimTally memory tally = DealBilling.tallyClaim(
            _unfundedSpans[worker.dealId], _provenBits[workerId], _usageSlots[workerId], usage, fromEpoch, toEpoch
        );
        uint256 baseRate = uint256(worker.pricePerCuPerEpoch) * worker.cus;
        uint256 reserved = uint256(tally.funded) * (baseRate + _usageReserve(deal));
        paid = uint256(tally.proven) * baseRate + tally.usageEarned;
        uint256 returned = reserved - paid;

        // `reserved` was moved to pending when these epochs were settled.
        deal.pending -= uint128(reserved);
        deal.balance += uint128(returned);
        worker.claimedUntilEpoch = toEpoch;

        emit WorkerClaimed(workerId, fromEpoch, toEpoch, tally.proven, paid, returned);
    }

    function _validateParams(DealParams calldata params) private view {
        _validateAppCid(params.appCid);
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
        _validatePrices(params);
    }

    /// @dev A SUBSCRIPTION deal needs a price cap and no usage terms; a USAGE deal
    /// needs a usage price and cap, and its price cap (the base rate) may be 0.
    /// Amounts are bounded so that epoch rates and balances fit in 128 bits.
    function _validatePrices(DealParams calldata params) private pure {
        if (params.maxPricePerCuPerEpoch > type(uint64).max) revert DealInvalidParams("maxPricePerCuPerEpoch");
        if (params.usagePricePerMegafuel > type(uint64).max) revert DealInvalidParams("usagePricePerMegafuel");
        if (params.deposit > type(uint128).max) revert DealInvalidParams("deposit");
        if (params.billingMode == BillingMode.SUBSCRIPTION) {
            if (params.maxPricePerCuPerEpoch == 0) revert DealInvalidParams("maxPricePerCuPerEpoch");
            if (params.usagePricePerMegafuel != 0) revert DealInvalidParams("usagePricePerMegafuel");
            if (params.maxUsagePerWorkerEpoch != 0) revert DealInvalidParams("maxUsagePerWorkerEpoch");
        } else {
            if (params.usagePricePerMegafuel == 0) revert DealInvalidParams("usagePricePerMegafuel");
            if (params.maxUsagePerWorkerEpoch == 0) revert DealInvalidParams("maxUsagePerWorkerEpoch");
        }
    }

    /// @dev Accepts a binary CIDv1 with a sha2-256 digest: version 0x01, any
    /// one-byte codec, multihash code 0x12 and length 0x20, then 32 digest bytes.
    function _validateAppCid(bytes calldata appCid) private pure {
        if (appCid.length != 36 || appCid[0] != 0x01 || appCid[2] != 0x12 || appCid[3] != 0x20) {
            revert DealInvalidParams("appCid");
        }
    }

    /// @dev An allow-list must name a provider, because an empty one matches nobody.
    function _validateAccessList(AccessMode accessMode, uint256 length) private pure {
        if (length > MAX_PROVIDERS) revert DealInvalidParams("providers");
        if (accessMode == AccessMode.NONE && length > 0) revert DealInvalidParams("providers");
        if (accessMode == AccessMode.ALLOW_LIST && length == 0) revert DealInvalidParams("providers");
    }

    function _storeAppCid(DealRecord storage deal, bytes calldata appCid) private {
        deal.appCidPrefix = bytes4(appCid[:4]);
        deal.appCidDigest = bytes32(appCid[4:]);
    }

    /// @dev Copies the deal's terms and builds its region and provider lookups.
    function _storeParams(uint256 dealId, DealRecord storage deal, DealParams calldata params) private {
        _storeAppCid(deal, params.appCid);
        deal.paymentToken = params.paymentToken;
        deal.maxPricePerCuPerEpoch = uint128(params.maxPricePerCuPerEpoch);
        deal.cuPerWorker = params.cuPerWorker;
        deal.minWorkers = params.minWorkers;
        deal.targetWorkers = params.targetWorkers;
        deal.maxWorkersPerProvider = params.maxWorkersPerProvider;
        deal.minTier = params.minTier;
        deal.minSlaBps = params.minSlaBps;
        deal.accessMode = params.accessMode;
        deal.billingMode = params.billingMode;
        if (params.billingMode == BillingMode.USAGE) {
            deal.usagePricePerMegafuel = uint128(params.usagePricePerMegafuel);
            deal.maxUsagePerWorkerEpoch = params.maxUsagePerWorkerEpoch;
        }
        if (params.regions.length > 0) _dealRegions[dealId] = params.regions;
        for (uint256 i = 0; i < params.regions.length; i++) {
            _allowedRegion[dealId][params.regions[i]] = true;
        }
        if (params.providers.length > 0) _dealProviders[dealId] = params.providers;
        for (uint256 i = 0; i < params.providers.length; i++) {
            _listedProvider[dealId][params.providers[i]] = true;
        }
    }
}
