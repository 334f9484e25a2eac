"""DealManager construction, payment tokens and createDeal validation."""

import ape
import pytest

from contract_helpers import (
    CHALLENGE_WINDOW_EPOCHS,
    EPOCH_SECONDS,
    MIN_DEPOSITED_EPOCHS,
    PRICE,
    PROOF_WINDOW_EPOCHS,
    UINT64_MAX,
    USDC,
    Access,
    Billing,
    Status,
    events,
)
from revert_checks import assert_call_reverts, assert_deploy_reverts, reverts_with

ZERO_ADDRESS = "0x" + "00" * 20
UINT128_MAX = 2**128 - 1
APP_CID = b"\x01\x55\x12\x20" + bytes(32)
"""The deal_params default: CIDv1, raw codec (0x55), sha2-256 (0x12) digest of 32 (0x20) bytes."""


# ----------------------------------------------------------------- constructor


def test_constructor_stores_parameters(deal_manager, market, admin, chain):
    assert deal_manager.market() == market
    assert deal_manager.epochDuration() == EPOCH_SECONDS
    assert deal_manager.proofWindowEpochs() == PROOF_WINDOW_EPOCHS
    assert deal_manager.challengeWindowEpochs() == 0
    assert deal_manager.challengeManager() == ZERO_ADDRESS
    assert deal_manager.minDepositedEpochs() == MIN_DEPOSITED_EPOCHS
    assert deal_manager.owner() == admin
    assert deal_manager.genesis() <= chain.blocks.head.timestamp
    assert deal_manager.dealCount() == 0
    assert deal_manager.workerCount() == 0


def test_constructor_uses_deploy_time_for_zero_genesis(project, market, admin):
    deployed = project.DealManager.deploy(market, 0, 60, 2, 0, 2, admin, sender=admin)

    deploy_block = ape.chain.blocks.head
    assert deployed.genesis() == deploy_block.timestamp
    assert deployed.currentEpoch() == 0


def test_constructor_keeps_explicit_genesis(project, market, admin, chain):
    genesis = chain.blocks.head.timestamp - 600

    deployed = project.DealManager.deploy(market, genesis, 60, 2, 0, 2, admin, sender=admin)

    assert deployed.genesis() == genesis
    assert deployed.currentEpoch() >= 10


def test_constructor_stores_challenge_window(project, market, admin):
    deployed = project.DealManager.deploy(market, 0, 60, 2, 3, 2, admin, sender=admin)

    assert deployed.proofWindowEpochs() == 2
    assert deployed.challengeWindowEpochs() == 3
    assert deployed.challengeManager() == ZERO_ADDRESS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"market": ZERO_ADDRESS}, "market"),
        ({"genesis": 2**63}, "genesis"),
        ({"epoch": 0}, "epochDuration"),
        ({"window": 0}, "proofWindowEpochs"),
        ({"deposited": 0}, "minDepositedEpochs"),
    ],
)
def test_constructor_rejects_invalid_parameters(project, market, admin, change, field):
    # A challenge window of 0 is valid: it turns challenges off.
    arguments = {"market": market.address, "genesis": 0, "epoch": 60, "window": 2, "challenge": 0, "deposited": 2}
    arguments |= change

    values = [arguments[name] for name in ("market", "genesis", "epoch", "window", "challenge", "deposited")]

    assert_deploy_reverts(project.DealManager, [*values, admin.address], project.DealManager.DealInvalidParams, field=field)


