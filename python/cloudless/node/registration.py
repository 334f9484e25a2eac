"""Start-up sync with the Market: register the provider and its offer once, reuse it on restarts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import to_checksum_address

from cloudless.chain.session import Session
from cloudless.chain.types import OfferTerms, PeerSpec
from cloudless.exceptions import ConfigError
from cloudless.node.config import NodeConfig

__all__ = ["ProviderRegistration", "ensure_signer_gas", "sync_endpoint", "sync_provider"]

logger = logging.getLogger("cloudless.node")

# Peer signers pay gas for their epoch proofs. At start-up the provider tops a
# signer up to SIGNER_TOPUP_WEI when its balance is below SIGNER_MIN_BALANCE_WEI.
# NOTE: only at start-up, so a node that runs for a long time on a chain with
# real gas prices can run its signers dry until it restarts.
SIGNER_MIN_BALANCE_WEI = 5 * 10**16
SIGNER_TOPUP_WEI = 2 * 10**17


@dataclass(frozen=True)
class ProviderRegistration:
    """The provider's offer and the peer id of every configured signer."""

    provider: str
    offer_id: int
    peer_ids: dict[str, int]  # checksum signer address -> peer id
    created: bool  # True when this start-up created the offer


def sync_provider(session: Session, config: NodeConfig, signers: Sequence[str]) -> ProviderRegistration:
    """Find the offer whose peers are exactly `signers`, or register and create it.

    Raises ConfigError when some signers already belong to another offer or
    provider, because the node cannot reconcile that on its own.
    """
    signers = [to_checksum_address(signer) for signer in signers]
    market = session.market
    existing = {signer: market.peer_id_by_signer(signer) for signer in signers}
    registered = {signer: peer_id for signer, peer_id in existing.items() if peer_id != 0}

    if not registered:
        offer_id = _create_offer(session, config, signers)
        offer = market.get_offer(offer_id)
        peer_ids = {market.get_peer(peer_id).signer: peer_id for peer_id in offer.peer_ids}
        logger.info("created offer %d with peers %s", offer_id, sorted(peer_ids.values()))
        return ProviderRegistration(session.address, offer_id, peer_ids, created=True)

    if len(registered) != len(signers):
        missing = [signer for signer in signers if signer not in registered]
        raise ConfigError(
            f"peers {sorted(registered)} are already on chain but {missing} are not: the node registers "
            "all configured peers as one offer, so list exactly the signers of one existing offer or only new ones"
        )

    offer_id = _existing_offer_id(session, registered)
    _sync_offer_terms(session, config, offer_id, signers)
    logger.info("reusing offer %d with peers %s", offer_id, sorted(registered.values()))
    return ProviderRegistration(session.address, offer_id, dict(registered), created=False)


def _existing_offer_id(session: Session, registered: dict[str, int]) -> int:
    market = session.market
    offer_ids = {signer: market.get_peer(peer_id).offer_id for signer, peer_id in registered.items()}
    distinct = set(offer_ids.values())
    if len(distinct) != 1:
        raise ConfigError(
            f"the configured signers belong to different offers ({offer_ids}); list the signers of one offer"
        )
    offer_id = distinct.pop()
    offer = market.get_offer(offer_id)
    if to_checksum_address(offer.provider) != to_checksum_address(session.address):
        raise ConfigError(
            f"offer {offer_id} of these signers belongs to provider {offer.provider}, not to {session.address}; "
            "check provider_key"
        )
    return offer_id


def _sync_offer_terms(session: Session, config: NodeConfig, offer_id: int, signers: Sequence[str]) -> None:
    market = session.market
    offer = market.get_offer(offer_id)
    live_signers = {
        to_checksum_address(peer.signer)
        for peer in (market.get_peer(peer_id) for peer_id in offer.peer_ids)
        if not peer.removed
    }
    extra = live_signers - set(signers)
    if extra:
        logger.warning("offer %d also has peers %s that this node's config does not list", offer_id, sorted(extra))

    price = session.usdc.parse(config.offer.price_usdc)
    if offer.terms.price_per_cu_per_epoch != price:
        logger.info(
            "changing offer %d price from %d to %d per CU per epoch",
            offer_id,
            offer.terms.price_per_cu_per_epoch,
            price,
        )
        market.set_offer_price(offer_id, price)
    fixed = (offer.terms.region, offer.terms.tier, offer.terms.sla_bps)
    wanted = (config.offer.region, config.offer.tier, config.offer.sla_bps)
    if fixed != wanted:
        logger.warning(
            "offer %d has (region, tier, sla_bps) %s on chain but the config asks for %s; "
            "the Market cannot change them, so create a new offer with new signer keys to apply them",
            offer_id,
            fixed,
            wanted,
        )
    if offer.paused:
        logger.warning("offer %d is paused, so it gets no new workers", offer_id)


def _create_offer(session: Session, config: NodeConfig, signers: Sequence[str]) -> int:
    market = session.market
    peers = [PeerSpec(signer=signer, cus=peer.cus) for signer, peer in zip(signers, config.peers)]
    provider = market.get_provider(session.address)
    new_cus = sum(peer.cus for peer in peers)
    shortfall = max(0, market.collateral_per_cu() * (provider.total_cus + new_cus) - provider.stake)

    stake = shortfall if config.offer.stake_flt is None else session.flt.parse(config.offer.stake_flt)
    if stake < shortfall:
        raise ConfigError(
            f"offer.stake_flt {config.offer.stake_flt} FLT does not cover {new_cus} new CUs: "
            f"stake at least {session.flt.format(shortfall)} FLT"
        )
    balance = session.flt.balance_of(session.address)
    if stake > balance:
        raise ConfigError(
            f"provider {session.address} has {session.flt.format(balance)} FLT but must stake "
            f"{session.flt.format(stake)} FLT for {new_cus} CUs; fund it with FLT first"
        )

    terms = OfferTerms(
        payment_token=session.usdc.address,
        price_per_cu_per_epoch=session.usdc.parse(config.offer.price_usdc),
        region=config.offer.region,
        tier=config.offer.tier,
        sla_bps=config.offer.sla_bps,
    )
    logger.info(
        "registering provider %s as %r: staking %s FLT, offering %d CUs on %d peers",
        session.address,
        config.name,
        session.flt.format(stake),
        new_cus,
        len(peers),
    )
    return session.register_provider(config.name, stake=stake, terms=terms, peers=peers)


def sync_endpoint(session: Session, url: str) -> bool:
    """Publish `url` as the provider's endpoint unless the chain already has it, and return whether a transaction was sent."""
    market = session.market
    current = market.provider_endpoint(session.address)
    if current == url:
        logger.info("provider endpoint on chain is already %s", url)
        return False
    logger.info("setting provider endpoint from %r to %s", current, url)
    market.set_provider_endpoint(url)
    return True


def ensure_signer_gas(session: Session, signers: Sequence[str]) -> None:
    """Send ETH from the provider to each signer whose balance cannot pay for proofs."""
    w3 = session.client.w3
    for signer in signers:
        balance = w3.eth.get_balance(to_checksum_address(signer))
        if balance >= SIGNER_MIN_BALANCE_WEI:
            continue
        logger.info("topping up peer signer %s from %d wei to %d wei for proof gas", signer, balance, SIGNER_TOPUP_WEI)
        session.client.send_value(signer, SIGNER_TOPUP_WEI - balance)
