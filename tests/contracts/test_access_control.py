"""Access control of every mutating function of the deployed contracts.

Each nonpayable or payable function in the compiled ABI of the contracts in
CONTRACT_NAMES is either in GUARDED or in OPEN_BY_DESIGN. A GUARDED case
calls the function from each wrong account, expects the named custom error
with all its arguments, and then makes the same call from the right account,
which must succeed. So a guard that rejects everybody fails too.
test_mutating_functions_all_listed fails when the ABI gains a function
that neither table names, or when a table names a function that is gone.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from contract_helpers import (
    ANSWER_PERIOD,
    CHALLENGE_BOND,
    COLLATERAL_PER_CU,
    FLT,
    MISSED_PROOF_SLASH_AMOUNT,
    PRICE,
    PROOF_WINDOW_EPOCHS,
    REGION,
    SLASH_AMOUNT,
    UNBONDING_SECONDS,
    USDC,
)
from revert_checks import reverts_with

CONTRACT_NAMES = ("Market", "DealManager", "ChallengeManager", "FLT", "TestUSDC", "Faucet", "ExecutionReceipts")
MUTATING = ("nonpayable", "payable")

ROOT = b"\x22" * 32
NEW_APP_CID = b"\x01\x55\x12\x20" + b"\x33" * 32
REASON = b"missed-challenge".ljust(32, b"\x00")
ENDPOINT = "https://node.example.org"
UNUSED_SIGNER = "0x" + f"{0xACCE55:040x}"
"""A peer signer address that no test account and no other peer uses."""

OPEN_BY_DESIGN = {
    ("Market", "registerProvider"): "any account may register itself once, and a second call reverts",
    ("Market", "withdrawUnstaked"): "pays out only the caller's own unbonded FLT",
    ("Market", "withdrawSlashReward"): "pays out only the caller's own slash rewards",
    ("DealManager", "createDeal"): "any account may open a deal funded by its own deposit",
    ("DealManager", "deposit"): "anyone may top a deal up, as IDealManager.deposit documents",
    ("DealManager", "matchDeal"): "anyone may place workers, because each candidate is re-checked on chain",
    ("DealManager", "withdrawEarnings"): "pays out only the caller's own claimed earnings",
    ("ChallengeManager", "challengeSample"): "anyone may challenge a recorded proof, paying a bond that an answer loses",
    ("ChallengeManager", "challengeReceipt"): (
        "anyone may challenge with a receipt that the worker's peer signed, paying a bond that an answer loses"
    ),
    ("ChallengeManager", "resolveUnanswered"): "only upholds a challenge whose deadline passed without an answer",
    ("ChallengeManager", "proveEquivocation"): "slashes only on two receipts signed by the worker's peer signer",
    ("ChallengeManager", "proveDisagreement"): (
        "slashes only on a caller-signed request and receipts signed by the peers of the deal's workers"
    ),
    ("ChallengeManager", "reportMissedProof"): "slashes only for a funded epoch left unproven, once, in its challenge window",
    ("FLT", "approve"): "ERC-20: sets the caller's own allowance",
    ("FLT", "transfer"): "ERC-20: moves the caller's own tokens",
    ("FLT", "transferFrom"): "ERC-20: limited by the owner's allowance to the caller",
    ("FLT", "permit"): "EIP-2612: needs the owner's signature, which test_tokens.py checks",
    ("TestUSDC", "approve"): "ERC-20: sets the caller's own allowance",
    ("TestUSDC", "transfer"): "ERC-20: moves the caller's own tokens",
    ("TestUSDC", "transferFrom"): "ERC-20: limited by the owner's allowance to the caller",
    ("TestUSDC", "permit"): "EIP-2612: needs the owner's signature, which test_tokens.py checks",
    ("Faucet", "drip"): "anyone may request a drip for any recipient, limited by the per-recipient cool-down",
}


@dataclass
class Env:
    """Deployed contracts, accounts and helpers that the case factories use."""

    request: object
    chain: object
    accounts: object
    project: object
    market: object
    deal_manager: object
    flt: object
    usdc: object
    build: object
    clock: object
    admin: object
    developer: object
    providers: list
    stranger: object
    signers: list
    challenges: object  # ChallengeEnv of the DealManager with a challenge window

    @property
    def provider(self):
        return self.providers[0]

    @property
    def slasher(self):
        """Account that a case appoints as slasher. The cases give signers[3] no other role."""
        return self.signers[3]

    @property
    def faucet(self):
        return self.request.getfixturevalue("faucet")


@dataclass
class Case:
    """One guarded function: how to call it, who may, who may not, and the error they get."""

    call: Callable  # call(sender) sends the transaction from `sender`
    allowed: object
    wrong: list
    error: Callable  # error(caller) returns (error type, error arguments) for a wrong caller


GUARDED: dict[tuple[str, str], Callable[[Env], Case]] = {}


def guarded(contract_name, function_name):
    """Register a case factory for one guarded function."""

    def register(factory):
        GUARDED[(contract_name, function_name)] = factory
        return factory

    return register


@pytest.fixture
def faucet(project, admin, flt, usdc):
    if not hasattr(project, "Faucet"):
        pytest.skip("contracts/tokens/Faucet.sol is not in the project")
    deployed = project.Faucet.deploy(flt, usdc, 10 * FLT, 10 * USDC, 3_600, admin, sender=admin)
    flt.mint(deployed, 100 * FLT, sender=admin)
    usdc.mint(deployed, 100 * USDC, sender=admin)
    return deployed


@pytest.fixture
def env(
    request,
    chain,
    accounts,
    project,
    market,
    deal_manager,
    flt,
    usdc,
    build,
    clock,
    admin,
    developer,
    providers,
    stranger,
    signers,
    challenge_env,
):
    # `challenge_env` is a parameter, not fetched inside a case, so that its
    # session contracts are deployed before Ape's per-test snapshot and outlive it.
    return Env(
        request=request,
        chain=chain,
        accounts=accounts,
        project=project,
        market=market,
        deal_manager=deal_manager,
        flt=flt,
        usdc=usdc,
        build=build,
        clock=clock,
        admin=admin,
        developer=developer,
        providers=providers,
        stranger=stranger,
        signers=signers,
        challenges=challenge_env,
    )


# ----------------------------------------------------------------- setups


def _offer(env):
    """Create an offer of providers[0] with one 8-CU peer signed by signers[0], and return (offer id, peer id)."""
    offer_id, [peer_id] = env.build.offer(env.provider, signers=[env.signers[0].address])
    return offer_id, peer_id


def _matched(env):
    """Create a deal of the developer with one worker on the peer of `_offer`.

    Returns (deal id, worker id, peer id).
    """
    _, peer_id = _offer(env)
    deal_id = env.build.deal()
    _, [worker_id] = env.build.match(deal_id, [peer_id])
    return deal_id, worker_id, peer_id


def _other_peer(env):
    """Create an offer of providers[1] whose peer is signed by signers[1], and return its peer id."""
    _, [peer_id] = env.build.offer(env.providers[1], signers=[env.signers[1].address])
    return peer_id


def _deal_manager_account(env):
    """Impersonate the DealManager contract, with ETH for gas, to call the Market as it does."""
    account = env.accounts[env.deal_manager.address]
    env.chain.set_balance(account.address, 10**18)
    return account


def _appoint_slasher(env):
    env.market.setSlasher(env.slasher, True, sender=env.admin)
    return env.slasher


def _admin_only(env, contract, send, extra_wrong=()):
    """Case of an OpenZeppelin `onlyOwner` function of a contract that the admin owns."""
    return Case(
        call=send,
        allowed=env.admin,
        wrong=[env.stranger, env.provider, *extra_wrong],
        error=lambda caller: (contract.OwnableUnauthorizedAccount, {"account": caller.address}),
    )


# ----------------------------------------------------------- Market cases


def _offer_owner_case(env, send):
    offer_id, peer_id = _offer(env)
    return Case(
        call=lambda sender: send(offer_id, peer_id, sender),
        allowed=env.provider,
        wrong=[env.providers[1], env.admin, env.signers[0], env.stranger],
        error=lambda caller: (env.market.MarketNotOfferOwner, {"offerId": offer_id, "caller": caller.address}),
    )


@guarded("Market", "addPeer")
def _add_peer(env):
    def send(offer_id, _peer_id, sender):
        return env.market.addPeer(offer_id, (UNUSED_SIGNER, 1), sender=sender)

    return _offer_owner_case(env, send)


@guarded("Market", "setOfferPrice")
def _set_offer_price(env):
    return _offer_owner_case(env, lambda offer_id, _, sender: env.market.setOfferPrice(offer_id, 1, sender=sender))


@guarded("Market", "setOfferPaused")
def _set_offer_paused(env):
    return _offer_owner_case(env, lambda offer_id, _, sender: env.market.setOfferPaused(offer_id, True, sender=sender))


@guarded("Market", "setPeerCapacity")
def _set_peer_capacity(env):
    return _offer_owner_case(env, lambda _, peer_id, sender: env.market.setPeerCapacity(peer_id, 4, sender=sender))


@guarded("Market", "removePeer")
def _remove_peer(env):
    return _offer_owner_case(env, lambda _, peer_id, sender: env.market.removePeer(peer_id, sender=sender))


def _deal_manager_only_case(env, peer_id, send):
    return Case(
        call=lambda sender: send(peer_id, sender),
        allowed=_deal_manager_account(env),
        wrong=[env.admin, env.provider, env.developer, env.stranger],
        error=lambda caller: (env.market.MarketNotDealManager, {"caller": caller.address}),
    )


@guarded("Market", "allocateCus")
def _allocate_cus(env):
    _, peer_id = _offer(env)
    return _deal_manager_only_case(
        env, peer_id, lambda peer, sender: env.market.allocateCus(peer, 1, sender=sender)
    )


@guarded("Market", "releaseCus")
def _release_cus(env):
    _, _, peer_id = _matched(env)
    return _deal_manager_only_case(
        env, peer_id, lambda peer, sender: env.market.releaseCus(peer, 2, sender=sender)
    )


def _registered_provider_case(env, send):
    return Case(
        call=send,
        allowed=env.provider,
        wrong=[env.stranger, env.developer, env.admin],
        error=lambda caller: (env.market.MarketProviderNotRegistered, {"provider": caller.address}),
    )


@guarded("Market", "createOffer")
def _create_offer(env):
    terms = (env.usdc.address, PRICE, REGION, 3, 9_990, 2, 2_048)
    return _registered_provider_case(
        env, lambda sender: env.market.createOffer(terms, [(UNUSED_SIGNER, 1)], sender=sender)
    )


@guarded("Market", "stake")
def _stake(env):
    # Staking adds to the caller's own stake, but only a registered provider may stake.
    return _registered_provider_case(env, lambda sender: env.market.stake(1, sender=sender))


@guarded("Market", "requestUnstake")
def _request_unstake(env):
    return _registered_provider_case(env, lambda sender: env.market.requestUnstake(FLT, sender=sender))


@guarded("Market", "setProviderEndpoint")
def _set_provider_endpoint(env):
    return _registered_provider_case(env, lambda sender: env.market.setProviderEndpoint(ENDPOINT, sender=sender))


@guarded("Market", "slash")
def _slash(env):
    slasher = _appoint_slasher(env)
    return Case(
        call=lambda sender: env.market.slash(env.provider, FLT, env.stranger, REASON, sender=sender),
        allowed=slasher,
        wrong=[env.admin, env.provider, env.stranger],
        error=lambda caller: (env.market.MarketNotSlasher, {"caller": caller.address}),
    )


@guarded("Market", "setCollateralPerCu")
def _set_collateral_per_cu(env):
    return _admin_only(
        env, env.market, lambda sender: env.market.setCollateralPerCu(2 * COLLATERAL_PER_CU, sender=sender)
    )


@guarded("Market", "setDealManager")
def _set_deal_manager(env):
    # The session Market already has its DealManager, so a fresh one shows that the owner gets through.
    fresh = env.project.Market.deploy(env.flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, env.admin, sender=env.admin)
    return _admin_only(env, fresh, lambda sender: fresh.setDealManager(env.deal_manager, sender=sender))


@guarded("Market", "setSlasher")
def _set_slasher(env):
    # The stranger tries to appoint itself.
    return _admin_only(env, env.market, lambda sender: env.market.setSlasher(env.stranger, True, sender=sender))


@guarded("Market", "setSlashReporterShareBps")
def _set_slash_reporter_share(env):
    return _admin_only(env, env.market, lambda sender: env.market.setSlashReporterShareBps(1_000, sender=sender))


@guarded("Market", "withdrawTreasury")
def _withdraw_treasury(env):
    slasher = _appoint_slasher(env)
    env.market.slash(env.provider, 10 * FLT, env.stranger, REASON, sender=slasher)
    return _admin_only(
        env,
        env.market,
        lambda sender: env.market.withdrawTreasury(sender, FLT, sender=sender),
        extra_wrong=[slasher],
    )


@guarded("Market", "renounceOwnership")
def _market_renounce(env):
    return _admin_only(env, env.market, lambda sender: env.market.renounceOwnership(sender=sender))


@guarded("Market", "transferOwnership")
def _market_transfer(env):
    return _admin_only(env, env.market, lambda sender: env.market.transferOwnership(env.stranger, sender=sender))


# ------------------------------------------------------ DealManager cases


def _deal_owner_case(env, send):
    deal_id, _, _ = _matched(env)
    return Case(
        call=lambda sender: send(deal_id, sender),
        allowed=env.developer,
        wrong=[env.stranger, env.admin, env.provider],
        error=lambda caller: (env.deal_manager.DealNotOwner, {"dealId": deal_id, "caller": caller.address}),
    )


@guarded("DealManager", "setAppCid")
def _set_app_cid(env):
    return _deal_owner_case(
        env, lambda deal_id, sender: env.deal_manager.setAppCid(deal_id, NEW_APP_CID, sender=sender)
    )


@guarded("DealManager", "stopDeal")
def _stop_deal(env):
    return _deal_owner_case(env, lambda deal_id, sender: env.deal_manager.stopDeal(deal_id, sender=sender))


@guarded("DealManager", "withdraw")
def _withdraw(env):
    return _deal_owner_case(env, lambda deal_id, sender: env.deal_manager.withdraw(deal_id, USDC, sender=sender))


def _worker_provider_case(env, send, claimable):
    """Case of a function that only the worker's provider may call.

    With `claimable`, the clock moves past the proof window of the join epoch,
    so that a claim by the provider has a range to settle.
    """
    _, worker_id, _ = _matched(env)
    if claimable:
        env.clock.advance(PROOF_WINDOW_EPOCHS + 1)
    return Case(
        call=lambda sender: send(worker_id, sender),
        allowed=env.provider,
        wrong=[env.providers[1], env.developer, env.signers[0], env.admin],
        error=lambda caller: (
            env.deal_manager.DealNotWorkerProvider,
            {"workerId": worker_id, "caller": caller.address},
        ),
    )


@guarded("DealManager", "exitWorker")
def _exit_worker(env):
    return _worker_provider_case(
        env, lambda worker_id, sender: env.deal_manager.exitWorker(worker_id, sender=sender), claimable=False
    )


@guarded("DealManager", "claim")
def _claim(env):
    def send(worker_id, sender):
        return env.deal_manager.claim(worker_id, env.deal_manager.maxClaimEpoch(worker_id), sender=sender)

    return _worker_provider_case(env, send, claimable=True)


@guarded("DealManager", "claimAndWithdraw")
def _claim_and_withdraw(env):
    return _worker_provider_case(
        env,
        lambda worker_id, sender: env.deal_manager.claimAndWithdraw([worker_id], sender=sender),
        claimable=True,
    )


def _peer_signer_case(env, send):
    _, worker_id, _ = _matched(env)
    _other_peer(env)  # gives signers[1] a peer of its own
    epoch = env.deal_manager.getWorker(worker_id).joinedEpoch
    env.clock.advance(1)
    return Case(
        call=lambda sender: send(worker_id, epoch, sender),
        allowed=env.signers[0],
        wrong=[env.provider, env.signers[1], env.developer, env.admin],
        error=lambda caller: (
            env.deal_manager.DealNotPeerSigner,
            {"workerId": worker_id, "caller": caller.address, "signer": env.signers[0].address},
        ),
    )


@guarded("DealManager", "submitEpochProof")
def _submit_epoch_proof(env):
    def send(worker_id, epoch, sender):
        return env.deal_manager.submitEpochProof(worker_id, epoch, ROOT, 1, 0, sender=sender)

    return _peer_signer_case(env, send)


@guarded("DealManager", "submitEpochProofs")
def _submit_epoch_proofs(env):
    def send(worker_id, epoch, sender):
        return env.deal_manager.submitEpochProofs([(worker_id, epoch, ROOT, 1, 0)], sender=sender)

    return _peer_signer_case(env, send)


@guarded("DealManager", "setPaymentToken")
def _set_payment_token(env):
    return Case(
        call=lambda sender: env.deal_manager.setPaymentToken(env.usdc, False, sender=sender),
        allowed=env.admin,
        wrong=[env.stranger, env.developer, env.provider],
        error=lambda caller: (env.deal_manager.DealNotAdmin, {"caller": caller.address}),
    )


@guarded("DealManager", "setChallengeManager")
def _set_challenge_manager(env):
    return Case(
        call=lambda sender: env.deal_manager.setChallengeManager(env.slasher, sender=sender),
        allowed=env.admin,
        wrong=[env.stranger, env.developer, env.provider, env.slasher],
        error=lambda caller: (env.deal_manager.DealNotAdmin, {"caller": caller.address}),
    )


@guarded("DealManager", "setEpochProven")
def _set_epoch_proven(env):
    # The admin names an account as challenge manager, as it names the ChallengeManager contract in a deployment.
    _, worker_id, _ = _matched(env)
    epoch = env.deal_manager.getWorker(worker_id).joinedEpoch
    env.deal_manager.setChallengeManager(env.slasher, sender=env.admin)
    return Case(
        call=lambda sender: env.deal_manager.setEpochProven(worker_id, epoch, True, sender=sender),
        allowed=env.slasher,
        wrong=[env.admin, env.provider, env.signers[0], env.stranger],
        error=lambda caller: (env.deal_manager.DealNotChallengeManager, {"caller": caller.address}),
    )


@guarded("DealManager", "renounceOwnership")
def _deal_manager_renounce(env):
    return _admin_only(env, env.deal_manager, lambda sender: env.deal_manager.renounceOwnership(sender=sender))


@guarded("DealManager", "transferOwnership")
def _deal_manager_transfer(env):
    return _admin_only(
        env, env.deal_manager, lambda sender: env.deal_manager.transferOwnership(env.stranger, sender=sender)
    )


# ------------------------------------------------- ChallengeManager cases


@guarded("ChallengeManager", "setParameters")
def _set_parameters(env):
    manager = env.challenges.challenge_manager
    parameters = (CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD + 1)
    return _admin_only(env, manager, lambda sender: manager.setParameters(parameters, sender=sender))


@guarded("ChallengeManager", "setReplication")
def _set_replication(env):
    challenges = env.challenges
    worker = challenges.matched_worker()
    return Case(
        call=lambda sender: challenges.challenge_manager.setReplication(worker.deal_id, 3, sender=sender),
        allowed=env.developer,
        wrong=[env.stranger, env.admin, env.provider],
        error=lambda caller: (
            challenges.challenge_manager.ChallengeNotDealOwner,
            {"dealId": worker.deal_id, "caller": caller.address},
        ),
    )


@guarded("ChallengeManager", "setCallerAllowed")
def _set_caller_allowed(env):
    challenges = env.challenges
    worker = challenges.matched_worker()
    return Case(
        call=lambda sender: challenges.challenge_manager.setCallerAllowed(
            worker.deal_id, env.stranger, True, sender=sender
        ),
        allowed=env.developer,
        wrong=[env.stranger, env.admin, env.provider],
        error=lambda caller: (
            challenges.challenge_manager.ChallengeNotDealOwner,
            {"dealId": worker.deal_id, "caller": caller.address},
        ),
    )


@guarded("ChallengeManager", "answerChallenge")
def _answer_challenge(env):
    # The provider may answer too, which test_challenges.py checks.
    challenges = env.challenges
    worker = challenges.matched_worker()
    epoch = challenges.clock.epoch()
    calls = challenges.calls(worker, epoch, [100, 200])
    challenges.clock.advance(1)
    proven = challenges.prove(worker, epoch, calls)
    challenges.goto_window(epoch)
    opened = challenges.challenge_sample(proven)
    return Case(
        call=lambda sender: challenges.answer(opened.challengeId, proven, opened.leafIndex, sender=sender),
        allowed=worker.signer,
        wrong=[env.stranger, env.developer, env.admin, env.providers[1]],
        error=lambda caller: (
            challenges.challenge_manager.ChallengeNotAnswerer,
            {"challengeId": opened.challengeId, "caller": caller.address},
        ),
    )


@guarded("ChallengeManager", "renounceOwnership")
def _challenge_manager_renounce(env):
    manager = env.challenges.challenge_manager
    return _admin_only(env, manager, lambda sender: manager.renounceOwnership(sender=sender))


@guarded("ChallengeManager", "transferOwnership")
def _challenge_manager_transfer(env):
    manager = env.challenges.challenge_manager
    return _admin_only(env, manager, lambda sender: manager.transferOwnership(env.stranger, sender=sender))


# ------------------------------------------------------ token and faucet cases


def _register_token_cases(contract_name, token_of, unit):
    @guarded(contract_name, "mint")
    def _mint(env):
        token = token_of(env)
        return _admin_only(env, token, lambda sender: token.mint(sender, unit, sender=sender))

    @guarded(contract_name, "renounceOwnership")
    def _renounce(env):
        token = token_of(env)
        return _admin_only(env, token, lambda sender: token.renounceOwnership(sender=sender))

    @guarded(contract_name, "transferOwnership")
    def _transfer(env):
        token = token_of(env)
        return _admin_only(env, token, lambda sender: token.transferOwnership(env.stranger, sender=sender))


_register_token_cases("FLT", lambda env: env.flt, FLT)
_register_token_cases("TestUSDC", lambda env: env.usdc, USDC)


@guarded("Faucet", "setCooldown")
def _faucet_set_cooldown(env):
    faucet = env.faucet
    return _admin_only(env, faucet, lambda sender: faucet.setCooldown(1, sender=sender))


@guarded("Faucet", "setDripAmounts")
def _faucet_set_drip_amounts(env):
    faucet = env.faucet
    return _admin_only(env, faucet, lambda sender: faucet.setDripAmounts(FLT, USDC, sender=sender))


@guarded("Faucet", "withdraw")
def _faucet_withdraw(env):
    faucet = env.faucet
    return _admin_only(env, faucet, lambda sender: faucet.withdraw(env.flt, sender, FLT, sender=sender))


@guarded("Faucet", "renounceOwnership")
def _faucet_renounce(env):
    faucet = env.faucet
    return _admin_only(env, faucet, lambda sender: faucet.renounceOwnership(sender=sender))


@guarded("Faucet", "transferOwnership")
def _faucet_transfer(env):
    faucet = env.faucet
    return _admin_only(env, faucet, lambda sender: faucet.transferOwnership(env.stranger, sender=sender))


# ------------------------------------------------------------------ tests


def _mutating_functions(project, contract_name):
    abi = getattr(project, contract_name).contract_type.abi
    return [item.name for item in abi if item.type == "function" and item.stateMutability in MUTATING]


@pytest.mark.parametrize("contract_name", CONTRACT_NAMES)
def test_mutating_functions_all_listed(project, contract_name):
    if not hasattr(project, contract_name):
        pytest.skip(f"{contract_name} is not in the project")
    names = _mutating_functions(project, contract_name)
    guarded_names = {function for (contract, function) in GUARDED if contract == contract_name}
    open_names = {function for (contract, function) in OPEN_BY_DESIGN if contract == contract_name}

    # The tables are keyed by name, so an overload would need its own key.
    assert len(names) == len(set(names)), f"{contract_name} has overloaded functions: {sorted(names)}"
    missing = sorted(set(names) - guarded_names - open_names)
    assert not missing, f"{contract_name}: add these functions to GUARDED or OPEN_BY_DESIGN: {missing}"
    stale = sorted((guarded_names | open_names) - set(names))
    assert not stale, f"{contract_name}: these listed functions are not in the ABI any more: {stale}"


def test_tables_disjoint_and_known():
    assert not set(GUARDED) & set(OPEN_BY_DESIGN)
    assert {contract for contract, _ in GUARDED} <= set(CONTRACT_NAMES)
    assert {contract for contract, _ in OPEN_BY_DESIGN} <= set(CONTRACT_NAMES)
    assert all(reason.strip() for reason in OPEN_BY_DESIGN.values())


@pytest.mark.parametrize("key", sorted(GUARDED), ids=lambda key: ".".join(key))
def test_guarded_function_rejects_wrong_caller(env, key):
    case = GUARDED[key](env)
    assert case.wrong, "a case needs at least one wrong caller"
    assert case.allowed not in case.wrong

    for caller in case.wrong:
        error_type, inputs = case.error(caller)
        with reverts_with(error_type, **inputs):
            case.call(caller)

    # The right caller gets through, so the guard does not reject everybody.
    case.call(case.allowed)


# --------------------------------- open functions act only for the caller


def test_withdraw_earnings_only_own(env):
    _, worker_id, _ = _matched(env)
    joined = env.deal_manager.getWorker(worker_id).joinedEpoch
    env.clock.advance(1)
    env.deal_manager.submitEpochProof(worker_id, joined, ROOT, 1, 0, sender=env.signers[0])
    env.clock.advance(PROOF_WINDOW_EPOCHS)
    env.deal_manager.claim(worker_id, joined + 1, sender=env.provider)
    earned = env.deal_manager.earnings(env.provider, env.usdc)
    assert earned > 0

    for caller in (env.stranger, env.providers[1], env.developer):
        with reverts_with(env.deal_manager.DealNothingToWithdraw, provider=caller.address, token=env.usdc.address):
            env.deal_manager.withdrawEarnings(env.usdc, sender=caller)

    assert env.deal_manager.earnings(env.provider, env.usdc) == earned


def test_withdraw_unstaked_only_own(env):
    env.market.requestUnstake(FLT, sender=env.provider)
    env.chain.mine(timestamp=env.chain.pending_timestamp + UNBONDING_SECONDS + 1)

    for caller in (env.stranger, env.providers[1]):
        with reverts_with(env.market.MarketNothingUnbonding, provider=caller.address):
            env.market.withdrawUnstaked(sender=caller)

    assert env.market.getProvider(env.provider).unbonding == FLT


def test_withdraw_slash_reward_only_own(env):
    slasher = _appoint_slasher(env)
    env.market.slash(env.provider, 10 * FLT, env.developer, REASON, sender=slasher)
    reward = env.market.slashRewards(env.developer)
    assert reward > 0

    for caller in (env.stranger, env.provider, slasher, env.admin):
        with reverts_with(env.market.MarketNoSlashReward, account=caller.address):
            env.market.withdrawSlashReward(sender=caller)

    assert env.market.slashRewards(env.developer) == reward


@pytest.mark.parametrize("token_name", ["flt", "usdc"])
def test_transfer_from_needs_allowance(env, token_name):
    token = getattr(env, token_name)
    holder = env.provider if token_name == "flt" else env.developer
    assert token.balanceOf(holder) > 0

    with reverts_with(token.ERC20InsufficientAllowance, spender=env.stranger.address, allowance=0, needed=1):
        token.transferFrom(holder, env.stranger, 1, sender=env.stranger)


# --------------------------------------------- guards inside batch calls


def _two_provider_deal(env):
    """Create a deal with a worker of providers[0] (signers[0]) and one of providers[1] (signers[1])."""
    _, own_peer = _offer(env)
    other_peer = _other_peer(env)
    deal_id = env.build.deal(targetWorkers=2)
    _, [own_worker, other_worker] = env.build.match(deal_id, [own_peer, other_peer])
    return own_worker, other_worker


def test_proof_batch_rejects_foreign_worker(env):
    own_worker, other_worker = _two_provider_deal(env)
    epoch = env.deal_manager.getWorker(own_worker).joinedEpoch
    env.clock.advance(1)
    entries = [(own_worker, epoch, ROOT, 1, 0), (other_worker, epoch, ROOT, 1, 0)]

    with reverts_with(
        env.deal_manager.DealNotPeerSigner,
        workerId=other_worker,
        caller=env.signers[0].address,
        signer=env.signers[1].address,
    ):
        env.deal_manager.submitEpochProofs(entries, sender=env.signers[0])

    assert not env.deal_manager.getEpochProof(own_worker, epoch).proven


def test_claim_and_withdraw_rejects_foreign_worker(env):
    own_worker, other_worker = _two_provider_deal(env)
    env.clock.advance(PROOF_WINDOW_EPOCHS + 1)
    joined = env.deal_manager.getWorker(own_worker).joinedEpoch

    with reverts_with(
        env.deal_manager.DealNotWorkerProvider, workerId=other_worker, caller=env.provider.address
    ):
        env.deal_manager.claimAndWithdraw([own_worker, other_worker], sender=env.provider)

    assert env.deal_manager.getWorker(own_worker).claimedUntilEpoch == joined
