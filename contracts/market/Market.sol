// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IMarket} from "../interfaces/IMarket.sol";
import {ProviderEndpoints} from "./ProviderEndpoints.sol";

/// @title Cloudless compute market: providers, FLT stake, offers and peers.
/// @notice See {IMarket}. A peer signer is unique over all live peers. Removing
/// a peer frees its signer for a new peer.
contract Market is IMarket, ProviderEndpoints, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint8 private constant MAX_TIER = 4;
    uint16 private constant MAX_SLA_BPS = 10_000;
    uint16 private constant MAX_SHARE_BPS = 10_000;

    /// @inheritdoc IMarket
    address public immutable flt;
    /// @inheritdoc IMarket
    uint64 public immutable unbondingPeriod;
    /// @inheritdoc IMarket
    uint256 public collateralPerCu;
    /// @inheritdoc IMarket
    address public dealManager;
    /// @inheritdoc IMarket
    uint256 public offerCount;
    /// @inheritdoc IMarket
    uint256 public peerCount;
    /// @inheritdoc IMarket
    mapping(address signer => uint256 peerId) public peerIdBySigner;
    /// @inheritdoc IMarket
    mapping(address account => bool) public isSlasher;
    /// @inheritdoc IMarket
    uint16 public slashReporterShareBps = 5_000;
    /// @inheritdoc IMarket
    mapping(address account => uint256) public slashRewards;
    /// @inheritdoc IMarket
    uint256 public treasuryBalance;

    mapping(address provider => Provider) private _providers;
    mapping(uint256 offerId => Offer) private _offers;
    mapping(uint256 peerId => Peer) private _peers;

    /// @param flt_ FLT token that providers stake
    /// @param collateralPerCu_ FLT wei of stake required per offered CU
    /// @param unbondingPeriod_ seconds between an unstake request and the withdrawal
    /// @param initialOwner owner who sets the DealManager and the collateral rate
    constructor(address flt_, uint256 collateralPerCu_, uint64 unbondingPeriod_, address initialOwner)
        Ownable(initialOwner)
    {
        if (flt_ == address(0)) revert MarketZeroAddress("flt");

        flt = flt_;
        collateralPerCu = collateralPerCu_;
        unbondingPeriod = unbondingPeriod_;
    }

    modifier onlyDealManager() {
        if (msg.sender != dealManager) revert MarketNotDealManager(msg.sender);
        _;
    }

    // ------------------------------------------------------------- providers

    /// @inheritdoc IMarket
    function registerProvider(string calldata name) external {
        Provider storage provider = _providers[msg.sender];
        if (provider.registered) revert MarketProviderAlreadyRegistered(msg.sender);

        provider.registered = true;
        provider.name = name;

        emit ProviderRegistered(msg.sender, name);
    }

    /// @inheritdoc IMarket
    function stake(uint256 amount) external nonReentrant {
        Provider storage provider = _registeredProvider(msg.sender);
        if (amount == 0) revert MarketZeroAmount();

        provider.stake += amount;

        emit Staked(msg.sender, amount, provider.stake);

        IERC20(flt).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMarket
    function requestUnstake(uint256 amount) external {
        Provider storage provider = _registeredProvider(msg.sender);
        if (amount == 0) revert MarketZeroAmount();
        // The stake left after the request must still cover every offered CU.
        uint256 needed = requiredStake(msg.sender) + amount;
        if (provider.stake < needed) revert MarketInsufficientStake(msg.sender, provider.stake, needed);

        provider.stake -= amount;
        provider.unbonding += amount;
        provider.unbondingEnd = uint64(block.timestamp) + unbondingPeriod;

        emit UnstakeRequested(msg.sender, amount, provider.unbondingEnd);
    }

    /// @inheritdoc IMarket
    function withdrawUnstaked() external nonReentrant {
        Provider storage provider = _providers[msg.sender];
        uint256 amount = provider.unbonding;
        if (amount == 0) revert MarketNothingUnbonding(msg.sender);
        if (block.timestamp < provider.unbondingEnd) {
            revert MarketUnbondingNotFinished(msg.sender, provider.unbondingEnd, uint64(block.timestamp));
        }

        provider.unbonding = 0;
        provider.unbondingEnd = 0;

        emit UnstakeWithdrawn(msg.sender, amount);

        IERC20(flt).safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- offers

    /// @inheritdoc IMarket
    function createOffer(OfferTerms calldata terms, PeerSpec[] calldata peers) external returns (uint256 offerId) {
        Provider storage provider = _registeredProvider(msg.sender);
        _validateTerms(terms);
        if (peers.length == 0) revert MarketNoPeers();
        uint256 newCus;
        for (uint256 i = 0; i < peers.length; i++) {
            _validatePeerSpec(peers[i]);
            newCus += peers[i].cus;
        }
        _requireStakeFor(msg.sender, provider, provider.totalCus + newCus);

        offerId = ++offerCount;
        Offer storage offer = _offers[offerId];
        offer.provider = msg.sender;
        offer.terms = terms;
        provider.totalCus += newCus;

        emit OfferCreated(offerId, msg.sender, terms);

        // _addPeer reverts the whole offer when a signer is already in use,
        // also by an earlier peer of the same list.
        for (uint256 i = 0; i < peers.length; i++) {
            _addPeer(offerId, offer, peers[i]);
        }
    }

    /// @inheritdoc IMarket
    function setOfferPrice(uint256 offerId, uint256 pricePerCuPerEpoch) external {
        Offer storage offer = _ownedOffer(offerId);

        offer.terms.pricePerCuPerEpoch = pricePerCuPerEpoch;

        emit OfferPriceChanged(offerId, pricePerCuPerEpoch);
    }

    /// @inheritdoc IMarket
    function setOfferPaused(uint256 offerId, bool paused) external {
        Offer storage offer = _ownedOffer(offerId);

        offer.paused = paused;

        emit OfferPausedSet(offerId, paused);
    }

    /// @inheritdoc IMarket
    function addPeer(uint256 offerId, PeerSpec calldata peer) external returns (uint256 peerId) {
        Offer storage offer = _ownedOffer(offerId);
        _validatePeerSpec(peer);
        Provider storage provider = _providers[msg.sender];
        _requireStakeFor(msg.sender, provider, provider.totalCus + peer.cus);

        provider.totalCus += peer.cus;
        peerId = _addPeer(offerId, offer, peer);
    }

    /// @inheritdoc IMarket
    function setPeerCapacity(uint256 peerId, uint32 totalCus) external {
        Peer storage peer = _ownedPeer(peerId);
        if (totalCus == 0) revert MarketZeroCus(peer.signer);
        uint32 usedCus = peer.totalCus - peer.freeCus;
        if (totalCus < usedCus) revert MarketCapacityInUse(peerId, usedCus, totalCus);
        Provider storage provider = _providers[msg.sender];
        uint256 providerCus = provider.totalCus - peer.totalCus + totalCus;
        if (totalCus > peer.totalCus) {
            _requireStakeFor(msg.sender, provider, providerCus);
        }

        provider.totalCus = providerCus;
        peer.totalCus = totalCus;
        peer.freeCus = totalCus - usedCus;

        emit PeerCapacityChanged(peerId, totalCus, peer.freeCus);
    }

    /// @inheritdoc IMarket
    function removePeer(uint256 peerId) external {
        Peer storage peer = _ownedPeer(peerId);
        uint32 usedCus = peer.totalCus - peer.freeCus;
        if (usedCus > 0) revert MarketCapacityInUse(peerId, usedCus, 0);

        peer.removed = true;
        _providers[msg.sender].totalCus -= peer.totalCus;
        delete peerIdBySigner[peer.signer];

        emit PeerRemoved(peerId, peer.offerId);
    }

    // ------------------------------------------------- deal manager callbacks

    /// @inheritdoc IMarket
    function allocateCus(uint256 peerId, uint32 cus) external onlyDealManager {
        Peer storage peer = _livePeer(peerId);
        if (peer.freeCus < cus) revert MarketNotEnoughFreeCus(peerId, peer.freeCus, cus);

        peer.freeCus -= cus;

        emit CusAllocated(peerId, cus, peer.freeCus);
    }

    /// @inheritdoc IMarket
    function releaseCus(uint256 peerId, uint32 cus) external onlyDealManager {
        Peer storage peer = _livePeer(peerId);
        uint32 usedCus = peer.totalCus - peer.freeCus;
        if (cus > usedCus) revert MarketReleaseExceedsUsed(peerId, usedCus, cus);

        peer.freeCus += cus;

        emit CusReleased(peerId, cus, peer.freeCus);
    }

    /// @inheritdoc IMarket
    function setDealManager(address dealManager_) external onlyOwner {
        if (dealManager != address(0)) revert MarketDealManagerAlreadySet(dealManager);
        if (dealManager_ == address(0)) revert MarketZeroAddress("dealManager");

        dealManager = dealManager_;

        emit DealManagerSet(dealManager_);
    }

    /// @inheritdoc IMarket
    function setCollateralPerCu(uint256 collateralPerCu_) external onlyOwner {
        collateralPerCu = collateralPerCu_;

        emit CollateralPerCuSet(collateralPerCu_);
    }

    // -------------------------------------------------------------- slashing

    /// @inheritdoc IMarket
    function slash(address provider, uint256 amount, address reporter, bytes32 reason)
        external
        returns (uint256 slashed)
    {
        if (!isSlasher[msg.sender]) revert MarketNotSlasher(msg.sender);
        if (amount == 0) revert MarketZeroAmount();
        Provider storage account = _registeredProvider(provider);

        uint256 fromStake = amount < account.stake ? amount : account.stake;
        uint256 rest = amount - fromStake;
        uint256 fromUnbonding = rest < account.unbonding ? rest : account.unbonding;
        slashed = fromStake + fromUnbonding;
        uint256 reporterShare = reporter == address(0) ? 0 : slashed * slashReporterShareBps / MAX_SHARE_BPS;

        account.stake -= fromStake;
        account.unbonding -= fromUnbonding;
        slashRewards[reporter] += reporterShare;
        treasuryBalance += slashed - reporterShare;

        emit ProviderSlashed(provider, reporter, slashed, reporterShare, reason);
    }

    /// @inheritdoc IMarket
    function withdrawSlashReward() external nonReentrant {
        uint256 amount = slashRewards[msg.sender];
        if (amount == 0) revert MarketNoSlashReward(msg.sender);

        slashRewards[msg.sender] = 0;

        emit SlashRewardWithdrawn(msg.sender, amount);

        IERC20(flt).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IMarket
    function withdrawTreasury(address to, uint256 amount) external onlyOwner nonReentrant {
        if (to == address(0)) revert MarketZeroAddress("to");
        if (amount == 0 || amount > treasuryBalance) revert MarketTreasuryTooLow(amount, treasuryBalance);

        treasuryBalance -= amount;

        emit TreasuryWithdrawn(to, amount);

        IERC20(flt).safeTransfer(to, amount);
    }

    /// @inheritdoc IMarket
    function setSlasher(address account, bool allowed) external onlyOwner {
        if (account == address(0)) revert MarketZeroAddress("account");

        isSlasher[account] = allowed;

        emit SlasherSet(account, allowed);
    }

    /// @inheritdoc IMarket
    function setSlashReporterShareBps(uint16 shareBps) external onlyOwner {
        if (shareBps > MAX_SHARE_BPS) revert MarketInvalidShare(shareBps);

        slashReporterShareBps = shareBps;

        emit SlashReporterShareSet(shareBps);
    }

    // ----------------------------------------------------------------- views

    /// @inheritdoc IMarket
    function peerPlacement(uint256 peerId) external view returns (PeerPlacement memory placement) {
        if (peerId == 0 || peerId > peerCount) return placement;
        Peer storage peer = _peers[peerId];
        if (peer.removed) return placement;
        Offer storage offer = _offers[peer.offerId];
        OfferTerms storage terms = offer.terms;
        Provider storage provider = _providers[offer.provider];

        placement.live = true;
        placement.offerPaused = offer.paused;
        placement.stakeCovered = provider.stake >= collateralPerCu * provider.totalCus;
        placement.provider = offer.provider;
        placement.paymentToken = terms.paymentToken;
        placement.pricePerCuPerEpoch = terms.pricePerCuPerEpoch;
        placement.region = terms.region;
        placement.tier = terms.tier;
        placement.slaBps = terms.slaBps;
        placement.freeCus = peer.freeCus;
    }

    /// @inheritdoc IMarket
    function peerProvider(uint256 peerId) external view returns (address) {
        return _offers[_existingPeer(peerId).offerId].provider;
    }

    /// @inheritdoc IMarket
    function peerSigner(uint256 peerId) external view returns (address) {
        return _existingPeer(peerId).signer;
    }

    /// @inheritdoc IMarket
    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    /// @inheritdoc IMarket
    /// @dev Reverts with {MarketOfferNotFound} for an unknown id.
    function getOffer(uint256 offerId) external view returns (Offer memory) {
        return _existingOffer(offerId);
    }

    /// @inheritdoc IMarket
    /// @dev Reverts with {MarketPeerNotFound} for an unknown id. Removed peers are returned with `removed` set.
    function getPeer(uint256 peerId) external view returns (Peer memory) {
        return _existingPeer(peerId);
    }

    /// @inheritdoc IMarket
    function requiredStake(address provider) public view returns (uint256) {
        return collateralPerCu * _providers[provider].totalCus;
    }

    // -------------------------------------------------------------- internal

    function _addPeer(uint256 offerId, Offer storage offer, PeerSpec calldata spec) private returns (uint256 peerId) {
        uint256 usedBy = peerIdBySigner[spec.signer];
        if (usedBy != 0) revert MarketSignerInUse(spec.signer, usedBy);

        peerId = ++peerCount;
        _peers[peerId] =
            Peer({offerId: offerId, signer: spec.signer, totalCus: spec.cus, freeCus: spec.cus, removed: false});
        peerIdBySigner[spec.signer] = peerId;
        offer.peerIds.push(peerId);

        emit PeerAdded(peerId, offerId, spec.signer, spec.cus);
    }

    function _validatePeerSpec(PeerSpec calldata spec) private pure {
        if (spec.signer == address(0)) revert MarketZeroAddress("signer");
        if (spec.cus == 0) revert MarketZeroCus(spec.signer);
    }

    function _validateTerms(OfferTerms calldata terms) private pure {
        if (terms.paymentToken == address(0)) revert MarketInvalidOfferTerms("paymentToken");
        if (terms.tier == 0 || terms.tier > MAX_TIER) revert MarketInvalidOfferTerms("tier");
        if (terms.slaBps > MAX_SLA_BPS) revert MarketInvalidOfferTerms("slaBps");
    }

    function _requireStakeFor(address account, Provider storage provider, uint256 totalCus) private view {
        uint256 required = collateralPerCu * totalCus;
        if (provider.stake < required) revert MarketInsufficientStake(account, provider.stake, required);
    }

    function _registeredProvider(address account) private view returns (Provider storage provider) {
        provider = _providers[account];
        if (!provider.registered) revert MarketProviderNotRegistered(account);
    }

    function _existingOffer(uint256 offerId) private view returns (Offer storage offer) {
        if (offerId == 0 || offerId > offerCount) revert MarketOfferNotFound(offerId);
        offer = _offers[offerId];
    }

    function _ownedOffer(uint256 offerId) private view returns (Offer storage offer) {
        offer = _existingOffer(offerId);
        if (offer.provider != msg.sender) revert MarketNotOfferOwner(offerId, msg.sender);
    }

    function _existingPeer(uint256 peerId) private view returns (Peer storage peer) {
        if (peerId == 0 || peerId > peerCount) revert MarketPeerNotFound(peerId);
        peer = _peers[peerId];
    }

    function _livePeer(uint256 peerId) private view returns (Peer storage peer) {
        peer = _existingPeer(peerId);
        if (peer.removed) revert MarketPeerNotFound(peerId);
    }

    function _ownedPeer(uint256 peerId) private view returns (Peer storage peer) {
        peer = _livePeer(peerId);
        if (_offers[peer.offerId].provider != msg.sender) revert MarketNotOfferOwner(peer.offerId, msg.sender);
    }

    /// @dev Registration check for {ProviderEndpoints}.
    function _isRegisteredProvider(address account) internal view override returns (bool) {
        return _providers[account].registered;
    }
}
