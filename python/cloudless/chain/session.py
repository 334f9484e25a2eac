"""`connect()`: one object with every contract client of a deployment, and the
multi-step flows (approve then act) that scripts, the CLI and the demo share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TypeVar

from cloudless.chain.challenges import ChallengeClient
from cloudless.chain.client import ChainClient, check_deployed, connect_web3
from cloudless.chain.deals import DealClient
from cloudless.chain.deployment import Deployment, load_deployment
from cloudless.chain.faucet import FaucetClient
from cloudless.chain.market import MarketClient
from cloudless.chain.tokens import TokenClient
from cloudless.chain.types import DealParams, OfferTerms, PeerSpec
from cloudless.exceptions import ConfigError, DepositBelowReserveError, InsufficientBalanceError

__all__ = ["Session", "connect"]

logger = logging.getLogger("cloudless.chain")

T = TypeVar("T")


class Session:
    """Clients for the Market, the DealManager and both tokens, signing with one key."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client

    @property
    def deployment(self) -> Deployment:
        assert self.client.deployment is not None
        return self.client.deployment

    @property
    def address(self) -> str:
        return self.client.address

    @cached_property
    def market(self) -> MarketClient:
        return MarketClient(self.client)

    @cached_property
    def deals(self) -> DealClient:
        return DealClient(self.client)

    @cached_property
    def challenges(self) -> ChallengeClient:
        """The ChallengeManager; raises ConfigError for a deployment recorded before it existed."""
        return ChallengeClient(self.client)

    @cached_property
    def usdc(self) -> TokenClient:
        return TokenClient(self.client, "TestUSDC")

    @cached_property
    def flt(self) -> TokenClient:
        return TokenClient(self.client, "FLT")

    @cached_property
    def faucet(self) -> FaucetClient:
        """The test token Faucet; raises ConfigError for a deployment recorded before it existed."""
        return FaucetClient(self.client)

    def with_key(self, private_key: str) -> Session:
        """Return a session on the same connection that signs with `private_key`."""
        return Session(self.client.with_key(private_key))

    # -------------------------------------------------------------- flows

    def create_deal(self, params: DealParams) -> int:
        """Check the deposit, approve it and create the deal; return its id.

        Raises ConfigError if the deal does not pay in the deployment's USDC,
        DepositBelowReserveError if the deposit does not cover the reserve, and
        InsufficientBalanceError if the signer has less USDC than the deposit,
        all before any transaction. If `createDeal` fails after this call
        approved the deposit, the allowance is set back to its earlier value.
        """
        if params.payment_token.lower() != self.usdc.address.lower():
            raise ConfigError(
                f"payment token {params.payment_token} is not the deployment's USDC ({self.usdc.address}): "
                "Session.create_deal only approves USDC, so set payment_token=session.usdc.address"
            )
        reserve = params.reserve(self.deployment.epoch.min_deposited_epochs)
        if params.deposit < reserve:
            usdc = self.usdc
            raise DepositBelowReserveError(
                f"deposit {usdc.format(params.deposit)} USDC is below the reserve of {usdc.format(reserve)} USDC "
                f"for these deal settings: deposit {usdc.format(reserve)} USDC or more",
                deposit=params.deposit,
                reserve=reserve,
            )
        self._check_usdc_balance(params.deposit)
        return self._with_deal_allowance(params.deposit, "createDeal", lambda: self.deals.create_deal(params))

    def deposit(self, deal_id: int, amount: int) -> None:
        """Approve and top up a deal.

        Raises InsufficientBalanceError before any transaction if the signer
        has less USDC than `amount`. If `deposit` fails after this call
        approved the amount, the allowance is set back to its earlier value.
        """
        self._check_usdc_balance(amount)
        self._with_deal_allowance(amount, "deposit", lambda: self.deals.deposit(deal_id, amount))

    def _check_usdc_balance(self, amount: int) -> None:
        self._check_balance(
            self.usdc, amount, "get test USDC with `cloudless faucet drip` or `cloudless onramp buy`, or use a smaller amount"
        )

    def _check_balance(self, token: TokenClient, amount: int, fix: str) -> None:
        """Raise InsufficientBalanceError, with `fix` as the advice, if the signer has less than `amount` of `token`."""
        balance = token.balance_of(self.address)
        if balance < amount:
            raise InsufficientBalanceError(
                f"{self.address} has {token.format(balance)} {token.symbol}, less than the "
                f"{token.format(amount)} {token.symbol} needed: {fix}",
                balance=balance,
                required=amount,
            )

    def _with_deal_allowance(self, amount: int, action: str, send: Callable[[], T]) -> T:
        """Make sure the DealManager may take `amount` USDC, run `send`, and undo this call's approval if `send` fails."""
        spender = self.deals.address
        before = self.usdc.allowance(self.address, spender)
        if before >= amount:
            return send()

        self.usdc.approve(spender, amount)
        try:
            return send()
        except Exception:
            self._restore_allowance(spender, before, action)
            raise

    def _restore_allowance(self, spender: str, allowance: int, action: str) -> None:
        """Set the USDC allowance of `spender` back to `allowance`. A failure is logged, not raised, so the caller sees the first error."""
        try:
            self.usdc.approve(spender, allowance)
        except Exception as error:  # best effort: any failure here must not hide why `action` failed
            logger.warning(
                "%s failed, and setting the USDC allowance of %s back to %s failed too (%s): "
                "call approve(%s, %d) on %s to remove it",
                action,
                spender,
                self.usdc.format(allowance),
                error,
                spender,
                allowance,
                self.usdc.address,
            )
            return
        logger.info("%s failed, so the USDC allowance of %s was set back to %s", action, spender, self.usdc.format(allowance))

    def register_provider(
        self, name: str, *, stake: int, terms: OfferTerms, peers: Sequence[PeerSpec]
    ) -> int:
        """Register the signer as a provider (if needed), stake FLT and create an offer; return the offer id.

        Raises InsufficientBalanceError before any transaction if the signer has less FLT than `stake`.
        """
        if stake > 0:
            self._check_balance(self.flt, stake, "get FLT with `cloudless faucet drip` or `ape run fund --flt` first")
        provider = self.market.get_provider(self.address)
        if not provider.registered:
            self.market.register_provider(name)
        if stake > 0:
            self.flt.ensure_allowance(self.market.address, stake)
            self.market.stake(stake)
        return self.market.create_offer(terms, peers)

    def fund(self, account: str, *, eth_wei: int = 0, usdc: int = 0, flt: int = 0) -> None:
        """Send ETH and mint test tokens to `account` (the signer must own the tokens)."""
        if eth_wei:
            self.client.send_value(account, eth_wei)
        if usdc:
            self.usdc.mint(account, usdc)
        if flt:
            self.flt.mint(account, flt)


def connect(
    rpc_url: str = "http://127.0.0.1:8545",
    private_key: str | None = None,
    *,
    deployment: Deployment | None = None,
) -> Session:
    """Connect to a node and load the deployment record of the chain it serves."""
    if deployment is None:
        w3 = connect_web3(rpc_url)
        deployment = load_deployment(w3.eth.chain_id)
        check_deployed(w3, deployment, rpc_url)
        return Session(ChainClient(w3, deployment, private_key))
    return Session(ChainClient.connect(rpc_url, deployment, private_key))
