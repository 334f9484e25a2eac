"""Faucet: drips, the per-recipient cool-down, empty balances and owner-only settings.

The hypothesis tests run each example between a chain snapshot and a restore,
so examples do not see each other's drips or settings.
"""


import ape
import pytest
from hypothesis import HealthCheck, given, settings
from eth_utils import to_checksum_address
from hypothesis import strategies as st

from contract_helpers import FLT, USDC, events, isolated

DRIP_FLT = 100 * FLT
DRIP_USDC = 50 * USDC
COOLDOWN = 3_600
FUNDED_DRIPS = 10
ZERO_ADDRESS = "0x" + "00" * 20
UINT64_MAX = 2**64 - 1

onchain_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)



def fresh_address(index):
    """An address that no test account uses, so it starts with no tokens and no drip."""
    return to_checksum_address(f"0x{0xFA0CE7_0000 + index:040x}")


@pytest.fixture(scope="module")
def faucet(project, admin, flt, usdc):
    deployed = project.Faucet.deploy(flt, usdc, DRIP_FLT, DRIP_USDC, COOLDOWN, admin, sender=admin)
    flt.mint(deployed, FUNDED_DRIPS * DRIP_FLT, sender=admin)
    usdc.mint(deployed, FUNDED_DRIPS * DRIP_USDC, sender=admin)
    return deployed


def _drip_at(chain, faucet, recipient, sender, timestamp):
    """Send a drip that is mined in a block with exactly `timestamp`."""
    chain.pending_timestamp = timestamp
    return faucet.drip(recipient, sender=sender)


# ------------------------------------------------------------- deployment


def test_faucet_initial_settings(faucet, flt, usdc, admin):
    assert faucet.flt() == flt.address
    assert faucet.usdc() == usdc.address
    assert faucet.fltAmount() == DRIP_FLT
    assert faucet.usdcAmount() == DRIP_USDC
    assert faucet.cooldown() == COOLDOWN
    assert faucet.owner() == admin


def test_constructor_emits_settings(chain, project, flt, usdc, admin):
    deployed = project.Faucet.deploy(flt, usdc, 7, 8, 9, admin, sender=admin)
    receipt = chain.get_receipt(deployed.txn_hash)

    [amounts] = events(receipt, deployed.DripAmountsSet)
    [cooldown] = events(receipt, deployed.CooldownSet)
    assert (amounts.fltAmount, amounts.usdcAmount) == (7, 8)
    assert cooldown.cooldown == 9


@pytest.mark.parametrize("position, name", [(0, "flt"), (1, "usdc")])
def test_constructor_rejects_zero_token(project, flt, usdc, admin, position, name):
    tokens = [flt.address, usdc.address]
    tokens[position] = ZERO_ADDRESS

    with ape.reverts(project.Faucet.FaucetZeroAddress, what=name):
        project.Faucet.deploy(*tokens, DRIP_FLT, DRIP_USDC, COOLDOWN, admin, sender=admin)


def test_constructor_rejects_zero_drip(project, flt, usdc, admin):
    with ape.reverts(project.Faucet.FaucetNoDripAmount):
        project.Faucet.deploy(flt, usdc, 0, 0, COOLDOWN, admin, sender=admin)


# ------------------------------------------------------------------ drip


def test_drip_pays_recipient(chain, faucet, flt, usdc, stranger):
    recipient = fresh_address(1)
    faucet_flt, faucet_usdc = flt.balanceOf(faucet), usdc.balanceOf(faucet)

    receipt = faucet.drip(recipient, sender=stranger)

    timestamp = chain.blocks[receipt.block_number].timestamp
    assert flt.balanceOf(recipient) == DRIP_FLT
    assert usdc.balanceOf(recipient) == DRIP_USDC
    assert flt.balanceOf(faucet) == faucet_flt - DRIP_FLT
    assert usdc.balanceOf(faucet) == faucet_usdc - DRIP_USDC
    assert faucet.lastDripAt(recipient) == timestamp
    assert faucet.nextDripAt(recipient) == timestamp + COOLDOWN
    [dripped] = events(receipt, faucet.Dripped)
    assert dripped.recipient == recipient
    assert dripped.caller == stranger
    assert dripped.fltAmount == DRIP_FLT
    assert dripped.usdcAmount == DRIP_USDC
    assert dripped.nextDripAt == timestamp + COOLDOWN
    assert receipt.return_value == timestamp + COOLDOWN


