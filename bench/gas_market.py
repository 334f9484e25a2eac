"""A market on a fresh local anvil for the gas benchmark, with metered sessions.

`gas_market()` starts anvil on 127.0.0.1, deploys the contracts, registers
three providers with one peer each and funds a developer. Every session signs
through a `MeteredClient`, so `measure()` can read `gasUsed` from the receipt
of the one transaction that an action sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from web3.types import TxReceipt

from cloudless.chain import ChainClient, DeploySettings
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams, EpochProofEntry, OfferTerms, PeerSpec
from cloudless.cid import cid_to_bytes, compute_cid

T = TypeVar("T")

# The claim-scaling run proves 100 epochs of one worker after all of them end,
# so the oldest proof is 100 epochs old.
PROOF_WINDOW_EPOCHS = 100
# Epochs last an hour, so wall-clock time moves a scenario into the next epoch
# only if the scenario runs that long. The benchmark moves chain time itself.
EPOCH_SECONDS = 3600
# Room for all the workers that the scenarios keep on the first provider's peer.
PEER_CUS = 16
OFFER_PRICE = "0.2"  # USDC per CU per epoch
PRICE_CAP = "0.3"  # USDC per CU per epoch

ADMIN_ACCOUNT = 0
PROVIDER_ACCOUNTS = (1, 2, 3)
DEVELOPER_ACCOUNT = 5
SIGNER_ACCOUNTS = (10, 11, 12)  # peer signers, one per provider


class BenchError(RuntimeError):
    """A benchmark step did not do what it should, so its numbers would be wrong."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


class MeteredClient(ChainClient):
    """A ChainClient that keeps the receipt of every transaction it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts: list[TxReceipt] = []

    def transact(self, function: Any, *, description: str = "") -> TxReceipt:
        receipt = super().transact(function, description=description)
        self.receipts.append(receipt)
        return receipt


def measure(session: Session, action: Callable[[], T]) -> tuple[T, int]:
    """Run `action`, which must send exactly one transaction from `session`, and return its result and gas used."""
    client = session.client
    if not isinstance(client, MeteredClient):
        raise BenchError("measure() needs a session from metered_session()")
    before = len(client.receipts)
    result = action()
    sent = client.receipts[before:]
    check(len(sent) == 1, f"expected one transaction from {session.address}, found {len(sent)}")
    return result, int(sent[0]["gasUsed"])


def metered_session(chain: LocalChain, account_index: int) -> Session:
    """Return a session of local test account `account_index` whose client keeps its receipts."""
    return Session(MeteredClient.connect(chain.rpc_url, chain.deployment, anvil_account_key(account_index)))


@dataclass(frozen=True)
class ProviderAccount:
    session: Session  # signs as the provider (stake, offers, claims)
    signer: Session  # signs as the signer of its one peer (proofs)
    peer_id: int


@dataclass
class GasMarket:
    chain: LocalChain
    admin: Session
    developer: Session
    providers: list[ProviderAccount] = field(default_factory=list)
    # Gas of register, stake and create offer for the last provider registered.
    setup_gas: dict[str, int] = field(default_factory=dict)

    # --------------------------------------------------------------- time

    def current_epoch(self) -> int:
        return self.developer.deals.current_epoch()

    def advance_epochs(self, epochs: int) -> int:
        """Move chain time forward by whole epochs and return the new current epoch."""
        self.chain.advance_epochs(epochs)
        return self.current_epoch()

    def start_next_epoch(self) -> int:
        """Move chain time to the first second of the next epoch and return that epoch."""
        epoch = self.chain.deployment.epoch
        now = int(self.admin.client.w3.eth.get_block("latest")["timestamp"])
        into_epoch = (now - epoch.genesis) % epoch.duration
        self.chain.rpc("evm_increaseTime", epoch.duration - into_epoch)
        self.chain.rpc("evm_mine")
        return self.current_epoch()

    # -------------------------------------------------------------- deals

    def deal_params(self, workers: int, *, duration_epochs: int = 0, deposit: str = "1000") -> DealParams:
        usdc = self.developer.usdc
        return DealParams(
            app_cid=cid_to_bytes(compute_cid(b"gas benchmark package")),
            payment_token=usdc.address,
            max_price_per_cu_per_epoch=usdc.parse(PRICE_CAP),
            deposit=usdc.parse(deposit),
            min_workers=workers,
            target_workers=workers,
            duration_epochs=duration_epochs,
        )

    def create_deal(self, workers: int, *, duration_epochs: int = 0, deposit: str = "1000") -> tuple[int, int]:
        """Create a SUBSCRIPTION deal for `workers` workers and return its id and the gas used."""
        params = self.deal_params(workers, duration_epochs=duration_epochs, deposit=deposit)
        return measure(self.developer, lambda: self.developer.deals.create_deal(params))

    def match(self, deal_id: int, providers: Sequence[ProviderAccount]) -> tuple[list[int], int]:
        """Place one worker of the deal on each provider's peer and return the worker ids and the gas used."""
        peer_ids = [provider.peer_id for provider in providers]
        result, gas = measure(self.developer, lambda: self.developer.deals.match_deal(deal_id, peer_ids))
        check(not result.skipped, f"matchDeal of deal {deal_id} skipped peers: {result.skipped}")
        check(len(result.worker_ids) == len(providers), f"matchDeal of deal {deal_id} placed {len(result.worker_ids)} workers")
        return list(result.worker_ids), gas

    # ------------------------------------------------------------- proofs

    def prove(self, provider: ProviderAccount, worker_id: int, epochs: Sequence[int], *, batch_size: int) -> list[int]:
        """Prove `epochs` of the worker in `submitEpochProofs` batches of at most `batch_size` and return each batch's gas."""
        gas_per_batch = []
        for start in range(0, len(epochs), batch_size):
            entries = [proof_entry(worker_id, epoch) for epoch in epochs[start : start + batch_size]]
            _, gas = measure(provider.signer, lambda: provider.signer.deals.submit_epoch_proofs(entries))
            gas_per_batch.append(gas)
        return gas_per_batch