def test_max_claim_epoch_trails_proof_and_challenge_windows(challenge_env):
    env = challenge_env
    deal_manager = env.deal_manager
    worker = env.matched_worker()
    joined = deal_manager.getWorker(worker.worker_id).joinedEpoch
    delay = PROOF_WINDOW_EPOCHS + CHALLENGE_WINDOW_EPOCHS

    # The join epoch stays unclaimable until its challenge window has closed too.
    env.clock.goto_epoch(joined + delay)
    assert deal_manager.maxClaimEpoch(worker.worker_id) == joined
    with reverts_with(
        deal_manager.DealClaimRangeInvalid,
        workerId=worker.worker_id,
        fromEpoch=joined,
        toEpoch=joined + 1,
        maxToEpoch=joined,
    ):
        deal_manager.claim(worker.worker_id, joined + 1, sender=worker.provider)

    for epoch in range(joined + delay + 1, joined + delay + 3):
        env.clock.goto_epoch(epoch)
        assert deal_manager.maxClaimEpoch(worker.worker_id) == epoch - delay

    receipt = deal_manager.claim(worker.worker_id, joined + 2, sender=worker.provider)
    [log] = events(receipt, deal_manager.WorkerClaimed)
    assert (log.fromEpoch, log.toEpoch) == (joined, joined + 2)


def test_current_epoch_follows_chain_time(deal_manager, clock):
    start = deal_manager.currentEpoch()

    clock.goto_epoch(start + 3)

    assert deal_manager.currentEpoch() == start + 3


# -------------------------------------------------------------- payment tokens


def test_set_payment_token_toggles(deal_manager, admin, stranger):
    receipt = deal_manager.setPaymentToken(stranger, True, sender=admin)
    assert deal_manager.isPaymentToken(stranger)
    [log] = events(receipt, deal_manager.PaymentTokenSet)
    assert (log.token, log.accepted) == (stranger, True)

    deal_manager.setPaymentToken(stranger, False, sender=admin)
    assert not deal_manager.isPaymentToken(stranger)


def test_set_payment_token_rejects_non_admin(deal_manager, stranger):
    with ape.reverts(deal_manager.DealNotAdmin, caller=stranger.address):
        deal_manager.setPaymentToken(stranger, True, sender=stranger)


def test_set_payment_token_rejects_zero_address(deal_manager, admin):
    with ape.reverts(deal_manager.DealInvalidParams, field="token"):
        deal_manager.setPaymentToken(ZERO_ADDRESS, True, sender=admin)


# ------------------------------------------------------------------ createDeal


def test_create_deal_stores_fields(build, deal_manager, usdc, developer, providers, clock):
    epoch = clock.advance(1)
    params = {
        "targetWorkers": 3,
        "minWorkers": 2,
        "regions": [276, 250],
        "minTier": 2,
        "minSlaBps": 9_900,
        "accessMode": Access.DENY_LIST,
        "providers": [providers[2].address],
        "deposit": 200 * USDC,
    }

    deal_id = build.deal(**params)

    assert deal_id == 1
    assert deal_manager.dealCount() == 1
    deal = deal_manager.getDeal(deal_id)
    assert deal.owner == developer
    assert deal.appCid == APP_CID
    assert deal.paymentToken == usdc
    assert deal.maxPricePerCuPerEpoch == PRICE
    assert (deal.cuPerWorker, deal.minWorkers, deal.targetWorkers, deal.maxWorkersPerProvider) == (2, 2, 3, 2)
    assert list(deal.regions) == [276, 250]
    assert (deal.minTier, deal.minSlaBps, deal.accessMode) == (2, 9_900, Access.DENY_LIST)
    assert list(deal.providers) == [providers[2].address]
    assert deal.billingMode == Billing.SUBSCRIPTION
    assert (deal.usagePricePerMegafuel, deal.maxUsagePerWorkerEpoch) == (0, 0)
    assert (deal.startEpoch, deal.settledEpoch, deal.endEpoch) == (epoch, epoch, UINT64_MAX)
    assert not deal.stopped
    assert (deal.activeWorkers, deal.ratePerEpoch, deal.balance, deal.pending) == (0, 0, 200 * USDC, 0)
    assert deal_manager.dealStatus(deal_id) == Status.NOT_ENOUGH_WORKERS