def test_drip_to_caller(faucet, usdc, stranger):
    before = usdc.balanceOf(stranger)

    faucet.drip(stranger, sender=stranger)

    assert usdc.balanceOf(stranger) == before + DRIP_USDC


def test_next_drip_zero_before_first(faucet):
    assert faucet.nextDripAt(fresh_address(2)) == 0
    assert faucet.lastDripAt(fresh_address(2)) == 0


def test_drip_rejects_zero_recipient(faucet, stranger):
    with ape.reverts(faucet.FaucetZeroAddress, what="recipient"):
        faucet.drip(ZERO_ADDRESS, sender=stranger)


def test_drip_rejects_inside_cooldown(chain, faucet, stranger):
    recipient = fresh_address(3)
    start = chain.pending_timestamp + 10
    _drip_at(chain, faucet, recipient, stranger, start)

    chain.pending_timestamp = start + COOLDOWN - 1
    with ape.reverts(faucet.FaucetCooldownActive, recipient=recipient, nextDripAt=start + COOLDOWN):
        faucet.drip(recipient, sender=stranger)


def test_drip_allowed_when_cooldown_ends(chain, faucet, flt, stranger):
    recipient = fresh_address(4)
    start = chain.pending_timestamp + 10
    _drip_at(chain, faucet, recipient, stranger, start)

    _drip_at(chain, faucet, recipient, stranger, start + COOLDOWN)

    assert flt.balanceOf(recipient) == 2 * DRIP_FLT
    assert faucet.lastDripAt(recipient) == start + COOLDOWN


def test_cooldown_is_per_recipient(faucet, flt, stranger):
    faucet.drip(fresh_address(5), sender=stranger)

    faucet.drip(fresh_address(6), sender=stranger)

    assert flt.balanceOf(fresh_address(6)) == DRIP_FLT


def test_cooldown_not_per_caller(faucet, stranger, developer):
    recipient = fresh_address(7)
    faucet.drip(recipient, sender=stranger)

    with ape.reverts(faucet.FaucetCooldownActive):
        faucet.drip(recipient, sender=developer)


def test_zero_drip_amount_skips_token(faucet, flt, usdc, admin, stranger):
    faucet.setDripAmounts(0, DRIP_USDC, sender=admin)
    recipient = fresh_address(8)
    faucet_flt = flt.balanceOf(faucet)

    receipt = faucet.drip(recipient, sender=stranger)

    assert flt.balanceOf(recipient) == 0
    assert flt.balanceOf(faucet) == faucet_flt
    assert usdc.balanceOf(recipient) == DRIP_USDC
    assert [log.fltAmount for log in events(receipt, faucet.Dripped)] == [0]


@pytest.mark.parametrize("empty", ["flt", "usdc"])
def test_drip_rejects_empty_faucet(faucet, flt, usdc, admin, stranger, empty):
    token = {"flt": flt, "usdc": usdc}[empty]
    amount = {"flt": DRIP_FLT, "usdc": DRIP_USDC}[empty]
    faucet.withdraw(token, admin, token.balanceOf(faucet) - (amount - 1), sender=admin)
    recipient = fresh_address(9)

    with ape.reverts(faucet.FaucetEmpty, token=token.address, balance=amount - 1, amount=amount):
        faucet.drip(recipient, sender=stranger)

    assert faucet.lastDripAt(recipient) == 0


# ---------------------------------------------------------- owner settings


def test_set_drip_amounts(faucet, admin):
    receipt = faucet.setDripAmounts(3 * FLT, 4 * USDC, sender=admin)

    assert faucet.fltAmount() == 3 * FLT
    assert faucet.usdcAmount() == 4 * USDC
    [log] = events(receipt, faucet.DripAmountsSet)
    assert (log.fltAmount, log.usdcAmount) == (3 * FLT, 4 * USDC)


def test_set_drip_amounts_rejects_both_zero(faucet, admin):
    with ape.reverts(faucet.FaucetNoDripAmount):
        faucet.setDripAmounts(0, 0, sender=admin)


def test_set_cooldown(faucet, admin):
    receipt = faucet.setCooldown(60, sender=admin)

    assert faucet.cooldown() == 60
    assert [log.cooldown for log in events(receipt, faucet.CooldownSet)] == [60]


def test_shorter_cooldown_applies_at_once(chain, faucet, flt, admin, stranger):
    recipient = fresh_address(10)
    start = chain.pending_timestamp + 10
    _drip_at(chain, faucet, recipient, stranger, start)

    faucet.setCooldown(60, sender=admin)
    _drip_at(chain, faucet, recipient, stranger, start + 60)

    assert flt.balanceOf(recipient) == 2 * DRIP_FLT


