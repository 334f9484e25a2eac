// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Cloudless compute market: providers, FLT stake, offers and peers.
/// @notice Providers register, stake FLT as collateral and publish offers. An
/// offer has a price per compute unit (CU) per epoch in one payment token, a
/// region code, a datacenter tier, an SLA and one or more peers. Each peer is a
/// machine with its own signer key and a number of CUs. The stake must cover
/// `collateralPerCu` for every CU the provider offers, used or free.
/// The DealManager allocates and releases peer CUs when it places and removes
/// workers; nobody else can.
interface IMarket {
    /// @notice On-chain view of a provider.
    struct Provider {
        bool registered;
        string name;
        uint256 stake; // FLT wei that backs the offered CUs
        uint256 unbonding; // FLT wei waiting for the unbonding period
        uint64 unbondingEnd; // unix seconds when `unbonding` can be withdrawn
        uint256 totalCus; // CUs over all peers of all offers
    }

    /// @notice Terms a provider sets when creating an offer.
    struct OfferTerms {
        address paymentToken;
        uint256 pricePerCuPerEpoch; // payment-token base units
        uint16 region; // ISO 3166-1 numeric country code, or a project-defined zone code
        uint8 tier; // datacenter tier 1..4
        uint16 slaBps; // promised availability in basis points (9990 = 99.9 %)
        uint16 vcpuPerCu;
        uint32 ramMbPerCu;
    }

    /// @notice On-chain view of an offer.
    struct Offer {
        address provider;
        OfferTerms terms;
        bool paused;
        uint256[] peerIds; // every peer ever added, removed ones included (see Peer.removed)
    }

    /// @notice A peer to add to an offer.
    struct PeerSpec {
        address signer;
        uint32 cus;
    }

    /// @notice On-chain view of a peer.
    struct Peer {
        uint256 offerId;
        address signer;
        uint32 totalCus;
        uint32 freeCus;
        bool removed;
    }

    /// @notice What the DealManager needs to check a peer for a new worker, in one call.
    struct PeerPlacement {
        bool live; // the peer exists and was not removed
        bool offerPaused;
        bool stakeCovered; // the provider's stake covers {requiredStake}
        address provider;
        address paymentToken;
        uint256 pricePerCuPerEpoch;
        uint16 region;
        uint8 tier;
        uint16 slaBps;
        uint32 freeCus;
    }

    // ----------------------------------------------------------------- errors

    error MarketProviderAlreadyRegistered(address provider);
    error MarketProviderNotRegistered(address provider);
    error MarketNotOfferOwner(uint256 offerId, address caller);
    error MarketOfferNotFound(uint256 offerId);
    error MarketPeerNotFound(uint256 peerId);
    error MarketInvalidOfferTerms(string field);
    error MarketNoPeers();
    error MarketZeroCus(address signer);
    error MarketSignerInUse(address signer, uint256 peerId);
    error MarketInsufficientStake(address provider, uint256 stake, uint256 required);
    error MarketZeroAmount();
    error MarketUnbondingNotFinished(address provider, uint64 unbondingEnd, uint64 nowSeconds);
    error MarketNothingUnbonding(address provider);
    error MarketCapacityInUse(uint256 peerId, uint32 usedCus, uint32 requestedTotal);
    error MarketNotDealManager(address caller);
    error MarketDealManagerAlreadySet(address dealManager);
    error MarketNotEnoughFreeCus(uint256 peerId, uint32 freeCus, uint32 requested);
    error MarketReleaseExceedsUsed(uint256 peerId, uint32 usedCus, uint32 requested);
    error MarketZeroAddress(string field);
    error MarketInvalidEndpoint(uint256 length, uint256 maxLength);
    error MarketNotSlasher(address caller);
    error MarketInvalidShare(uint16 shareBps);
    error MarketNoSlashReward(address account);
    error MarketTreasuryTooLow(uint256 requested, uint256 balance);

    // ----------------------------------------------------------------- events