def proof_entry(worker_id: int, epoch: int) -> EpochProofEntry:
    """Return a proof entry with a plausible receipts root, call count and fuel."""
    root = hashlib.sha256(f"receipts of worker {worker_id} in epoch {epoch}".encode()).digest()
    return EpochProofEntry(worker_id=worker_id, epoch=epoch, receipts_root=root, calls=12, usage=4_500_000)


@contextmanager
def gas_market() -> Iterator[GasMarket]:
    """Start anvil, deploy, register the providers and fund the developer, and stop anvil on exit."""
    # No challenge window: the lifecycle has no challenges, a claim costs the
    # same either way, and the scenarios then wait only for the proof window.
    # `make bench-proofs` measures the challenge transactions.
    settings = DeploySettings(
        epoch_duration=EPOCH_SECONDS, proof_window_epochs=PROOF_WINDOW_EPOCHS, challenge_window_epochs=0
    )
    with local_chain(settings) as chain:
        market = GasMarket(
            chain=chain,
            admin=metered_session(chain, ADMIN_ACCOUNT),
            developer=metered_session(chain, DEVELOPER_ACCOUNT),
        )

        for account, signer_account in zip(PROVIDER_ACCOUNTS, SIGNER_ACCOUNTS):
            _register_provider(market, account, signer_account)

        developer = market.developer
        market.admin.fund(developer.address, usdc=developer.usdc.parse("100000"))
        # One approval up front, so that every deal and top-up is a single transaction.
        developer.usdc.approve(developer.deals.address, 2**256 - 1)
        yield market


def _register_provider(market: GasMarket, account: int, signer_account: int) -> None:
    session = metered_session(market.chain, account)
    signer = metered_session(market.chain, signer_account)
    stake = PEER_CUS * market.chain.deployment.collateral_per_cu
    market.admin.fund(session.address, flt=stake)
    session.flt.approve(session.market.address, stake)

    terms = OfferTerms(
        payment_token=session.usdc.address,
        price_per_cu_per_epoch=session.usdc.parse(OFFER_PRICE),
        region=276,
        tier=3,
        sla_bps=9990,
    )
    peers = [PeerSpec(signer=signer.address, cus=PEER_CUS)]
    _, market.setup_gas["register provider"] = measure(session, lambda: session.market.register_provider(f"provider {account}"))
    _, market.setup_gas["stake"] = measure(session, lambda: session.market.stake(stake))
    offer_id, market.setup_gas["create offer (1 peer)"] = measure(session, lambda: session.market.create_offer(terms, peers))

    (peer_id,) = session.market.get_offer(offer_id).peer_ids
    market.providers.append(ProviderAccount(session=session, signer=signer, peer_id=int(peer_id)))
