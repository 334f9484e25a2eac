"""Python views of the contracts' structs and enums (names follow the Solidity ones)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = [
    "AccessMode",
    "BillingMode",
    "Deal",
    "DealParams",
    "DealStatus",
    "EpochProof",
    "EpochProofEntry",
    "Offer",
    "OfferTerms",
    "Peer",
    "PeerSpec",
    "ProofBatch",
    "Provider",
    "SkipReason",
    "Worker",
    "FUEL_PER_MEGAFUEL",
    "MAX_PROVIDERS",
    "MAX_REGIONS",
    "MAX_TARGET_WORKERS",
    "OPEN_ENDED_EPOCH",
]

# Fuel per unit of a deal's `usagePricePerMegafuel`.
FUEL_PER_MEGAFUEL = 1_000_000

# Limits of `createDeal`, as the DealManager's constants set them.
MAX_TARGET_WORKERS = 100
MAX_REGIONS = 32
MAX_PROVIDERS = 64

# `endEpoch` and `leftEpoch` of something that has not ended: type(uint64).max.
OPEN_ENDED_EPOCH = 2**64 - 1


class BillingMode(IntEnum):
    SUBSCRIPTION = 0
    USAGE = 1


class AccessMode(IntEnum):
    NONE = 0
    ALLOW_LIST = 1
    DENY_LIST = 2


class DealStatus(IntEnum):
    ACTIVE = 0
    NOT_ENOUGH_WORKERS = 1
    INSUFFICIENT_FUNDS = 2
    ENDED = 3


class SkipReason(IntEnum):
    NONE = 0
    NO_FREE_SLOT = 1
    PEER_NOT_FOUND = 2
    OFFER_PAUSED = 3
    TOKEN_MISMATCH = 4
    PRICE_ABOVE_CAP = 5
    REGION_NOT_ALLOWED = 6
    TIER_TOO_LOW = 7
    SLA_TOO_LOW = 8
    PROVIDER_NOT_ALLOWED = 9
    NOT_ENOUGH_CUS = 10
    PEER_ALREADY_IN_DEAL = 11
    PROVIDER_LIMIT = 12
    INSUFFICIENT_STAKE = 13
    INSUFFICIENT_FUNDS = 14


@dataclass(frozen=True)
class OfferTerms:
    payment_token: str
    price_per_cu_per_epoch: int  # payment-token base units
    region: int
    tier: int
    sla_bps: int
    vcpu_per_cu: int = 1
    ram_mb_per_cu: int = 2048

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.payment_token,
            self.price_per_cu_per_epoch,
            self.region,
            self.tier,
            self.sla_bps,
            self.vcpu_per_cu,
            self.ram_mb_per_cu,
        )

    @classmethod
    def from_chain(cls, raw: Any) -> OfferTerms:
        return cls(
            payment_token=raw.paymentToken,
            price_per_cu_per_epoch=raw.pricePerCuPerEpoch,
            region=raw.region,
            tier=raw.tier,
            sla_bps=raw.slaBps,
            vcpu_per_cu=raw.vcpuPerCu,
            ram_mb_per_cu=raw.ramMbPerCu,
        )


@dataclass(frozen=True)
class PeerSpec:
    signer: str
    cus: int

    def as_tuple(self) -> tuple[str, int]:
        return (self.signer, self.cus)


@dataclass(frozen=True)
class Provider:
    address: str
    registered: bool
    name: str
    stake: int
    unbonding: int
    unbonding_end: int
    total_cus: int


@dataclass(frozen=True)
class Offer:
    offer_id: int
    provider: str
    terms: OfferTerms
    paused: bool
    peer_ids: tuple[int, ...]


@dataclass(frozen=True)
class Peer:
    peer_id: int
    offer_id: int
    signer: str
    total_cus: int
    free_cus: int
    removed: bool


@dataclass(frozen=True)
class DealParams:
    """Arguments of `createDeal`, with amounts in payment-token base units."""

    app_cid: bytes
    payment_token: str
    max_price_per_cu_per_epoch: int
    deposit: int
    cu_per_worker: int = 1
    min_workers: int = 1
    target_workers: int = 1
    max_workers_per_provider: int = 1
    duration_epochs: int = 0
    regions: tuple[int, ...] = ()
    min_tier: int = 0
    min_sla_bps: int = 0
    access_mode: AccessMode = AccessMode.NONE
    providers: tuple[str, ...] = ()
    billing_mode: BillingMode = BillingMode.SUBSCRIPTION
    usage_price_per_megafuel: int = 0  # USAGE only: base units per 10**6 fuel
    max_usage_per_worker_epoch: int = 0  # USAGE only: fuel billed at most per worker and epoch

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.app_cid,
            self.payment_token,
            self.max_price_per_cu_per_epoch,
            self.cu_per_worker,
            self.min_workers,
            self.target_workers,
            self.max_workers_per_provider,
            self.duration_epochs,
            list(self.regions),
            self.min_tier,
            self.min_sla_bps,
            int(self.access_mode),
            list(self.providers),
            int(self.billing_mode),
            self.usage_price_per_megafuel,
            self.max_usage_per_worker_epoch,
            self.deposit,
        )

    def reserve(self, min_deposited_epochs: int) -> int:
        """Return the least deposit that `createDeal` accepts, in base units.

        It covers `reserve_epochs` epochs of every target worker at `max_worker_rate`,
        as the DealManager's `_reserve` computes it for a new deal.
        """
        return self.reserve_epochs(min_deposited_epochs) * self.target_workers * self.max_worker_rate

    def reserve_epochs(self, min_deposited_epochs: int) -> int:
        """Return the epochs that the reserve covers: `min_deposited_epochs`, or the duration if that is shorter."""
        return min(min_deposited_epochs, self.duration_epochs) if self.duration_epochs else min_deposited_epochs

    @property
    def max_worker_rate(self) -> int:
        """Maximum cost of one worker per epoch, in base units: the price cap times its CUs plus the usage cap at the usage price."""
        usage_per_worker = 0
        if self.billing_mode == BillingMode.USAGE:
            usage_per_worker = self.max_usage_per_worker_epoch * self.usage_price_per_megafuel // FUEL_PER_MEGAFUEL
        return self.max_price_per_cu_per_epoch * self.cu_per_worker + usage_per_worker


@dataclass(frozen=True)
class Deal:
    deal_id: int
    owner: str
    app_cid: bytes
    payment_token: str
    max_price_per_cu_per_epoch: int
    cu_per_worker: int
    min_workers: int
    target_workers: int
    max_workers_per_provider: int
    regions: tuple[int, ...]
    min_tier: int
    min_sla_bps: int
    access_mode: AccessMode
    providers: tuple[str, ...]
    billing_mode: BillingMode
    start_epoch: int
    end_epoch: int
    settled_epoch: int
    stopped: bool
    active_workers: int
    rate_per_epoch: int
    balance: int
    pending: int
    usage_price_per_megafuel: int = 0  # USAGE only
    max_usage_per_worker_epoch: int = 0  # USAGE only
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_chain(cls, deal_id: int, raw: Any) -> Deal:
        return cls(
            deal_id=deal_id,
            owner=raw.owner,
            app_cid=bytes(raw.appCid),
            payment_token=raw.paymentToken,
            max_price_per_cu_per_epoch=raw.maxPricePerCuPerEpoch,
            cu_per_worker=raw.cuPerWorker,
            min_workers=raw.minWorkers,
            target_workers=raw.targetWorkers,
            max_workers_per_provider=raw.maxWorkersPerProvider,
            regions=tuple(raw.regions),
            min_tier=raw.minTier,
            min_sla_bps=raw.minSlaBps,
            access_mode=AccessMode(raw.accessMode),
            providers=tuple(raw.providers),
            billing_mode=BillingMode(raw.billingMode),
            usage_price_per_megafuel=raw.usagePricePerMegafuel,
            max_usage_per_worker_epoch=raw.maxUsagePerWorkerEpoch,
            start_epoch=raw.startEpoch,
            end_epoch=raw.endEpoch,
            settled_epoch=raw.settledEpoch,
            stopped=raw.stopped,
            active_workers=raw.activeWorkers,
            rate_per_epoch=raw.ratePerEpoch,
            balance=raw.balance,
            pending=raw.pending,
        )

    @property
    def usage_reserve_per_worker(self) -> int:
        """Base units a USAGE deal reserves per worker and epoch for metered fuel (0 for subscriptions)."""
        return self.max_usage_per_worker_epoch * self.usage_price_per_megafuel // FUEL_PER_MEGAFUEL


@dataclass(frozen=True)
class Worker:
    worker_id: int
    deal_id: int
    peer_id: int
    provider: str
    price_per_cu_per_epoch: int
    cus: int
    joined_epoch: int
    left_epoch: int
    claimed_until_epoch: int
    active: bool

    @classmethod
    def from_chain(cls, worker_id: int, raw: Any) -> Worker:
        return cls(
            worker_id=worker_id,
            deal_id=raw.dealId,
            peer_id=raw.peerId,
            provider=raw.provider,
            price_per_cu_per_epoch=raw.pricePerCuPerEpoch,
            cus=raw.cus,
            joined_epoch=raw.joinedEpoch,
            left_epoch=raw.leftEpoch,
            claimed_until_epoch=raw.claimedUntilEpoch,
            active=raw.active,
        )

    @property
    def rate_per_epoch(self) -> int:
        return self.price_per_cu_per_epoch * self.cus


@dataclass(frozen=True)
class EpochProof:
    """Stored part of an epoch proof. Roots and call counts are in the `EpochProofsSubmitted` log."""

    proven: bool
    usage: int  # fuel as reported; recorded for USAGE deals only


@dataclass(frozen=True)
class EpochProofEntry:
    """One entry of a `submitEpochProofs` batch."""

    worker_id: int
    epoch: int
    receipts_root: bytes
    calls: int
    usage: int

    def as_tuple(self) -> tuple[int, int, bytes, int, int]:
        return (self.worker_id, self.epoch, self.receipts_root, self.calls, self.usage)


@dataclass(frozen=True)
class ProofBatch:
    """A recorded proof batch and the position of one entry in it: what a challenge names."""

    entries: tuple[EpochProofEntry, ...]
    index: int
    block: int

    @property
    def entry(self) -> EpochProofEntry:
        return self.entries[self.index]

    def as_tuples(self) -> list[tuple[int, int, bytes, int, int]]:
        return [entry.as_tuple() for entry in self.entries]
