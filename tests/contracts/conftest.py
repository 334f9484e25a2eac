"""Shared fixtures for the contract tests: tokens, Market, DealManager, ExecutionReceipts and helpers.

The contracts are deployed once per session. Ape's pytest plugin snapshots the
chain around every test function, so each test starts from the deployed state.

`deal_manager` has no challenge window. The `challenge_*` fixtures are a second
Market, DealManager and ChallengeManager with one, wired as
`cloudless.chain.deploy.deploy_all` wires them. A second Market is needed
because a Market accepts its DealManager only once.
"""

import pytest
from ape_test.accounts import TestAccountContainer

from cloudless.receipts.eip712 import Domain

from challenge_helpers import ChallengeEnv
from contract_helpers import (
    ANSWER_PERIOD,
    CHALLENGE_BOND,
    CHALLENGE_WINDOW_EPOCHS,
    COLLATERAL_PER_CU,
    MISSED_PROOF_SLASH_AMOUNT,
    SLASH_AMOUNT,
    EPOCH_SECONDS,
    FLT,
    MIN_DEPOSITED_EPOCHS,
    PROOF_WINDOW_EPOCHS,
    UNBONDING_SECONDS,
    USDC,
    Builder,
    Clock,
)


@pytest.fixture(scope="session", autouse=True)
def _cached_anvil_account_keys():
    """Derive each test account key once per session.

    On every revert, ape 0.8.51 looks up each address of the call trace among
    the test accounts and derives all ten keys from the mnemonic again. A
    cProfile run of this suite measured about 0.5 s per expected revert for
    that. The keys never change in a session.
    """
    derive = TestAccountContainer.get_test_account
    derived = {}

    def get_test_account(container, index):
        if index not in derived:
            derived[index] = derive(container, index)
        return derived[index]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TestAccountContainer, "get_test_account", get_test_account)
        yield


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def developer(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def providers(accounts):
    return [accounts[2], accounts[3], accounts[4]]


@pytest.fixture(scope="session")
def provider(providers):
    return providers[0]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def signers(accounts):
    """Peer signer keys that can send transactions themselves."""
    return [accounts[i] for i in range(6, 10)]


@pytest.fixture(scope="session")
def flt(project, admin, providers):
    token = project.FLT.deploy(admin, sender=admin)
    for account in providers:
        token.mint(account, 1_000_000 * FLT, sender=admin)
    return token


@pytest.fixture(scope="session")
def usdc(project, admin, developer, stranger):
    token = project.TestUSDC.deploy(admin, sender=admin)
    for account in (developer, stranger):
        token.mint(account, 1_000_000 * USDC, sender=admin)
    return token


@pytest.fixture(scope="session")
def other_token(project, admin, developer):
    """A second accepted payment token, for token mismatch cases."""
    token = project.TestUSDC.deploy(admin, sender=admin)
    token.mint(developer, 1_000_000 * USDC, sender=admin)
    return token


@pytest.fixture(scope="session")
def market(project, admin, flt, providers):
    deployed = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)
    for index, account in enumerate(providers):
        flt.approve(deployed, 2**256 - 1, sender=account)
        deployed.registerProvider(f"provider-{index}", sender=account)
        deployed.stake(10_000 * FLT, sender=account)
    return deployed


@pytest.fixture(scope="session")
def deal_manager(project, admin, market, usdc, other_token, developer, stranger):
    # No challenge window, so an epoch is claimable as soon as its proof window closes.
    deployed = project.DealManager.deploy(
        market, 0, EPOCH_SECONDS, PROOF_WINDOW_EPOCHS, 0, MIN_DEPOSITED_EPOCHS, admin, sender=admin
    )
    market.setDealManager(deployed, sender=admin)
    deployed.setPaymentToken(usdc, True, sender=admin)
    deployed.setPaymentToken(other_token, True, sender=admin)
    for account in (developer, stranger):
        usdc.approve(deployed, 2**256 - 1, sender=account)
    other_token.approve(deployed, 2**256 - 1, sender=developer)
    return deployed


