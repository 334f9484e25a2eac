"""Calls on the Market contract: providers, stake, offers and peers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from web3.logs import DISCARD
from web3.types import TxReceipt

from cloudless.chain.client import ChainClient
from cloudless.chain.types import Offer, OfferTerms, Peer, PeerSpec, Provider
from cloudless.formatting import format_count

__all__ = ["MarketClient"]

logger = logging.getLogger("cloudless.chain")


class MarketClient:
    """Typed wrapper around the deployed Market."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract = client.contract("Market")

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # --------------------------------------------------------- providers

    def register_provider(self, name: str) -> TxReceipt:
        logger.info("registering provider %s as %r", self.client.address, name)
        return self.client.transact(self.contract.functions.registerProvider(name))

    def stake(self, amount: int) -> TxReceipt:
        logger.info("staking %d FLT wei for %s", amount, self.client.address)
        return self.client.transact(self.contract.functions.stake(amount))

    def request_unstake(self, amount: int) -> TxReceipt:
        return self.client.transact(self.contract.functions.requestUnstake(amount))

    def withdraw_unstaked(self) -> TxReceipt:
        return self.client.transact(self.contract.functions.withdrawUnstaked())

    def set_provider_endpoint(self, url: str) -> TxReceipt:
        """Publish the URL where this provider's node takes calls."""
        logger.info("setting provider endpoint of %s to %s", self.client.address, url)
        return self.client.transact(self.contract.functions.setProviderEndpoint(url))

    def provider_endpoint(self, provider: str) -> str:
        """Return the provider's published endpoint, or "" if it has none."""
        return str(self.client.call(self.contract.functions.providerEndpoint(provider)))

    # ------------------------------------------------------------ offers

    def create_offer(self, terms: OfferTerms, peers: Sequence[PeerSpec]) -> int:
        """Create an offer and return its id."""
        function = self.contract.functions.createOffer(terms.as_tuple(), [peer.as_tuple() for peer in peers])
        receipt = self.client.transact(function)
        (event,) = self.contract.events.OfferCreated().process_receipt(receipt, errors=DISCARD)
        offer_id = int(event.args.offerId)
        logger.info(
            "created offer %d with %s at %d base units per CU per epoch", offer_id, format_count(len(peers), "peer"), terms.price_per_cu_per_epoch
        )
        return offer_id

    def set_offer_price(self, offer_id: int, price: int) -> TxReceipt:
        return self.client.transact(self.contract.functions.setOfferPrice(offer_id, price))

    def set_offer_paused(self, offer_id: int, paused: bool) -> TxReceipt:
        return self.client.transact(self.contract.functions.setOfferPaused(offer_id, paused))

    def add_peer(self, offer_id: int, peer: PeerSpec) -> int:
        receipt = self.client.transact(self.contract.functions.addPeer(offer_id, peer.as_tuple()))
        (event,) = self.contract.events.PeerAdded().process_receipt(receipt, errors=DISCARD)
        return int(event.args.peerId)

    # ------------------------------------------------------------- views

    def get_provider(self, address: str) -> Provider:
        raw = self.client.call(self.contract.functions.getProvider(address))
        return Provider(
            address=address,
            registered=raw.registered,
            name=raw.name,
            stake=raw.stake,
            unbonding=raw.unbonding,
            unbonding_end=raw.unbondingEnd,
            total_cus=raw.totalCus,
        )

    def get_offer(self, offer_id: int) -> Offer:
        raw = self.client.call(self.contract.functions.getOffer(offer_id))
        return Offer(
            offer_id=offer_id,
            provider=raw.provider,
            terms=OfferTerms.from_chain(raw.terms),
            paused=raw.paused,
            peer_ids=tuple(raw.peerIds),
        )

    def get_peer(self, peer_id: int) -> Peer:
        raw = self.client.call(self.contract.functions.getPeer(peer_id))
        return Peer(
            peer_id=peer_id,
            offer_id=raw.offerId,
            signer=raw.signer,
            total_cus=raw.totalCus,
            free_cus=raw.freeCus,
            removed=raw.removed,
        )

    def peer_id_by_signer(self, signer: str) -> int:
        return int(self.client.call(self.contract.functions.peerIdBySigner(signer)))

    def offer_count(self) -> int:
        return int(self.client.call(self.contract.functions.offerCount()))

    def peer_count(self) -> int:
        return int(self.client.call(self.contract.functions.peerCount()))

    def required_stake(self, provider: str) -> int:
        return int(self.client.call(self.contract.functions.requiredStake(provider)))

    def collateral_per_cu(self) -> int:
        return int(self.client.call(self.contract.functions.collateralPerCu()))

    # ------------------------------------------------------------ slashing

    def slash(self, provider: str, amount: int, reporter: str, reason: str) -> int:
        """Slash up to `amount` FLT wei of `provider` (the signer must be a slasher); return what was taken."""
        code = reason.encode()
        if len(code) > 32:
            raise ValueError(f"slash reason {reason!r} is longer than 32 bytes; use a short code")
        receipt = self.client.transact(
            self.contract.functions.slash(provider, amount, reporter, code.ljust(32, b"\0"))
        )
        (event,) = self.contract.events.ProviderSlashed().process_receipt(receipt, errors=DISCARD)
        return int(event.args.amount)

    def set_slasher(self, account: str, allowed: bool) -> TxReceipt:
        return self.client.transact(self.contract.functions.setSlasher(account, allowed))

    def withdraw_slash_reward(self) -> TxReceipt:
        return self.client.transact(self.contract.functions.withdrawSlashReward())

    def slash_rewards(self, account: str) -> int:
        return int(self.client.call(self.contract.functions.slashRewards(account)))

    def treasury_balance(self) -> int:
        return int(self.client.call(self.contract.functions.treasuryBalance()))