def test_zero_cooldown_allows_every_block(faucet, flt, admin, stranger):
    faucet.setCooldown(0, sender=admin)
    recipient = fresh_address(11)

    faucet.drip(recipient, sender=stranger)
    faucet.drip(recipient, sender=stranger)

    assert flt.balanceOf(recipient) == 2 * DRIP_FLT


def test_max_cooldown_does_not_overflow(faucet, admin, stranger):
    faucet.setCooldown(UINT64_MAX, sender=admin)
    recipient = fresh_address(12)
    receipt = faucet.drip(recipient, sender=stranger)
    last = faucet.lastDripAt(recipient)

    assert receipt.return_value == last + UINT64_MAX
    with ape.reverts(faucet.FaucetCooldownActive, recipient=recipient, nextDripAt=last + UINT64_MAX):
        faucet.drip(recipient, sender=stranger)


def test_withdraw(faucet, usdc, admin):
    receiver = fresh_address(13)
    before = usdc.balanceOf(faucet)

    receipt = faucet.withdraw(usdc, receiver, 5 * USDC, sender=admin)

    assert usdc.balanceOf(receiver) == 5 * USDC
    assert usdc.balanceOf(faucet) == before - 5 * USDC
    [log] = events(receipt, faucet.Withdrawn)
    assert (log.token, log.to, log.amount) == (usdc.address, receiver, 5 * USDC)


def test_withdraw_recovers_other_token(project, faucet, admin, stranger):
    other_token = project.TestUSDC.deploy(admin, sender=admin)
    other_token.mint(faucet, 3 * USDC, sender=admin)

    faucet.withdraw(other_token, stranger, 3 * USDC, sender=admin)

    assert other_token.balanceOf(faucet) == 0
    assert other_token.balanceOf(stranger) == 3 * USDC


def test_withdraw_rejects_zero_receiver(faucet, usdc, admin):
    with ape.reverts(faucet.FaucetZeroAddress, what="to"):
        faucet.withdraw(usdc, ZERO_ADDRESS, 1, sender=admin)


def test_withdraw_rejects_more_than_balance(faucet, usdc, admin):
    balance = usdc.balanceOf(faucet)

    with ape.reverts(usdc.ERC20InsufficientBalance, sender=faucet.address, balance=balance, needed=balance + 1):
        faucet.withdraw(usdc, admin, balance + 1, sender=admin)


# ----------------------------------------------------------- properties


@onchain_settings
@given(
    cooldown=st.integers(min_value=1, max_value=30 * 86_400),
    offset_fraction=st.floats(min_value=0, max_value=2),
    edge=st.sampled_from([None, -1, 0]),
)
def test_cooldown_respected_for_any_offset(chain, faucet, flt, admin, stranger, cooldown, offset_fraction, edge):
    # `edge` pins the second drip to just before or exactly at the end of the cool-down.
    offset = cooldown + edge if edge is not None else max(1, int(cooldown * offset_fraction))
    recipient = fresh_address(100)

    with isolated(chain):
        faucet.setCooldown(cooldown, sender=admin)
        start = chain.pending_timestamp + 10
        _drip_at(chain, faucet, recipient, stranger, start)

        if offset < cooldown:
            chain.pending_timestamp = start + offset
            with ape.reverts(faucet.FaucetCooldownActive, recipient=recipient, nextDripAt=start + cooldown):
                faucet.drip(recipient, sender=stranger)
            assert flt.balanceOf(recipient) == DRIP_FLT
            assert faucet.lastDripAt(recipient) == start
        else:
            receipt = _drip_at(chain, faucet, recipient, stranger, start + offset)
            assert flt.balanceOf(recipient) == 2 * DRIP_FLT
            assert faucet.lastDripAt(recipient) == start + offset
            assert receipt.return_value == start + offset + cooldown


