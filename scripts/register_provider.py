"""Register a provider, stake FLT and publish an offer with its peers.

    ape run register_provider --account-index 1 --price 0.5 \
        --peer 0xSIGNER1:4 --peer 0xSIGNER2:2 --region 276 --tier 3 --sla-bps 9990

The provider needs FLT for the stake (`ape run fund --flt ...`) and ETH for gas.
"""

import click
from ape import chain
from ape.cli import ConnectedProviderCommand

from cloudless.chain import connect
from cloudless.chain.addresses import parse_address
from cloudless.chain.keys import private_key_from_env_or_index
from cloudless.chain.types import OfferTerms, PeerSpec
from cloudless.cli.common import FLT_DECIMALS, USDC_DECIMALS, token_amount
from cloudless.exceptions import CloudlessError, ConfigError
from cloudless.formatting import format_count


def _parse_peer(text):
    signer, _, cus = text.partition(":")
    if not cus.isdigit() or int(cus) == 0:
        raise click.BadParameter(f"invalid peer {text!r}: use SIGNER_ADDRESS:CUS with CUS above 0, e.g. 0xabc...:4")
    try:
        address = parse_address(signer)
    except ConfigError as error:
        raise click.BadParameter(f"invalid peer {text!r}: {error}; use SIGNER_ADDRESS:CUS, e.g. 0xabc...:4") from error
    return PeerSpec(signer=address, cus=int(cus))


def _check_peers(context, parameter, values):
    return [_parse_peer(text) for text in values]


@click.command(cls=ConnectedProviderCommand)
@click.option("--account-index", type=click.IntRange(0, 999), default=1, show_default=True, help="Local test account of the provider (ignored when CLOUDLESS_PRIVATE_KEY is set).")
@click.option("--name", default="provider", show_default=True, help="Provider name stored on chain.")
@click.option("--price", required=True, callback=token_amount(USDC_DECIMALS), metavar="USDC", help="USDC per CU per epoch, e.g. 0.5.")
@click.option("--peer", "peers", multiple=True, required=True, callback=_check_peers, help="SIGNER_ADDRESS:CUS, once per peer.")
@click.option("--region", type=click.IntRange(0, 65535), default=276, show_default=True, help="Region code (ISO 3166-1 numeric).")
@click.option("--tier", type=click.IntRange(1, 4), default=3, show_default=True, help="Datacenter tier 1..4.")
@click.option("--sla-bps", type=click.IntRange(0, 10000), default=9990, show_default=True, help="Promised availability in basis points.")
@click.option("--stake", "stake_flt", callback=token_amount(FLT_DECIMALS), metavar="FLT", default=None, help="FLT to stake; default: exactly what the CUs require.")
def cli(account_index, name, price, peers, region, tier, sla_bps, stake_flt):
    """Register a provider and publish one offer."""
    total_cus = sum(peer.cus for peer in peers)
    try:
        session = connect(chain.provider.uri, private_key_from_env_or_index(account_index))
        stake = session.flt.parse(stake_flt) if stake_flt is not None else total_cus * session.market.collateral_per_cu()
        terms = OfferTerms(
            payment_token=session.usdc.address,
            price_per_cu_per_epoch=session.usdc.parse(price),
            region=region,
            tier=tier,
            sla_bps=sla_bps,
        )
        offer_id = session.register_provider(name, stake=stake, terms=terms, peers=peers)
        offer = session.market.get_offer(offer_id)
    except (CloudlessError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"offer {offer_id} by {session.address}: peers {list(offer.peer_ids)}, "
        f"{format_count(total_cus, 'CU')} at {price} USDC/CU/epoch"
    )
