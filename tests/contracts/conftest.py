"""Shared fixtures for the contract tests: tokens, Market, DealManager and helpers.

The contracts are deployed once per session. Ape's pytest plugin snapshots the
chain around every test function, so each test starts from the deployed state.
"""

from dataclasses import dataclass, field

import pytest

EPOCH_SECONDS = 600
"""Epoch length of the test DealManager.

Ten minutes keep a test's transactions inside the epoch it moved to: anvil
advances block timestamps with the wall clock after a time jump.
"""
PROOF_WINDOW_EPOCHS = 2
MIN_DEPOSITED_EPOCHS = 2
COLLATERAL_PER_CU = 10**18
UNBONDING_SECONDS = 3_600

USDC = 10**6
FLT = 10**18
PRICE = 2 * USDC // 100
"""Default offer price per CU per epoch: 0.02 USDC."""
REGION = 276
UINT64_MAX = 2**64 - 1

DEAL_FIELDS = (
    "appCid",
    "paymentToken",
    "maxPricePerCuPerEpoch",
    "cuPerWorker",
    "minWorkers",
    "targetWorkers",
    "maxWorkersPerProvider",
    "durationEpochs",
    "regions",
    "minTier",
    "minSlaBps",
    "accessMode",
    "providers",
    "billingMode",
    "deposit",
)


class Skip:
    """Values of IDealManager.SkipReason."""

    NONE = 0
    NO_FREE_SLOT = 1
    PEER_NOT_FOUND = 2
    OFFER_PAUSED = 3
    TOKEN_MISMATCH = 4
    PRICE_ABOVE_CAP = 5
    REGION_NOT_ALLOWED = 6
    TIER_TOO_LOW = 7
    SLA_TOO_LOW = 8
    PROVIDER_NOT_ALLOWED = 9
    NOT_ENOUGH_CUS = 10
    PEER_ALREADY_IN_DEAL = 11
    PROVIDER_LIMIT = 12
    INSUFFICIENT_STAKE = 13
    INSUFFICIENT_FUNDS = 14


class Status:
    """Values of IDealManager.DealStatus."""

    ACTIVE = 0
    NOT_ENOUGH_WORKERS = 1
    INSUFFICIENT_FUNDS = 2
    ENDED = 3


class Access:
    """Values of IDealManager.AccessMode."""

    NONE = 0
    ALLOW_LIST = 1
    DENY_LIST = 2


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
    deployed = project.DealManager.deploy(
        market, 0, EPOCH_SECONDS, PROOF_WINDOW_EPOCHS, MIN_DEPOSITED_EPOCHS, admin, sender=admin
    )
    market.setDealManager(deployed, sender=admin)
    deployed.setPaymentToken(usdc, True, sender=admin)
    deployed.setPaymentToken(other_token, True, sender=admin)
    for account in (developer, stranger):
        usdc.approve(deployed, 2**256 - 1, sender=account)
    other_token.approve(deployed, 2**256 - 1, sender=developer)
    return deployed


@dataclass
class Clock:
    """Moves chain time in whole epochs of the DealManager."""

    chain: object
    genesis: int
    epoch_seconds: int = EPOCH_SECONDS

    def epoch(self) -> int:
        """Return the epoch of the next block, which is the one a transaction sees."""
        return (self.chain.pending_timestamp - self.genesis) // self.epoch_seconds

    def goto_epoch(self, epoch: int) -> None:
        """Mine a block one second into `epoch`; the epoch must not be in the past."""
        target = self.genesis + epoch * self.epoch_seconds + 1
        latest = self.chain.blocks.head.timestamp
        assert target > latest, f"cannot move back to epoch {epoch}: head timestamp {latest} >= {target}"
        self.chain.mine(timestamp=target)

    def advance(self, epochs: int = 1) -> int:
        """Move `epochs` epochs forward and return the new epoch."""
        target = self.epoch() + epochs
        self.goto_epoch(target)
        return target


@pytest.fixture(scope="session")
def clock(chain, deal_manager):
    return Clock(chain=chain, genesis=deal_manager.genesis())


@dataclass
class Builder:
    """Creates offers and deals with defaults that a test overrides per call."""

    market: object
    deal_manager: object
    usdc: object
    developer: object
    signers: list
    next_signer: int = 0
    extra_signers: list = field(default_factory=list)

    def offer(self, provider, cus=(8,), price=PRICE, token=None, region=REGION, tier=3, sla=9_990, signers=None):
        """Create an offer with one peer per entry of `cus` and return (offer id, peer ids)."""
        terms = (token or self.usdc, price, region, tier, sla, 2, 2_048)
        if signers is None:
            signers = [self._take_signer() for _ in cus]
        peers = [(signer, count) for signer, count in zip(signers, cus, strict=True)]
        receipt = self.market.createOffer(terms, peers, sender=provider)
        offer_id = next(iter(receipt.events.filter(self.market.OfferCreated))).offerId
        peer_ids = [log.peerId for log in receipt.events.filter(self.market.PeerAdded)]
        return offer_id, peer_ids

    def deal_params(self, **overrides):
        params = {
            "appCid": b"\x01\x55\x12\x20" + bytes(32),
            "paymentToken": self.usdc.address,
            "maxPricePerCuPerEpoch": PRICE,
            "cuPerWorker": 2,
            "minWorkers": 1,
            "targetWorkers": 2,
            "maxWorkersPerProvider": 2,
            "durationEpochs": 0,
            "regions": [],
            "minTier": 0,
            "minSlaBps": 0,
            "accessMode": Access.NONE,
            "providers": [],
            "billingMode": 0,
            "deposit": 100 * USDC,
        }
        params.update(overrides)
        return tuple(params[name] for name in DEAL_FIELDS)

    def deal(self, sender=None, **overrides):
        """Create a deal and return its id."""
        receipt = self.deal_manager.createDeal(self.deal_params(**overrides), sender=sender or self.developer)
        return next(iter(receipt.events.filter(self.deal_manager.DealCreated))).dealId

    def _take_signer(self):
        if self.next_signer < len(self.signers):
            signer = self.signers[self.next_signer].address
        else:
            # Signers that never send a transaction need no key or ETH.
            signer = "0x" + f"{0x5157_0000 + self.next_signer:040x}"
        self.next_signer += 1
        return signer


@pytest.fixture
def build(market, deal_manager, usdc, developer, signers):
    return Builder(market=market, deal_manager=deal_manager, usdc=usdc, developer=developer, signers=signers)