    event ProviderRegistered(address indexed provider, string name);
    event Staked(address indexed provider, uint256 amount, uint256 totalStake);
    event UnstakeRequested(address indexed provider, uint256 amount, uint64 unbondingEnd);
    event UnstakeWithdrawn(address indexed provider, uint256 amount);
    event OfferCreated(uint256 indexed offerId, address indexed provider, OfferTerms terms);
    event OfferPriceChanged(uint256 indexed offerId, uint256 pricePerCuPerEpoch);
    event OfferPausedSet(uint256 indexed offerId, bool paused);
    event PeerAdded(uint256 indexed peerId, uint256 indexed offerId, address indexed signer, uint32 cus);
    event PeerCapacityChanged(uint256 indexed peerId, uint32 totalCus, uint32 freeCus);
    event PeerRemoved(uint256 indexed peerId, uint256 indexed offerId);
    event CusAllocated(uint256 indexed peerId, uint32 cus, uint32 freeCus);
    event CusReleased(uint256 indexed peerId, uint32 cus, uint32 freeCus);
    event DealManagerSet(address dealManager);
    event CollateralPerCuSet(uint256 collateralPerCu);
    event ProviderEndpointSet(address indexed provider, string endpoint);
    event SlasherSet(address indexed account, bool allowed);
    event SlashReporterShareSet(uint16 shareBps);
    event ProviderSlashed(
        address indexed provider, address indexed reporter, uint256 amount, uint256 reporterShare, bytes32 reason
    );
    event SlashRewardWithdrawn(address indexed reporter, uint256 amount);
    event TreasuryWithdrawn(address indexed to, uint256 amount);

    // ------------------------------------------------------------- providers

    /// @notice Registers the caller as a provider.
    /// @dev Reverts with {MarketProviderAlreadyRegistered}. Emits {ProviderRegistered}.
    function registerProvider(string calldata name) external;

    /// @notice Pulls `amount` FLT from the caller (approve first) and adds it to their stake.
    /// @dev Reverts with {MarketProviderNotRegistered} or {MarketZeroAmount}. Emits {Staked}.
    function stake(uint256 amount) external;

    /// @notice Moves `amount` of the caller's stake into unbonding.
    /// @dev The remaining stake must cover every offered CU, or the call reverts with
    /// {MarketInsufficientStake}. A second request adds to the amount and restarts
    /// the unbonding period. Emits {UnstakeRequested}.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends the caller's unbonded FLT back once the unbonding period is over.
    /// @dev Reverts with {MarketNothingUnbonding} or {MarketUnbondingNotFinished}. Emits {UnstakeWithdrawn}.
    function withdrawUnstaked() external;

    /// @notice Publishes the URL where the caller's provider node takes calls
    /// (for example `https://node.example.org`); gateways read it to reach workers.
    /// @dev Only a registered provider; 1 to 256 bytes. Reverts with
    /// {MarketProviderNotRegistered} or {MarketInvalidEndpoint}. Emits {ProviderEndpointSet}.
    function setProviderEndpoint(string calldata endpoint) external;

    /// @notice The provider's published endpoint, or "" if it has none.
    function providerEndpoint(address provider) external view returns (string memory);

    // ---------------------------------------------------------------- offers

    /// @notice Creates an offer with its first peers.
    /// @dev Requires a registered caller, a non-zero token, tier 1..4,
    /// SLA at most 10000 bps, at least one peer, unique non-zero signers and a
    /// stake that covers the new CUs. Emits {OfferCreated} and one {PeerAdded} per peer.
    /// @return offerId the new offer's id (ids start at 1)
    function createOffer(OfferTerms calldata terms, PeerSpec[] calldata peers) external returns (uint256 offerId);

    /// @notice Sets the offer's price; it applies to new matches only. A price of
    /// 0 offers a free base rate, which USAGE deals pay for by metered fuel alone.
    /// @dev Only the offer's provider. Emits {OfferPriceChanged}.
    function setOfferPrice(uint256 offerId, uint256 pricePerCuPerEpoch) external;

    /// @notice Pauses or resumes an offer; a paused offer gets no new workers.
    /// @dev Only the offer's provider. Emits {OfferPausedSet}.
    function setOfferPaused(uint256 offerId, bool paused) external;

    /// @notice Adds a peer to an offer.
    /// @dev Only the offer's provider; the stake must cover the new CUs. Emits {PeerAdded}.
    function addPeer(uint256 offerId, PeerSpec calldata peer) external returns (uint256 peerId);

    /// @notice Changes a peer's total CUs; it cannot drop below the CUs in use.
    /// @dev Only the offer's provider. Reverts with {MarketCapacityInUse} or
    /// {MarketInsufficientStake}. Emits {PeerCapacityChanged}.
    function setPeerCapacity(uint256 peerId, uint32 totalCus) external;

    /// @notice Removes a peer that runs no workers.
    /// @dev Only the offer's provider. Reverts with {MarketCapacityInUse}. Emits {PeerRemoved}.
    function removePeer(uint256 peerId) external;

    // ------------------------------------------------- deal manager callbacks

    /// @notice Takes `cus` free CUs of a peer for a new worker.
    /// @dev Only the DealManager. Emits {CusAllocated}.
    function allocateCus(uint256 peerId, uint32 cus) external;