def test_create_deal_pulls_deposit_and_emits(build, deal_manager, usdc, developer):
    wallet = usdc.balanceOf(developer)
    params = build.deal_params(deposit=50 * USDC, durationEpochs=10)

    receipt = deal_manager.createDeal(params, sender=developer)

    assert usdc.balanceOf(developer) == wallet - 50 * USDC
    assert usdc.balanceOf(deal_manager) == 50 * USDC
    [created] = events(receipt, deal_manager.DealCreated)
    deal = deal_manager.getDeal(created.dealId)
    assert created.owner == developer
    assert created.paymentToken == usdc
    assert created.targetWorkers == 2
    assert created.maxPricePerCuPerEpoch == PRICE
    assert created.endEpoch == deal.startEpoch + 10
    [deposited] = events(receipt, deal_manager.DealDeposited)
    assert (deposited.dealId, deposited.amount, deposited.balance) == (created.dealId, 50 * USDC, 50 * USDC)


def test_create_deal_ids_increase(build):
    first = build.deal()
    second = build.deal()

    assert (first, second) == (1, 2)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"appCid": b""}, "appCid"),
        ({"appCid": APP_CID[:-1]}, "appCid"),
        ({"appCid": APP_CID + b"\x00"}, "appCid"),
        ({"appCid": b"\x00" + APP_CID[1:]}, "appCid"),
        ({"appCid": APP_CID[:2] + b"\x13" + APP_CID[3:]}, "appCid"),
        ({"appCid": APP_CID[:3] + b"\x1f" + APP_CID[4:]}, "appCid"),
        ({"maxPricePerCuPerEpoch": 0}, "maxPricePerCuPerEpoch"),
        ({"maxPricePerCuPerEpoch": UINT64_MAX + 1}, "maxPricePerCuPerEpoch"),
        ({"deposit": UINT128_MAX + 1}, "deposit"),
        (
            {"billingMode": Billing.USAGE, "usagePricePerMegafuel": UINT64_MAX + 1, "maxUsagePerWorkerEpoch": 1},
            "usagePricePerMegafuel",
        ),
        ({"cuPerWorker": 0}, "cuPerWorker"),
        ({"minWorkers": 0}, "minWorkers"),
        ({"minWorkers": 3, "targetWorkers": 2}, "targetWorkers"),
        ({"minWorkers": 1, "targetWorkers": 101}, "targetWorkers"),
        ({"maxWorkersPerProvider": 0}, "maxWorkersPerProvider"),
        ({"durationEpochs": UINT64_MAX}, "durationEpochs"),
        ({"regions": list(range(33))}, "regions"),
        ({"minTier": 5}, "minTier"),
        ({"minSlaBps": 10_001}, "minSlaBps"),
        ({"accessMode": Access.NONE, "providers": ["0x" + "11" * 20]}, "providers"),
        ({"accessMode": Access.ALLOW_LIST, "providers": []}, "providers"),
        ({"accessMode": Access.DENY_LIST, "providers": ["0x" + f"{i + 1:040x}" for i in range(65)]}, "providers"),
    ],
)
def test_create_deal_rejects_invalid_params(build, deal_manager, developer, override, field):
    params = build.deal_params(**override)

    with ape.reverts(deal_manager.DealInvalidParams, field=field):
        deal_manager.createDeal(params, sender=developer)


def test_create_deal_accepts_limits(build, deal_manager):
    deal_id = build.deal(
        regions=list(range(32)),
        accessMode=Access.ALLOW_LIST,
        providers=["0x" + f"{i + 1:040x}" for i in range(64)],
        targetWorkers=100,
        deposit=100 * 2 * PRICE * 100 * MIN_DEPOSITED_EPOCHS,
    )

    deal = deal_manager.getDeal(deal_id)
    assert len(deal.regions) == 32
    assert len(deal.providers) == 64


def test_create_deal_rejects_token_not_accepted(build, deal_manager, developer, flt):
    params = build.deal_params(paymentToken=flt.address)

    with ape.reverts(deal_manager.DealTokenNotAccepted, token=flt.address):
        deal_manager.createDeal(params, sender=developer)


def test_create_deal_accepts_any_cid_codec(build, deal_manager):
    dag_pb_cid = b"\x01\x70\x12\x20" + b"\x09" * 32

    deal_id = build.deal(appCid=dag_pb_cid)

    assert deal_manager.getDeal(deal_id).appCid == dag_pb_cid


