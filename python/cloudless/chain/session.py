"""`connect()`: one object with every contract client of a deployment, and the
multi-step flows (approve then act) that scripts, the CLI and the demo share."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

from cloudless.chain.client import ChainClient, check_deployed, connect_web3
from cloudless.chain.deals import DealClient
from cloudless.chain.deployment import Deployment, load_deployment
from cloudless.chain.faucet import FaucetClient
from cloudless.chain.market import MarketClient
from cloudless.chain.tokens import TokenClient
from cloudless.chain.types import DealParams, OfferTerms, PeerSpec

__all__ = ["Session", "connect"]

logger = logging.getLogger("cloudless.chain")


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
        """Approve the deposit and create the deal; return its id."""
        self.usdc.ensure_allowance(self.deals.address, params.deposit)
        return self.deals.create_deal(params)

    def deposit(self, deal_id: int, amount: int) -> None:
        """Approve and top up a deal."""
        self.usdc.ensure_allowance(self.deals.address, amount)
        self.deals.deposit(deal_id, amount)

    def register_provider(
        self, name: str, *, stake: int, terms: OfferTerms, peers: Sequence[PeerSpec]
    ) -> int:
        """Register the signer as a provider (if needed), stake FLT and create an offer; return the offer id."""
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
