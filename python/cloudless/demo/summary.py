"""The demo's summary: data for --summary-json and tests, and its rich tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cloudless.chain.tokens import format_units
from cloudless.formatting import format_count

__all__ = ["CallRecord", "DemoSummary", "PlacementRecord", "ProviderRecord", "print_summary"]

USDC_DECIMALS = 6


@dataclass
class PlacementRecord:
    worker_id: int
    peer_id: int
    provider: str
    price_usdc: str  # per CU per epoch
    joined_epoch: int
    epochs_in_deal: int = 0
    epochs_proven: int = 0
    paid_usdc: str = "0"


@dataclass
class CallRecord:
    function: str
    worker_id: int
    http_status: int
    output: str  # compact JSON output, or the error message
    fuel_used: int
    receipt_verified: bool


@dataclass
class ProviderRecord:
    name: str
    address: str
    claimed: int = 0  # USDC base units
    wallet_usdc: int = 0  # USDC base units in the provider's wallet at the end


@dataclass
class VerifierRecord:
    proofs_checked: int  # worker epoch proofs whose receipts the verifier read and checked
    calls_reexecuted: int
    findings: int  # faults found: an honest demo has none
    actions: int  # challenges, fraud proofs and reports sent


@dataclass
class DemoSummary:
    deal_id: int
    status: str
    deposit_usdc: str
    claimed_usdc: str
    returned_usdc: str
    withdrawn_usdc: str
    left_in_deal_usdc: str
    contract_usdc: str
    amounts_add_up: bool
    ended: bool
    placements: list[PlacementRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    providers: list[ProviderRecord] = field(default_factory=list)
    verifier: VerifierRecord | None = None

    @property
    def receipts_verified(self) -> int:
        return sum(1 for call in self.calls if call.receipt_verified)

    def write_json(self, path: Path) -> None:
        data = asdict(self)
        data["receipts_verified"] = self.receipts_verified
        path.write_text(json.dumps(data, indent=2) + "\n")


def print_summary(summary: DemoSummary, console: Console) -> None:
    """Render the summary as tables."""
    placements = Table("worker", "peer", "provider", "USDC/CU/epoch", "joined", "epochs", "proven", "paid USDC", title="Placements")
    for placement in summary.placements:
        placements.add_row(
            str(placement.worker_id),
            str(placement.peer_id),
            placement.provider,
            placement.price_usdc,
            str(placement.joined_epoch),
            str(placement.epochs_in_deal),
            str(placement.epochs_proven),
            placement.paid_usdc,
        )
    console.print(placements)

    calls = Table("function", "worker", "HTTP", "fuel", "receipt", "output", title="Calls through the gateway")
    for call in summary.calls:
        calls.add_row(
            call.function,
            str(call.worker_id),
            str(call.http_status),
            f"{call.fuel_used:,}",
            "verified" if call.receipt_verified else "-",
            _shorten(call.output),
        )
    console.print(calls)

    providers = Table("provider", "address", "claimed USDC", "wallet USDC", title="Providers")
    for provider in summary.providers:
        providers.add_row(
            provider.name,
            provider.address,
            format_units(provider.claimed, USDC_DECIMALS),
            format_units(provider.wallet_usdc, USDC_DECIMALS),
        )
    console.print(providers)

    console.print(
        f"deal {summary.deal_id}: status {summary.status}; deposited {summary.deposit_usdc} USDC = "
        f"claimed {summary.claimed_usdc} + withdrawn by the developer {summary.withdrawn_usdc} "
        f"+ left in the deal {summary.left_in_deal_usdc} (unproven epochs returned: {summary.returned_usdc})"
    )
    console.print(f"receipts verified: {summary.receipts_verified} of {format_count(len(summary.calls), 'call')}")
    if summary.verifier is not None:
        record = summary.verifier
        console.print(
            f"verifier: {format_count(record.proofs_checked, 'epoch proof')} checked, "
            f"{format_count(record.calls_reexecuted, 'call')} re-executed, "
            f"{format_count(record.findings, 'fault')} found, {format_count(record.actions, 'action')} taken"
        )
    verdict = "[green]amounts add up[/green]" if summary.amounts_add_up else "[red]amounts do NOT add up[/red]"
    console.print(verdict)


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