@pytest.fixture(scope="session")
def execution_receipts(project, admin):
    """The standalone EIP-712 receipts contract. Its address is the verifying contract of the signing domain."""
    return project.ExecutionReceipts.deploy(sender=admin)


@pytest.fixture(scope="session")
def clock(chain, deal_manager):
    return Clock(chain=chain, genesis=deal_manager.genesis())


@pytest.fixture
def build(market, deal_manager, usdc, developer, signers):
    return Builder(market=market, deal_manager=deal_manager, usdc=usdc, developer=developer, signers=signers)


# ------------------------------------------------------------------ challenges


@pytest.fixture(scope="session")
def receipt_domain(execution_receipts, chain):
    """EIP-712 domain of requests and receipts: the ExecutionReceipts contract is the verifying contract."""
    return Domain(chain_id=chain.chain_id, verifying_contract=execution_receipts.address)


@pytest.fixture(scope="session")
def challenge_market(project, admin, flt, providers):
    deployed = project.Market.deploy(flt, COLLATERAL_PER_CU, UNBONDING_SECONDS, admin, sender=admin)
    for index, account in enumerate(providers):
        flt.approve(deployed, 2**256 - 1, sender=account)
        deployed.registerProvider(f"provider-{index}", sender=account)
        deployed.stake(10_000 * FLT, sender=account)
    return deployed


@pytest.fixture(scope="session")
def challenge_deal_manager(project, admin, challenge_market, usdc, developer, stranger):
    deployed = project.DealManager.deploy(
        challenge_market,
        0,
        EPOCH_SECONDS,
        PROOF_WINDOW_EPOCHS,
        CHALLENGE_WINDOW_EPOCHS,
        MIN_DEPOSITED_EPOCHS,
        admin,
        sender=admin,
    )
    challenge_market.setDealManager(deployed, sender=admin)
    deployed.setPaymentToken(usdc, True, sender=admin)
    for account in (developer, stranger):
        usdc.approve(deployed, 2**256 - 1, sender=account)
    return deployed


@pytest.fixture(scope="session")
def challenge_manager(
    project, admin, challenge_deal_manager, challenge_market, execution_receipts, flt, developer, stranger
):
    """The ChallengeManager of `challenge_deal_manager`, with FLT for the stranger and the developer.

    The stranger is the challenger and approved the bonds. The developer approved nothing.
    """
    parameters = (CHALLENGE_BOND, SLASH_AMOUNT, MISSED_PROOF_SLASH_AMOUNT, ANSWER_PERIOD)
    deployed = project.ChallengeManager.deploy(
        challenge_deal_manager, challenge_market, execution_receipts, flt, admin, parameters, sender=admin
    )
    challenge_deal_manager.setChallengeManager(deployed, sender=admin)
    challenge_market.setSlasher(deployed, True, sender=admin)
    for account in (stranger, developer):
        flt.mint(account, 10_000 * FLT, sender=admin)
    flt.approve(deployed, 2**256 - 1, sender=stranger)
    return deployed


@pytest.fixture(scope="session")
def challenge_clock(chain, challenge_deal_manager):
    return Clock(chain=chain, genesis=challenge_deal_manager.genesis())


@pytest.fixture
def challenge_env(
    chain,
    challenge_clock,
    challenge_market,
    challenge_deal_manager,
    challenge_manager,
    execution_receipts,
    receipt_domain,
    flt,
    usdc,
    admin,
    developer,
    stranger,
    providers,
    signers,
):
    build = Builder(
        market=challenge_market, deal_manager=challenge_deal_manager, usdc=usdc, developer=developer, signers=signers
    )
    return ChallengeEnv(
        chain=chain,
        clock=challenge_clock,
        build=build,
        market=challenge_market,
        deal_manager=challenge_deal_manager,
        challenge_manager=challenge_manager,
        receipts=execution_receipts,
        domain=receipt_domain,
        flt=flt,
        admin=admin,
        developer=developer,
        challenger=stranger,
        providers=providers,
        signers=signers,
    )
