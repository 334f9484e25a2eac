// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IChallengeManager} from "../interfaces/IChallengeManager.sol";
import {IDealManager} from "../interfaces/IDealManager.sol";
import {IExecutionReceipts} from "../interfaces/IExecutionReceipts.sol";
import {IMarket} from "../interfaces/IMarket.sol";

/// @title Challenges of epoch proofs, fraud proofs and per-deal replication.
/// @notice See {IChallengeManager}. It is a contract of its own because the
/// DealManager is close to the 24 KiB code size limit. It forfeits and restores
/// epochs through {IDealManager.setEpochProven} and slashes through
/// {IMarket.slash}, so the admin must name it in both.
contract ChallengeManager is IChallengeManager, ReentrancyGuard, Ownable {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @inheritdoc IChallengeManager
    uint8 public constant MAX_REPLICATION = 5;
    /// @inheritdoc IChallengeManager
    uint64 public constant CALLER_CHANGE_DELAY_EPOCHS = 2;

    /// @inheritdoc IChallengeManager
    address public immutable dealManager;
    /// @inheritdoc IChallengeManager
    address public immutable market;
    /// @inheritdoc IChallengeManager
    address public immutable receipts;
    /// @inheritdoc IChallengeManager
    address public immutable flt;

    Parameters private _parameters;
    /// @inheritdoc IChallengeManager
    uint256 public challengeCount;
    mapping(uint256 challengeId => Challenge) private _challenges;
    mapping(uint256 dealId => uint8) private _replication;
    /// @inheritdoc IChallengeManager
    mapping(uint256 dealId => uint64) public callersRestrictedFrom;
    // First epoch in which a caller's requests no longer count: type(uint64).max
    // while the caller is allowed, 0 if it never was.
    mapping(uint256 dealId => mapping(address caller => uint64)) private _callerAllowedUntil;
    /// @inheritdoc IChallengeManager
    mapping(uint256 dealId => uint256) public allowedCallerCount;
    // Epochs whose submitted proof this contract forfeited. The DealManager then
    // shows them unproven, but they must not count as missed proofs.
    mapping(uint256 workerId => mapping(uint64 epoch => bool)) private _forfeited;
    // Epochs that a fraud proof forfeited. A later answer to a challenge of the
    // same epoch pays the bond but does not restore the epoch.
    mapping(uint256 workerId => mapping(uint64 epoch => bool)) private _fraudForfeited;
    /// @inheritdoc IChallengeManager
    mapping(bytes32 fraudKey => bool) public fraudSettled;

    /// @param dealManager_ DealManager whose proofs are challenged
    /// @param market_ Market that slashes providers
    /// @param receipts_ ExecutionReceipts: the EIP-712 domain of requests and receipts
    /// @param flt_ token of bonds and stake
    /// @param admin owner who sets the parameters
    /// @param parameters_ first bond, slash amounts and answer period
    constructor(
        address dealManager_,
        address market_,
        address receipts_,
        address flt_,
        address admin,
        Parameters memory parameters_
    ) Ownable(admin) {
        if (dealManager_ == address(0)) revert ChallengeInvalidParameters("dealManager");
        if (market_ == address(0)) revert ChallengeInvalidParameters("market");
        if (receipts_ == address(0)) revert ChallengeInvalidParameters("receipts");
        if (flt_ == address(0)) revert ChallengeInvalidParameters("flt");
        dealManager = dealManager_;
        market = market_;
        receipts = receipts_;
        flt = flt_;
        _setParameters(parameters_);
    }

    // -------------------------------------------------------------- settings

    /// @inheritdoc IChallengeManager
    function setParameters(Parameters calldata parameters_) external onlyOwner {
        _setParameters(parameters_);
    }

    /// @inheritdoc IChallengeManager
    function setReplication(uint256 dealId, uint8 replication) external {
        _checkDealOwner(dealId);
        if (replication == 0 || replication > MAX_REPLICATION) {
            revert ChallengeReplicationOutOfRange(dealId, replication, MAX_REPLICATION);
        }

        _replication[dealId] = replication;

        emit ReplicationSet(dealId, replication);
    }

    /// @inheritdoc IChallengeManager
    function setCallerAllowed(uint256 dealId, address caller, bool allowed) external {
        _checkDealOwner(dealId);
        if (caller == address(0)) revert ChallengeInvalidParameters("caller");
        bool current = _callerAllowedUntil[dealId][caller] == type(uint64).max;
        if (current == allowed) return;

        // Receipts of the current and the next epoch may already exist or be in
        // flight, so a change that narrows who counts applies after them.
        uint64 effectiveEpoch = IDealManager(dealManager).currentEpoch() + CALLER_CHANGE_DELAY_EPOCHS;
        if (allowed) {
            _callerAllowedUntil[dealId][caller] = type(uint64).max;
            allowedCallerCount[dealId] += 1;
            if (callersRestrictedFrom[dealId] == 0) callersRestrictedFrom[dealId] = effectiveEpoch;
        } else {
            _callerAllowedUntil[dealId][caller] = effectiveEpoch;
            allowedCallerCount[dealId] -= 1;
        }

        emit CallerAllowed(dealId, caller, allowed, effectiveEpoch);
    }

    // ------------------------------------------------------------ challenges

    /// @inheritdoc IChallengeManager
    /// @dev The leaf index mixes the previous block's hash, `prevrandao` and the
    /// challenge id. A block producer could bias it; see docs/proofs.md.
    function challengeSample(IDealManager.EpochProofEntry[] calldata batch, uint256 entryIndex)
        external
        nonReentrant
        returns (uint256 challengeId)
    {
        IDealManager.EpochProofEntry calldata entry = _standingEntry(batch, entryIndex);
        if (entry.calls == 0) revert ChallengeNothingToSample(entry.workerId, entry.epoch);

        challengeId = ++challengeCount;
        uint256 seed = uint256(keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, challengeId)));
        Challenge storage challenge = _openChallenge(challengeId, entry, ChallengeKind.SAMPLE);
        challenge.leafIndex = uint64(seed % entry.calls);

        _emitOpened(challengeId, challenge);
        _forfeitAndPullBond(challenge);
    }

    /// @inheritdoc IChallengeManager
    function challengeReceipt(
        IDealManager.EpochProofEntry[] calldata batch,
        uint256 entryIndex,
        SignedReceipt calldata signedReceipt
    ) external nonReentrant returns (uint256 challengeId) {
        IDealManager.EpochProofEntry calldata entry = _standingEntry(batch, entryIndex);
        IExecutionReceipts.Receipt calldata named = signedReceipt.receipt;
        if (named.workerId != entry.workerId || named.epoch != entry.epoch) {
            revert ChallengeReceiptNotOfEntry(entry.workerId, entry.epoch, named.workerId, named.epoch);
        }

        challengeId = ++challengeCount;
        Challenge storage challenge = _openChallenge(challengeId, entry, ChallengeKind.RECEIPT);
        bytes32 digest = IExecutionReceipts(receipts).hashReceipt(signedReceipt.receipt);
        address signer = ECDSA.recover(digest, signedReceipt.signature);
        if (signer != challenge.signer) {
            revert ChallengeReceiptNotFromWorker(entry.workerId, entry.epoch, signer, challenge.signer);
        }
        challenge.receiptDigest = digest;

        _emitOpened(challengeId, challenge);
        _forfeitAndPullBond(challenge);
    }

    /// @inheritdoc IChallengeManager
    function answerChallenge(
        uint256 challengeId,
        SignedCall calldata call,
        LeafOpening calldata leaf,
        LeafOpening calldata next
    ) external nonReentrant {
        Challenge storage challenge = _openChallengeOf(challengeId);
        if (msg.sender != challenge.signer && msg.sender != challenge.provider) {
            revert ChallengeNotAnswerer(challengeId, msg.sender);
        }
        if (block.timestamp > challenge.deadline) revert ChallengeDeadlinePassed(challengeId, challenge.deadline);

        _checkOpenedLeaf(challengeId, challenge, call, leaf);
        (bool valid, Fault fault) = _judgeReceipt(challengeId, challenge, call, leaf, next);
        if (!valid) {
            _uphold(challengeId, challenge, fault);
            return;
        }

        challenge.status = ChallengeStatus.ANSWERED;
        emit ChallengeAnswered(challengeId, challenge.workerId, challenge.epoch, challenge.provider);

        if (!_fraudForfeited[challenge.workerId][challenge.epoch]) {
            IDealManager(dealManager).setEpochProven(challenge.workerId, challenge.epoch, true);
        }
        IERC20(flt).safeTransfer(challenge.provider, challenge.bond);
    }

    /// @inheritdoc IChallengeManager
    function resolveUnanswered(uint256 challengeId) external nonReentrant {
        Challenge storage challenge = _openChallengeOf(challengeId);
        if (block.timestamp <= challenge.deadline) {
            revert ChallengeDeadlineNotReached(challengeId, challenge.deadline);
        }
        _uphold(challengeId, challenge, Fault.UNANSWERED);
    }

    // ---------------------------------------------------------- fraud proofs

    /// @inheritdoc IChallengeManager
    function proveEquivocation(SignedReceipt calldata first, SignedReceipt calldata second) external nonReentrant {
        IExecutionReceipts receiptsContract = IExecutionReceipts(receipts);
        bytes32 firstDigest = receiptsContract.hashReceipt(first.receipt);
        bytes32 secondDigest = receiptsContract.hashReceipt(second.receipt);
        bytes32 requestHash = first.receipt.requestHash;
        if (second.receipt.requestHash != requestHash) revert FraudNotProven("receipts answer different requests");
        if (firstDigest == secondDigest) revert FraudNotProven("the two receipts are the same");

        address signer = ECDSA.recover(firstDigest, first.signature);
        if (ECDSA.recover(secondDigest, second.signature) != signer) {
            revert FraudNotProven("receipts have different signers");
        }
        IDealManager.Worker memory worker = IDealManager(dealManager).getWorker(first.receipt.workerId);
        if (IMarket(market).peerSigner(worker.peerId) != signer) {
            revert FraudNotProven("signer is not the peer signer of the first receipt's worker");
        }

        bytes32 fraudKey = keccak256(abi.encode(Fault.EQUIVOCATION, signer, requestHash));
        _settleFraud(fraudKey);
        _forfeit(first.receipt.workerId, first.receipt.epoch);
        if (second.receipt.workerId == first.receipt.workerId) _forfeit(second.receipt.workerId, second.receipt.epoch);
        _slashFraud(fraudKey, worker.provider, first.receipt.workerId, first.receipt.epoch, Fault.EQUIVOCATION);
    }

    /// @inheritdoc IChallengeManager
    function proveDisagreement(
        IExecutionReceipts.CallRequest calldata request,
        bytes calldata requestSignature,
        SignedReceipt[] calldata majority,
        SignedReceipt calldata minority
    ) external nonReentrant {
        bytes32 requestHash = IExecutionReceipts(receipts).hashCallRequest(request);
        (address caller, ECDSA.RecoverError error_,) = ECDSA.tryRecover(requestHash, requestSignature);
        if (error_ != ECDSA.RecoverError.NoError || caller == address(0)) {
            revert FraudNotProven("request signature does not verify");
        }
        if (!isCallerAllowedAt(request.dealId, caller, minority.receipt.epoch)) {
            revert FraudNotProven("request signer is not an allowed caller");
        }
        if (majority.length < 2 || majority.length > MAX_REPLICATION) {
            revert FraudNotProven("majority needs 2 to MAX_REPLICATION receipts");
        }

        address minorityProvider = _checkReplica(request.dealId, requestHash, minority);
        bytes32 outcome = _outcome(majority[0].receipt);
        if (_outcome(minority.receipt) == outcome) revert FraudNotProven("minority agrees with the majority");
        address[] memory seen = new address[](majority.length);
        for (uint256 i = 0; i < majority.length; i++) {
            address provider = _checkReplica(request.dealId, requestHash, majority[i]);
            if (_outcome(majority[i].receipt) != outcome) revert FraudNotProven("majority receipts disagree");
            if (provider == minorityProvider) revert FraudNotProven("majority includes the minority's provider");
            for (uint256 j = 0; j < i; j++) {
                if (seen[j] == provider) revert FraudNotProven("majority receipts share a provider");
            }
            seen[i] = provider;
        }

        uint256 workerId = minority.receipt.workerId;
        bytes32 fraudKey = keccak256(abi.encode(Fault.DISAGREEMENT, workerId, requestHash));
        _settleFraud(fraudKey);
        _forfeit(workerId, minority.receipt.epoch);
        _slashFraud(fraudKey, minorityProvider, workerId, minority.receipt.epoch, Fault.DISAGREEMENT);
    }

    /// @inheritdoc IChallengeManager
    function reportMissedProof(uint256 workerId, uint64 epoch) external nonReentrant {
        IDealManager deals = IDealManager(dealManager);
        IDealManager.Worker memory worker = deals.getWorker(workerId);
        (uint64 opensAt, uint64 claimsAt) = _challengeWindow(epoch);
        if (block.timestamp < opensAt || block.timestamp >= claimsAt) {
            revert MissedProofNotReportable(workerId, epoch, "outside the epoch's challenge window");
        }
        IDealManager.Deal memory deal = deals.getDeal(worker.dealId);
        uint64 inDealUntil = worker.leftEpoch < deal.endEpoch ? worker.leftEpoch : deal.endEpoch;
        if (epoch < worker.joinedEpoch || epoch >= inDealUntil) {
            revert MissedProofNotReportable(workerId, epoch, "worker was not in the deal");
        }
        if (deals.getEpochProof(workerId, epoch).proven || _forfeited[workerId][epoch]) {
            revert MissedProofNotReportable(workerId, epoch, "proven");
        }
        if (!_wasFunded(worker.dealId, deal, epoch)) {
            revert MissedProofNotReportable(workerId, epoch, "deal did not pay for the epoch");
        }

        bytes32 fraudKey = keccak256(abi.encode(Fault.MISSED_PROOF, workerId, epoch));
        _settleFraud(fraudKey);
        _slashAmount(fraudKey, worker.provider, workerId, epoch, Fault.MISSED_PROOF, _parameters.missedProofSlashAmount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IChallengeManager
    function parameters() external view returns (Parameters memory) {
        return _parameters;
    }

    /// @inheritdoc IChallengeManager
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IChallengeManager
    function isCallerAllowed(uint256 dealId, address caller) external view returns (bool) {
        return isCallerAllowedAt(dealId, caller, IDealManager(dealManager).currentEpoch());
    }

    /// @inheritdoc IChallengeManager
    function isCallerAllowedAt(uint256 dealId, address caller, uint64 epoch) public view returns (bool) {
        uint64 restrictedFrom = callersRestrictedFrom[dealId];
        return restrictedFrom == 0 || epoch < restrictedFrom || epoch < _callerAllowedUntil[dealId][caller];
    }

    /// @inheritdoc IChallengeManager
    function replicationOf(uint256 dealId) external view returns (uint8) {
        uint8 replication = _replication[dealId];
        return replication == 0 ? 1 : replication;
    }

    // -------------------------------------------------------------- internal

    function _checkDealOwner(uint256 dealId) private view {
        address owner_ = IDealManager(dealManager).getDeal(dealId).owner;
        if (msg.sender != owner_) revert ChallengeNotDealOwner(dealId, msg.sender);
    }

    function _setParameters(Parameters memory parameters_) private {
        if (parameters_.challengeBond == 0) revert ChallengeInvalidParameters("challengeBond");
        if (parameters_.slashAmount == 0) revert ChallengeInvalidParameters("slashAmount");
        if (parameters_.missedProofSlashAmount == 0) revert ChallengeInvalidParameters("missedProofSlashAmount");
        IDealManager deals = IDealManager(dealManager);
        // A challenge must fit, with its answer, inside the challenge window.
        uint256 window = uint256(deals.challengeWindowEpochs()) * deals.epochDuration();
        if (parameters_.answerPeriod == 0 || (window > 0 && parameters_.answerPeriod >= window)) {
            revert ChallengeInvalidParameters("answerPeriod");
        }

        _parameters = parameters_;

        emit ParametersSet(
            parameters_.challengeBond,
            parameters_.slashAmount,
            parameters_.missedProofSlashAmount,
            parameters_.answerPeriod
        );
    }

    /// @dev Returns the entry after checking that the batch was recorded, that
    /// its epoch is in its challenge window with time left to answer, and that
    /// the proof still stands (not forfeited, not under another open challenge).
    function _standingEntry(IDealManager.EpochProofEntry[] calldata batch, uint256 entryIndex)
        private
        view
        returns (IDealManager.EpochProofEntry calldata entry)
    {
        bytes32 batchHash = keccak256(abi.encode(batch));
        if (IDealManager(dealManager).proofBatchSubmittedAt(batchHash) == 0) revert ChallengeUnknownBatch(batchHash);
        if (entryIndex >= batch.length) revert ChallengeEntryOutOfRange(entryIndex, batch.length);
        entry = batch[entryIndex];

        (uint64 opensAt, uint64 claimsAt) = _challengeWindow(entry.epoch);
        // One second before the last deadline that still lands before claims
        // open, so that no answer shares its second with a claim.
        uint64 closesAt = claimsAt - _parameters.answerPeriod - 1;
        if (block.timestamp < opensAt || block.timestamp > closesAt) {
            revert ChallengeOutsideWindow(entry.workerId, entry.epoch, opensAt, closesAt);
        }
        if (!IDealManager(dealManager).getEpochProof(entry.workerId, entry.epoch).proven) {
            revert ChallengeProofNotStanding(entry.workerId, entry.epoch);
        }
    }

    /// @dev Unix seconds at which the epoch's challenge window opens (its proof
    /// window has closed) and at which its claims open. Equal when there is no
    /// challenge window.
    function _challengeWindow(uint64 epoch) private view returns (uint64 opensAt, uint64 claimsAt) {
        IDealManager deals = IDealManager(dealManager);
        uint64 duration = deals.epochDuration();
        uint64 proofClosed = epoch + deals.proofWindowEpochs() + 1;
        opensAt = deals.genesis() + proofClosed * duration;
        claimsAt = opensAt + deals.challengeWindowEpochs() * duration;
    }

    function _openChallenge(uint256 challengeId, IDealManager.EpochProofEntry calldata entry, ChallengeKind kind)
        private
        returns (Challenge storage challenge)
    {
        IDealManager.Worker memory worker = IDealManager(dealManager).getWorker(entry.workerId);
        challenge = _challenges[challengeId];
        challenge.workerId = entry.workerId.toUint64();
        challenge.dealId = worker.dealId.toUint64();
        challenge.epoch = entry.epoch;
        challenge.deadline = uint64(block.timestamp) + _parameters.answerPeriod;
        challenge.challenger = msg.sender;
        challenge.kind = kind;
        challenge.status = ChallengeStatus.OPEN;
        challenge.provider = worker.provider;
        challenge.signer = IMarket(market).peerSigner(worker.peerId);
        challenge.receiptsRoot = entry.receiptsRoot;
        challenge.calls = entry.calls;
        challenge.usage = entry.usage;
        challenge.bond = _parameters.challengeBond;
    }

    function _emitOpened(uint256 challengeId, Challenge storage challenge) private {
        emit ChallengeOpened(
            challengeId,
            challenge.workerId,
            challenge.epoch,
            challenge.challenger,
            challenge.kind,
            challenge.leafIndex,
            challenge.receiptDigest,
            challenge.deadline
        );
    }

    /// @dev The epoch counts as unproven while the challenge is open, so a claim
    /// never pays it before the answer. The bond is pulled last.
    function _forfeitAndPullBond(Challenge storage challenge) private {
        _forfeited[challenge.workerId][challenge.epoch] = true;
        IDealManager(dealManager).setEpochProven(challenge.workerId, challenge.epoch, false);
        IERC20(flt).safeTransferFrom(msg.sender, address(this), challenge.bond);
    }

    function _openChallengeOf(uint256 challengeId) private view returns (Challenge storage challenge) {
        challenge = _challenges[challengeId];
        if (challenge.status != ChallengeStatus.OPEN) revert ChallengeNotOpen(challengeId, challenge.status);
    }

    /// @dev Checks that the answer opens the challenged leaf of the proof's root
    /// and that the worker's peer signed the receipt for the request it carries.
    function _checkOpenedLeaf(
        uint256 challengeId,
        Challenge storage challenge,
        SignedCall calldata call,
        LeafOpening calldata leaf
    ) private view {
        IExecutionReceipts receiptsContract = IExecutionReceipts(receipts);
        bytes32 digest = receiptsContract.hashReceipt(call.receipt);
        bool named = challenge.kind == ChallengeKind.SAMPLE
            ? leaf.index == challenge.leafIndex
            : digest == challenge.receiptDigest;
        if (!named || leaf.index >= challenge.calls || leaf.receiptDigest != digest) {
            revert ChallengeWrongLeaf(challengeId, digest, leaf.index);
        }
        bytes32 leafHash = receiptsContract.receiptLeaf(digest, leaf.index, leaf.fuelBefore);
        if (!MerkleProof.verifyCalldata(leaf.proof, challenge.receiptsRoot, leafHash)) {
            revert ChallengeLeafNotInRoot(challengeId, leaf.index);
        }
        address signer = ECDSA.recover(digest, call.receiptSignature);
        if (signer != challenge.signer) revert ChallengeBadReceiptSignature(signer, challenge.signer);
        bytes32 requestHash = receiptsContract.hashCallRequest(call.request);
        if (requestHash != call.receipt.requestHash) {
            revert ChallengeRequestMismatch(requestHash, call.receipt.requestHash);
        }
    }

    /// @dev Judges a receipt that the proof contains: whether it is a call of this
    /// worker, epoch and deal, signed by a caller before its deadline, and whether
    /// the running fuel total agrees with the next leaf or with the proof's usage.
    function _judgeReceipt(
        uint256 challengeId,
        Challenge storage challenge,
        SignedCall calldata call,
        LeafOpening calldata leaf,
        LeafOpening calldata next
    ) private view returns (bool valid, Fault fault) {
        IExecutionReceipts.Receipt calldata receipt = call.receipt;
        if (receipt.workerId != challenge.workerId) return (false, Fault.WRONG_WORKER);
        if (receipt.epoch != challenge.epoch) return (false, Fault.WRONG_EPOCH);
        if (call.request.dealId != challenge.dealId) return (false, Fault.WRONG_DEAL);
        (address caller, ECDSA.RecoverError error_,) = ECDSA.tryRecover(receipt.requestHash, call.requestSignature);
        if (
            error_ != ECDSA.RecoverError.NoError || caller == address(0)
                || !isCallerAllowedAt(challenge.dealId, caller, receipt.epoch)
        ) {
            return (false, Fault.BAD_CALLER_SIGNATURE);
        }
        IDealManager deals = IDealManager(dealManager);
        uint256 epochStart = uint256(deals.genesis()) + uint256(receipt.epoch) * deals.epochDuration();
        if (call.request.deadline < epochStart) return (false, Fault.EXPIRED_REQUEST);

        // Running fuel totals: leaf 0 starts at 0, each leaf ends where the next
        // begins, and the last one ends at the proof's usage.
        uint256 fuelAfter = uint256(leaf.fuelBefore) + receipt.fuelUsed;
        if (leaf.index == 0 && leaf.fuelBefore != 0) return (false, Fault.USAGE_MISMATCH);
        if (fuelAfter > challenge.usage) return (false, Fault.USAGE_MISMATCH);
        if (leaf.index + 1 == challenge.calls) {
            return fuelAfter == challenge.usage ? (true, Fault.UNANSWERED) : (false, Fault.USAGE_MISMATCH);
        }
        if (next.index != leaf.index + 1) revert ChallengeWrongLeaf(challengeId, next.receiptDigest, next.index);
        bytes32 nextLeaf = IExecutionReceipts(receipts).receiptLeaf(next.receiptDigest, next.index, next.fuelBefore);
        if (!MerkleProof.verifyCalldata(next.proof, challenge.receiptsRoot, nextLeaf)) {
            revert ChallengeLeafNotInRoot(challengeId, next.index);
        }
        if (next.fuelBefore != fuelAfter) return (false, Fault.USAGE_MISMATCH);
        return (true, Fault.UNANSWERED);
    }

    /// @dev The epoch was forfeited when the challenge opened and stays so.
    function _uphold(uint256 challengeId, Challenge storage challenge, Fault fault) private {
        challenge.status = ChallengeStatus.UPHELD;
        emit ChallengeUpheld(challengeId, challenge.workerId, challenge.epoch, challenge.provider, fault);

        IMarket(market).slash(challenge.provider, _parameters.slashAmount, challenge.challenger, bytes32(challengeId));
        IERC20(flt).safeTransfer(challenge.challenger, challenge.bond);
    }

    function _settleFraud(bytes32 fraudKey) private {
        if (fraudSettled[fraudKey]) revert FraudAlreadyProven(fraudKey);
        fraudSettled[fraudKey] = true;
    }

    function _slashFraud(bytes32 fraudKey, address provider, uint256 workerId, uint64 epoch, Fault fault) private {
        _slashAmount(fraudKey, provider, workerId, epoch, fault, _parameters.slashAmount);
    }

    function _slashAmount(
        bytes32 fraudKey,
        address provider,
        uint256 workerId,
        uint64 epoch,
        Fault fault,
        uint256 amount
    ) private {
        uint256 slashed = IMarket(market).slash(provider, amount, msg.sender, fraudKey);
        emit FraudProven(fraudKey, provider, workerId, epoch, msg.sender, fault, slashed);
    }

    /// @dev Forfeits an epoch once its proof window has closed, also for good
    /// when a challenge of it is open. Inside the window the peer could prove
    /// the epoch again, so it is left alone there; the slash still applies.
    function _forfeit(uint256 workerId, uint64 epoch) private {
        IDealManager deals = IDealManager(dealManager);
        if (deals.currentEpoch() <= uint256(epoch) + deals.proofWindowEpochs()) return;
        _fraudForfeited[workerId][epoch] = true;
        if (!deals.getEpochProof(workerId, epoch).proven) return;
        _forfeited[workerId][epoch] = true;
        deals.setEpochProven(workerId, epoch, false);
    }

    /// @dev Checks one replica's receipt: for this request, from a worker of the
    /// request's deal, signed by that worker's peer signer. Returns its provider.
    function _checkReplica(uint256 dealId, bytes32 requestHash, SignedReceipt calldata replica)
        private
        view
        returns (address provider)
    {
        if (replica.receipt.requestHash != requestHash) revert FraudNotProven("receipt is for another request");
        IDealManager.Worker memory worker = IDealManager(dealManager).getWorker(replica.receipt.workerId);
        if (worker.dealId != dealId) revert FraudNotProven("receipt is from a worker of another deal");
        bytes32 digest = IExecutionReceipts(receipts).hashReceipt(replica.receipt);
        if (ECDSA.recover(digest, replica.signature) != IMarket(market).peerSigner(worker.peerId)) {
            revert FraudNotProven("receipt is not signed by its worker's peer signer");
        }
        provider = worker.provider;
    }

    /// @dev What replicas must agree on: the output and the fuel it took.
    function _outcome(IExecutionReceipts.Receipt calldata receipt) private pure returns (bytes32) {
        return keccak256(abi.encode(receipt.outputHash, receipt.fuelUsed));
    }

    /// @dev Whether the deal's balance paid for `epoch`: settled epochs unless in
    /// an unfunded span, and later epochs while the stored balance lasts.
    function _wasFunded(uint256 dealId, IDealManager.Deal memory deal, uint64 epoch) private view returns (bool) {
        if (epoch >= deal.settledEpoch) {
            if (deal.ratePerEpoch == 0) return true;
            return epoch - deal.settledEpoch < deal.balance / deal.ratePerEpoch;
        }
        IDealManager.EpochSpan[] memory spans = IDealManager(dealManager).unfundedSpans(dealId);
        for (uint256 i = 0; i < spans.length; i++) {
            if (epoch >= spans[i].start && epoch < spans[i].end) return false;
        }
        return true;
    }
}
