"""The matcher against a real chain: cheapest placement, and a cap below every offer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_chain import LocalChain, local_chain

from cloudless.chain.types import DealParams, DealStatus, OfferTerms, PeerSpec
from cloudless.chain.session import Session
from cloudless.exceptions import ContractRevertError
from cloudless.matcher import Matcher

# (provider account, price in USDC per CU per epoch, peer signer accounts)
OFFERS = [(1, "0.20", (10, 11)), (2, "0.35", (12,))]


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalChain]:
    with local_chain() as started:
        admin = started.session(0)
        for provider_index, price, signer_indices in OFFERS:
            provider = started.session(provider_index)
            stake = 2 * len(signer_indices) * started.deployment.collateral_per_cu
            admin.fund(provider.address, flt=stake)
            provider.register_provider(
                f"provider-{provider_index}",
                stake=stake,
                terms=OfferTerms(
                    payment_token=provider.usdc.address,
                    price_per_cu_per_epoch=provider.usdc.parse(price),
                    region=276,
                    tier=3,
                    sla_bps=9990,
                ),
                peers=[PeerSpec(signer=started.session(index).address, cus=2) for index in signer_indices],
            )
        admin.fund(started.session(5).address, usdc=admin.usdc.parse("1000"))
        yield started


def create_deal(developer: Session, *, cap: str, workers: int, per_provider: int) -> int:
    return developer.create_deal(
        DealParams(
            app_cid=b"\x01\x55\x12\x20" + bytes(range(32)),
            payment_token=developer.usdc.address,
            max_price_per_cu_per_epoch=developer.usdc.parse(cap),
            deposit=developer.usdc.parse("50"),
            min_workers=workers,
            target_workers=workers,
            max_workers_per_provider=per_provider,
        )
    )


def test_matcher_cap_below_every_offer_stays_unmatched(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="0.10", workers=1, per_provider=1)

    outcome = Matcher(chain.session(9)).run_once()

    assert deal_id not in outcome.placed
    assert "no peer fits" in outcome.unmatched[deal_id]
    assert developer.deals.deal_status(deal_id) == DealStatus.NOT_ENOUGH_WORKERS
    assert developer.deals.get_deal(deal_id).active_workers == 0


def test_match_deal_cap_below_every_offer_reverts(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="0.10", workers=1, per_provider=1)
    peer_count = developer.market.peer_count()

    with pytest.raises(ContractRevertError) as raised:
        developer.deals.match_deal(deal_id, list(range(1, peer_count + 1)))

    assert raised.value.error_name == "DealNoWorkerPlaced"
    assert raised.value.error_args == {"dealId": deal_id}


def test_matcher_places_cheapest_peers(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="1", workers=2, per_provider=2)

    outcome = Matcher(chain.session(9)).run_once()

    assert len(outcome.placed[deal_id]) == 2
    workers = [developer.deals.get_worker(worker_id) for worker_id in developer.deals.deal_worker_ids(deal_id)]
    assert sorted(worker.price_per_cu_per_epoch for worker in workers) == [200_000, 200_000]
    assert len({worker.peer_id for worker in workers}) == 2
    assert developer.deals.deal_status(deal_id) == DealStatus.ACTIVE


def test_matcher_restart_never_double_places(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="1", workers=2, per_provider=1)

    Matcher(chain.session(9)).run_once()
    second = Matcher(chain.session(9)).run_once()  # a fresh matcher, as after a restart

    assert deal_id not in second.placed
    assert developer.deals.get_deal(deal_id).active_workers == 2
    providers = {developer.deals.get_worker(worker_id).provider for worker_id in developer.deals.deal_worker_ids(deal_id)}
    assert len(providers) == 2


def test_matcher_skips_stopped_deal(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="1", workers=1, per_provider=1)
    developer.deals.stop_deal(deal_id)

    outcome = Matcher(chain.session(9)).run_once()

    assert deal_id not in outcome.placed
    assert deal_id not in outcome.failed
    assert deal_id not in outcome.unmatched
    assert developer.deals.get_deal(deal_id).active_workers == 0


def test_matcher_refills_slot_after_worker_exit(chain: LocalChain) -> None:
    developer = chain.session(5)
    deal_id = create_deal(developer, cap="1", workers=1, per_provider=1)
    matcher = Matcher(chain.session(9))
    [first_worker] = matcher.run_once().placed[deal_id]
    first = developer.deals.get_worker(first_worker)
    provider_index = next(index for index, _, _ in OFFERS if chain.session(index).address == first.provider)

    chain.session(provider_index).deals.exit_worker(first_worker)
    assert developer.deals.deal_status(deal_id) == DealStatus.NOT_ENOUGH_WORKERS
    refill = matcher.run_once()

    [second_worker] = refill.placed[deal_id]
    assert second_worker != first_worker
    assert developer.deals.get_worker(second_worker).active
    assert not developer.deals.get_worker(first_worker).active
    assert developer.deals.deal_status(deal_id) == DealStatus.ACTIVE
