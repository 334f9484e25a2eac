"""FLT and TestUSDC: metadata, owner-only minting and EIP-2612 permits."""

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from contract_helpers import FLT, USDC


def _sign_permit(token, owner, spender, value, deadline, chain_id):
    typed_data = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": token.name(),
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner.address,
            "spender": spender.address,
            "value": value,
            "nonce": token.nonces(owner),
            "deadline": deadline,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed_data), owner.private_key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def test_flt_metadata(flt, admin):
    assert flt.name() == "Fluence Test Token"
    assert flt.symbol() == "FLT"
    assert flt.decimals() == 18
    assert flt.owner() == admin


def test_flt_mint_by_owner(flt, admin, stranger):
    # The challenge fixtures of conftest.py may already have minted FLT to the stranger.
    supply, balance = flt.totalSupply(), flt.balanceOf(stranger)

    flt.mint(stranger, 5 * FLT, sender=admin)

    assert flt.balanceOf(stranger) == balance + 5 * FLT
    assert flt.totalSupply() == supply + 5 * FLT


def test_flt_mint_rejects_non_owner(flt, stranger):
    with ape.reverts(flt.OwnableUnauthorizedAccount, account=stranger.address):
        flt.mint(stranger, 1, sender=stranger)


def test_usdc_metadata(usdc, admin):
    assert usdc.name() == "Test USD Coin"
    assert usdc.symbol() == "USDC"
    assert usdc.decimals() == 6
    assert usdc.owner() == admin


def test_usdc_mint_by_owner(usdc, admin, stranger):
    before = usdc.balanceOf(stranger)

    usdc.mint(stranger, 7 * USDC, sender=admin)

    assert usdc.balanceOf(stranger) == before + 7 * USDC


def test_usdc_mint_rejects_non_owner(usdc, stranger):
    with ape.reverts(usdc.OwnableUnauthorizedAccount, account=stranger.address):
        usdc.mint(stranger, 1, sender=stranger)


@pytest.mark.parametrize("token_name", ["flt", "usdc"])
def test_permit_sets_allowance(request, chain, token_name, developer, stranger, providers):
    token = request.getfixturevalue(token_name)
    owner = developer if token_name == "usdc" else providers[0]
    deadline = chain.pending_timestamp + 3_600
    v, r, s = _sign_permit(token, owner, stranger, 123, deadline, chain.chain_id)

    token.permit(owner, stranger, 123, deadline, v, r, s, sender=stranger)

    assert token.allowance(owner, stranger) == 123
    assert token.nonces(owner) == 1


def test_permit_rejects_wrong_signer(chain, usdc, developer, stranger):
    deadline = chain.pending_timestamp + 3_600
    v, r, s = _sign_permit(usdc, stranger, developer, 5, deadline, chain.chain_id)

    with ape.reverts(usdc.ERC2612InvalidSigner):
        usdc.permit(developer, developer, 5, deadline, v, r, s, sender=stranger)