    /// @notice Gives `cus` CUs of a peer back when a worker leaves.
    /// @dev Only the DealManager. Emits {CusReleased}.
    function releaseCus(uint256 peerId, uint32 cus) external;

    /// @notice Sets the DealManager once, after both contracts are deployed.
    /// @dev Only the owner, only once. Reverts with {MarketZeroAddress} for the
    /// zero address. Emits {DealManagerSet}.
    function setDealManager(address dealManager) external;

    // -------------------------------------------------------------- slashing

    /// @notice Takes up to `amount` FLT wei from the provider's stake, then from
    /// its unbonding FLT, and pays the reporter {slashReporterShareBps} of it.
    /// The rest goes to the treasury.
    /// @dev Only a slasher (the DealManager's challenge logic, or an account the
    /// owner appoints). Slashing what is not there is not an error: it takes
    /// what there is. The reporter's share is withdrawn with {withdrawSlashReward}.
    /// Reverts with {MarketNotSlasher}, {MarketZeroAmount} or
    /// {MarketProviderNotRegistered}. Emits {ProviderSlashed}.
    /// @param reason a short code for the offence, for example "missed-challenge"
    /// @return slashed FLT wei taken
    function slash(address provider, uint256 amount, address reporter, bytes32 reason)
        external
        returns (uint256 slashed);

    /// @notice Sends the caller's slash rewards.
    /// @dev Reverts with {MarketNoSlashReward}. Emits {SlashRewardWithdrawn}.
    function withdrawSlashReward() external;

    /// @notice Sends `amount` FLT wei of the treasury to `to`.
    /// @dev Only the owner. Reverts with {MarketTreasuryTooLow} or
    /// {MarketZeroAddress}. Emits {TreasuryWithdrawn}.
    function withdrawTreasury(address to, uint256 amount) external;

    /// @notice Lets `account` slash providers, or stops it.
    /// @dev Only the owner. Emits {SlasherSet}.
    function setSlasher(address account, bool allowed) external;

    /// @notice Sets the share of a slash paid to the reporter, in basis points.
    /// @dev Only the owner; at most 10000. Reverts with {MarketInvalidShare}. Emits {SlashReporterShareSet}.
    function setSlashReporterShareBps(uint16 shareBps) external;

    // ----------------------------------------------------------------- admin

    /// @notice Sets the FLT wei of stake required per offered CU.
    /// @dev Only the owner. A raise applies at once. Providers whose stake no
    /// longer covers their CUs get no new workers until they stake more, and
    /// they cannot add CUs or unstake. Emits {CollateralPerCuSet}.
    function setCollateralPerCu(uint256 collateralPerCu) external;

    // ----------------------------------------------------------------- views

    function flt() external view returns (address);
    function dealManager() external view returns (address);
    /// @notice FLT wei of stake required per offered CU.
    function collateralPerCu() external view returns (uint256);
    /// @notice Seconds between {requestUnstake} and {withdrawUnstaked}.
    function unbondingPeriod() external view returns (uint64);
    function getProvider(address provider) external view returns (Provider memory);
    function getOffer(uint256 offerId) external view returns (Offer memory);
    function getPeer(uint256 peerId) external view returns (Peer memory);
    /// @notice Peer id that uses `signer`, or 0 if none does.
    function peerIdBySigner(address signer) external view returns (uint256);
    /// @notice Stake the provider needs for its offered CUs, in FLT wei.
    function requiredStake(address provider) external view returns (uint256);
    function offerCount() external view returns (uint256);
    function peerCount() external view returns (uint256);
    /// @notice The peer's data for a placement check; `live` is false for an unknown or removed peer.
    function peerPlacement(uint256 peerId) external view returns (PeerPlacement memory);
    /// @notice The provider that owns the peer's offer; reverts with {MarketPeerNotFound} for an unknown id.
    function peerProvider(uint256 peerId) external view returns (address);
    /// @notice The peer's signer; reverts with {MarketPeerNotFound} for an unknown id. Removed peers keep theirs.
    function peerSigner(uint256 peerId) external view returns (address);
    function isSlasher(address account) external view returns (bool);
    /// @notice Share of a slash paid to the reporter, in basis points.
    function slashReporterShareBps() external view returns (uint16);
    /// @notice Slash rewards the account can withdraw, in FLT wei.
    function slashRewards(address account) external view returns (uint256);
    /// @notice Slashed FLT wei that the owner can withdraw.
    function treasuryBalance() external view returns (uint256);
}