@onchain_settings
@given(
    flt_amount=st.integers(min_value=0, max_value=10**30),
    usdc_amount=st.integers(min_value=0, max_value=10**18),
    drips=st.integers(min_value=1, max_value=3),
)
def test_drip_pays_configured_amounts(chain, faucet, flt, usdc, admin, stranger, flt_amount, usdc_amount, drips):
    if flt_amount == 0 and usdc_amount == 0:
        usdc_amount = 1
    recipient = fresh_address(101)

    with isolated(chain):
        faucet.setDripAmounts(flt_amount, usdc_amount, sender=admin)
        faucet.setCooldown(0, sender=admin)
        flt.mint(faucet, drips * flt_amount, sender=admin)
        usdc.mint(faucet, drips * usdc_amount, sender=admin)
        faucet_flt, faucet_usdc = flt.balanceOf(faucet), usdc.balanceOf(faucet)

        for _ in range(drips):
            receipt = faucet.drip(recipient, sender=stranger)
            [log] = events(receipt, faucet.Dripped)
            assert (log.fltAmount, log.usdcAmount) == (flt_amount, usdc_amount)

        assert flt.balanceOf(recipient) == drips * flt_amount
        assert usdc.balanceOf(recipient) == drips * usdc_amount
        assert flt.balanceOf(faucet) == faucet_flt - drips * flt_amount
        assert usdc.balanceOf(faucet) == faucet_usdc - drips * usdc_amount


@onchain_settings
@given(
    flt_amount=st.integers(min_value=1, max_value=10**24),
    usdc_amount=st.integers(min_value=1, max_value=10**12),
    flt_balance_fraction=st.floats(min_value=0, max_value=2),
    usdc_balance_fraction=st.floats(min_value=0, max_value=2),
)
def test_empty_faucet_reverts_and_pays_nothing(
    chain, faucet, flt, usdc, admin, stranger, flt_amount, usdc_amount, flt_balance_fraction, usdc_balance_fraction
):
    flt_balance = int(flt_amount * flt_balance_fraction)
    usdc_balance = int(usdc_amount * usdc_balance_fraction)
    recipient = fresh_address(102)

    with isolated(chain):
        faucet.setDripAmounts(flt_amount, usdc_amount, sender=admin)
        faucet.withdraw(flt, admin, flt.balanceOf(faucet), sender=admin)
        faucet.withdraw(usdc, admin, usdc.balanceOf(faucet), sender=admin)
        flt.mint(faucet, flt_balance, sender=admin)
        usdc.mint(faucet, usdc_balance, sender=admin)

        if flt_balance < flt_amount:
            with ape.reverts(faucet.FaucetEmpty, token=flt.address, balance=flt_balance, amount=flt_amount):
                faucet.drip(recipient, sender=stranger)
        elif usdc_balance < usdc_amount:
            with ape.reverts(faucet.FaucetEmpty, token=usdc.address, balance=usdc_balance, amount=usdc_amount):
                faucet.drip(recipient, sender=stranger)
        else:
            faucet.drip(recipient, sender=stranger)

        paid = flt_balance >= flt_amount and usdc_balance >= usdc_amount
        assert flt.balanceOf(recipient) == (flt_amount if paid else 0)
        assert usdc.balanceOf(recipient) == (usdc_amount if paid else 0)
        if paid:
            assert faucet.lastDripAt(recipient) != 0
        else:
            assert faucet.lastDripAt(recipient) == 0


OWNER_FUNCTIONS = ("renounceOwnership", "setCooldown", "setDripAmounts", "transferOwnership", "withdraw")


def test_owner_functions_cover_every_mutating_function(faucet):
    mutating = {
        abi.name for abi in faucet.contract_type.abi if abi.type == "function" and abi.stateMutability not in ("view", "pure")
    }

    assert mutating == {"drip", *OWNER_FUNCTIONS}


@onchain_settings
@given(
    function=st.sampled_from(OWNER_FUNCTIONS),
    caller_index=st.integers(min_value=1, max_value=9),
    value=st.integers(min_value=0, max_value=2**128),
    use_usdc=st.booleans(),
)
def test_owner_functions_reject_other_accounts(accounts, faucet, flt, usdc, function, caller_index, value, use_usdc):
    caller = accounts[caller_index]
    token = usdc if use_usdc else flt
    settings_before = (faucet.fltAmount(), faucet.usdcAmount(), faucet.cooldown(), faucet.owner())
    balance_before = token.balanceOf(faucet)

    call = getattr(faucet, function)
    arguments = {
        "setDripAmounts": (value, value + 1),
        "setCooldown": (value % 2**64,),
        "withdraw": (token, caller, value % (balance_before + 1)),
        "transferOwnership": (caller,),
        "renounceOwnership": (),
    }[function]
    with ape.reverts(faucet.OwnableUnauthorizedAccount, account=caller.address):
        call(*arguments, sender=caller)

    assert (faucet.fltAmount(), faucet.usdcAmount(), faucet.cooldown(), faucet.owner()) == settings_before
    assert token.balanceOf(faucet) == balance_before