def test_create_deal_accepts_amount_limits(build, deal_manager, usdc, admin, developer):
    usdc.mint(developer, UINT64_MAX * 2 * 2, sender=admin)

    deal_id = build.deal(maxPricePerCuPerEpoch=UINT64_MAX, durationEpochs=1, deposit=UINT64_MAX * 2 * 2)

    deal = deal_manager.getDeal(deal_id)
    assert deal.maxPricePerCuPerEpoch == UINT64_MAX
    assert deal_manager.reserveOf(deal_id) == UINT64_MAX * 2 * 2


def test_create_deal_accepts_usage_billing(build, deal_manager):
    # A USAGE deal may leave the base price cap at 0. Its reserve per worker and
    # epoch is floor(1_500_000 fuel x 3 base units per 10**6 fuel) = 4, times
    # 2 target workers and MIN_DEPOSITED_EPOCHS epochs.
    deal_id = build.deal(
        billingMode=Billing.USAGE,
        maxPricePerCuPerEpoch=0,
        usagePricePerMegafuel=3,
        maxUsagePerWorkerEpoch=1_500_000,
        deposit=100,
    )

    deal = deal_manager.getDeal(deal_id)
    assert deal.billingMode == Billing.USAGE
    assert deal.maxPricePerCuPerEpoch == 0
    assert (deal.usagePricePerMegafuel, deal.maxUsagePerWorkerEpoch) == (3, 1_500_000)
    assert deal_manager.reserveOf(deal_id) == 4 * 2 * MIN_DEPOSITED_EPOCHS


def test_create_deal_rejects_deposit_below_reserve(build, deal_manager, developer):
    # Reserve: cap 0.02 USDC x 2 CUs x 2 workers x 2 epochs.
    reserve = PRICE * 2 * 2 * MIN_DEPOSITED_EPOCHS
    params = build.deal_params(deposit=reserve - 1)

    with ape.reverts(deal_manager.DealDepositBelowReserve, deposit=reserve - 1, reserve=reserve):
        deal_manager.createDeal(params, sender=developer)


def test_create_deal_accepts_deposit_equal_to_reserve(build, deal_manager):
    reserve = PRICE * 2 * 2 * MIN_DEPOSITED_EPOCHS

    deal_id = build.deal(deposit=reserve)

    assert deal_manager.getDeal(deal_id).balance == reserve
    assert deal_manager.reserveOf(deal_id) == reserve


def test_create_deal_reserve_uses_shorter_duration(build, deal_manager, developer):
    one_epoch = PRICE * 2 * 2

    deal_id = build.deal(durationEpochs=1, deposit=one_epoch)
    assert deal_manager.getDeal(deal_id).balance == one_epoch

    params = build.deal_params(durationEpochs=1, deposit=one_epoch - 1)
    with ape.reverts(deal_manager.DealDepositBelowReserve, reserve=one_epoch):
        deal_manager.createDeal(params, sender=developer)


def test_create_deal_rejects_missing_allowance(build, deal_manager, usdc, admin, accounts):
    newcomer = accounts.generate_test_account()
    ape.chain.set_balance(newcomer, 10**18)
    usdc.mint(newcomer, 100 * USDC, sender=admin)

    with ape.reverts(usdc.ERC20InsufficientAllowance):
        deal_manager.createDeal(build.deal_params(), sender=newcomer)


def test_get_deal_rejects_unknown_id(deal_manager):
    assert_call_reverts(deal_manager, "getDeal", [1], deal_manager.DealNotFound, dealId=1)


@pytest.mark.parametrize(
    "view",
    ["dealStatus", "dealBalance", "fundedUntilEpoch", "withdrawable", "reserveOf", "dealWorkerIds", "unfundedSpans"],
)
def test_deal_views_reject_unknown_id(deal_manager, view):
    assert_call_reverts(deal_manager, view, [7], deal_manager.DealNotFound, dealId=7)
