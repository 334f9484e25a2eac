"""The transactions that the gas benchmark measures, one function per table.

Each function moves chain time to the start of a fresh epoch and creates its
own deals. It checks that every step did what it should (workers placed,
epochs proven and paid), so a wrong number raises BenchError instead of
landing in a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudless.chain import ClaimResult
from gas_market import PROOF_WINDOW_EPOCHS, BenchError, GasMarket, check, measure, proof_entry

Report = Callable[[str], None]

# Epochs of the reference lifecycle and of the single-operation deals.
LIFECYCLE_EPOCHS = 10
LIFECYCLE_DEPOSIT = "10"  # USDC: 3 workers x 10 epochs x 0.2 USDC, plus 4 USDC left to withdraw
SCALING_EPOCHS = (1, 10, 100)
PROOF_BATCH_SIZE = 25


@dataclass(frozen=True)
class Measurement:
    """Gas of one transaction, and how many workers or epochs it covered."""

    operation: str
    gas: int
    units: int = 1
    unit: str = ""  # "worker" or "epoch" when the transaction covers several
    note: str = ""

    @property
    def per_unit(self) -> float:
        return self.gas / self.units


def measure_operations(market: GasMarket, report: Report) -> list[Measurement]:
    """Measure each user-facing transaction once (provider set-up comes from `gas_market`)."""
    first, second, third = market.providers
    rows = [Measurement(name, gas, note="third provider") for name, gas in market.setup_gas.items()]

    report("create and match deals")
    start = market.start_next_epoch()
    single_deal, _ = market.create_deal(1)
    triple_deal, create_gas = market.create_deal(3)
    rows.append(Measurement("create deal", create_gas, note="3 target workers, open-ended"))
    (single_worker,), match_one_gas = market.match(single_deal, [first])
    triple_workers, match_three_gas = market.match(triple_deal, [first, second, third])
    rows.append(Measurement("matchDeal, 1 worker placed", match_one_gas, 1, "worker"))
    rows.append(Measurement("matchDeal, 3 workers placed", match_three_gas, 3, "worker", "one per provider"))

    report("prove 10 epochs")
    epochs = list(range(start, start + LIFECYCLE_EPOCHS))
    market.advance_epochs(LIFECYCLE_EPOCHS)
    entry = proof_entry(single_worker, start)
    signer = first.signer
    _, single_proof_gas = measure(
        signer,
        lambda: signer.deals.submit_epoch_proof(single_worker, start, entry.receipts_root, entry.calls, entry.usage),
    )
    rows.append(Measurement("submitEpochProof, 1 epoch", single_proof_gas))
    (batch_gas,) = market.prove(first, triple_workers[0], epochs, batch_size=LIFECYCLE_EPOCHS)
    rows.append(Measurement("submitEpochProofs, 10 epochs", batch_gas, LIFECYCLE_EPOCHS, "epoch"))
    market.prove(first, single_worker, epochs[1:], batch_size=LIFECYCLE_EPOCHS)
    for provider, worker_id in zip((second, third), triple_workers[1:]):
        market.prove(provider, worker_id, epochs, batch_size=LIFECYCLE_EPOCHS)

    report("top up and withdraw")
    developer = market.developer
    _, deposit_gas = measure(developer, lambda: developer.deals.deposit(single_deal, developer.usdc.parse("10")))
    rows.append(Measurement("top-up (deposit)", deposit_gas, note="settles 10 epochs first"))
    _, withdraw_gas = measure(developer, lambda: developer.deals.withdraw(single_deal, developer.usdc.parse("5")))
    rows.append(Measurement("withdraw", withdraw_gas, note="same epoch as the top-up"))

    report("claim 10 epochs")
    market.advance_epochs(PROOF_WINDOW_EPOCHS)
    provider = first.session
    claim, claim_gas = measure(provider, lambda: provider.deals.claim(single_worker, start + LIFECYCLE_EPOCHS))
    check(claim.proven_epochs == LIFECYCLE_EPOCHS, f"claim paid {claim.proven_epochs} proven epochs, expected 10")
    rows.append(Measurement("claim, 10 epochs", claim_gas, LIFECYCLE_EPOCHS, "epoch", "settles the deal first"))
    for index, (account, worker_id) in enumerate(zip(market.providers, triple_workers)):
        session = account.session
        results, gas = measure(session, lambda: session.deals.claim_and_withdraw([worker_id]))
        _check_claims(results, [worker_id], LIFECYCLE_EPOCHS)
        if index == 0:
            rows.append(
                Measurement(
                    "claimAndWithdraw, 1 worker, 10 epochs",
                    gas,
                    LIFECYCLE_EPOCHS,
                    "epoch",
                    "settles the deal, provider's first USDC",
                )
            )

    report("stop deals")
    _, stop_one_gas = measure(developer, lambda: developer.deals.stop_deal(single_deal))
    _, stop_three_gas = measure(developer, lambda: developer.deals.stop_deal(triple_deal))
    rows.append(Measurement("stopDeal, 1 active worker", stop_one_gas, 1, "worker"))
    rows.append(Measurement("stopDeal, 3 active workers", stop_three_gas, 3, "worker"))
    return rows


def measure_one_peer_many_workers(market: GasMarket, report: Report) -> list[Measurement]:
    """Measure one proof batch and one claimAndWithdraw that cover 3 workers of one peer, in 3 deals."""
    provider = market.providers[0]
    report("one peer, 3 workers: create and match")
    start = market.start_next_epoch()
    worker_ids = []
    for _ in range(3):
        deal_id, _ = market.create_deal(1)
        (worker_id,), _ = market.match(deal_id, [provider])
        worker_ids.append(worker_id)

    report("one peer, 3 workers: prove")
    market.advance_epochs(LIFECYCLE_EPOCHS)
    entries = [proof_entry(worker_id, start + offset) for worker_id in worker_ids for offset in range(LIFECYCLE_EPOCHS)]
    signer = provider.signer
    _, proof_gas = measure(signer, lambda: signer.deals.submit_epoch_proofs(entries))

    report("one peer, 3 workers: claim")
    market.advance_epochs(PROOF_WINDOW_EPOCHS)
    session = provider.session
    results, claim_gas = measure(session, lambda: session.deals.claim_and_withdraw(worker_ids))
    _check_claims(results, worker_ids, LIFECYCLE_EPOCHS)
    epochs = len(entries)
    return [
        Measurement("submitEpochProofs, 3 workers x 10 epochs", proof_gas, epochs, "epoch", "one peer, 3 deals"),
        Measurement("claimAndWithdraw, 3 workers x 10 epochs", claim_gas, epochs, "epoch", "settles the 3 deals"),
    ]


def measure_lifecycle(market: GasMarket, report: Report) -> list[Measurement]:
    """Run the reference lifecycle: 3 workers on 3 providers for 10 epochs, every epoch proven and claimed."""
    developer = market.developer
    usdc = developer.usdc

    report("lifecycle: create and match")
    start = market.start_next_epoch()
    deal_id, create_gas = market.create_deal(3, duration_epochs=LIFECYCLE_EPOCHS, deposit=LIFECYCLE_DEPOSIT)
    worker_ids, match_gas = market.match(deal_id, market.providers)
    for worker_id in worker_ids:
        joined = developer.deals.get_worker(worker_id).joined_epoch
        check(joined == start, f"worker {worker_id} joined in epoch {joined}, not in the deal's first epoch {start}")
    steps = [Measurement("createDeal", create_gas), Measurement("matchDeal, 3 workers", match_gas, 3, "worker")]

    report("lifecycle: prove")
    market.advance_epochs(LIFECYCLE_EPOCHS)
    epochs = list(range(start, start + LIFECYCLE_EPOCHS))
    for number, (provider, worker_id) in enumerate(zip(market.providers, worker_ids), start=1):
        (gas,) = market.prove(provider, worker_id, epochs, batch_size=LIFECYCLE_EPOCHS)
        steps.append(Measurement(f"submitEpochProofs, peer {number}", gas, LIFECYCLE_EPOCHS, "epoch"))

    report("lifecycle: claim and withdraw")
    market.advance_epochs(PROOF_WINDOW_EPOCHS)
    for number, (provider, worker_id) in enumerate(zip(market.providers, worker_ids), start=1):
        session = provider.session
        results, gas = measure(session, lambda: session.deals.claim_and_withdraw([worker_id]))
        _check_claims(results, [worker_id], LIFECYCLE_EPOCHS)
        steps.append(Measurement(f"claimAndWithdraw, provider {number}", gas, LIFECYCLE_EPOCHS, "epoch"))

    remainder = developer.deals.withdrawable(deal_id)
    expected = usdc.parse(LIFECYCLE_DEPOSIT) - 3 * LIFECYCLE_EPOCHS * usdc.parse("0.2")
    check(remainder == expected, f"the owner can withdraw {remainder} base units, expected {expected}")
    _, withdraw_gas = measure(developer, lambda: developer.deals.withdraw(deal_id, remainder))
    steps.append(Measurement("withdraw of the remainder", withdraw_gas))
    return steps


def measure_idle_settlement(market: GasMarket, report: Report) -> dict[int, int]:
    """Return the gas of a top-up that settles N idle epochs, for N = 0 and each of SCALING_EPOCHS."""
    report("settlement after idle epochs")
    market.start_next_epoch()
    deal_id, _ = market.create_deal(1)
    market.match(deal_id, market.providers[:1])
    developer = market.developer
    amount = developer.usdc.parse("1")

    gas_by_epochs = {}
    for idle_epochs in (0, *SCALING_EPOCHS):
        market.advance_epochs(idle_epochs)
        before = developer.deals.get_deal(deal_id).settled_epoch
        _, gas_by_epochs[idle_epochs] = measure(developer, lambda: developer.deals.deposit(deal_id, amount))
        settled = developer.deals.get_deal(deal_id).settled_epoch - before
        check(settled == idle_epochs, f"the top-up settled {settled} epochs, expected {idle_epochs}")
    return gas_by_epochs


def measure_claim_scaling(market: GasMarket, report: Report) -> dict[int, int]:
    """Return the gas of a `claim` of N proven epochs for each N in SCALING_EPOCHS.

    Each N has its own deal and worker on the first provider's peer, so every
    claim starts from the same state: the deal is settled by the claim itself
    and the provider's earnings slot is already non-zero.
    """
    provider = market.providers[0]
    report("claim scaling: create deals")
    start = market.start_next_epoch()
    workers = {}
    for epochs in SCALING_EPOCHS:
        deal_id, _ = market.create_deal(1)
        (workers[epochs],), _ = market.match(deal_id, [provider])

    longest = max(SCALING_EPOCHS)
    market.advance_epochs(longest)
    for epochs, worker_id in workers.items():
        report(f"claim scaling: prove {epochs} epochs")
        market.prove(provider, worker_id, list(range(start, start + epochs)), batch_size=PROOF_BATCH_SIZE)

    market.advance_epochs(PROOF_WINDOW_EPOCHS)
    session = provider.session
    gas_by_epochs = {}
    for epochs, worker_id in workers.items():
        report(f"claim scaling: claim {epochs} epochs")
        claim, gas_by_epochs[epochs] = measure(session, lambda: session.deals.claim(worker_id, start + epochs))
        check(claim.proven_epochs == epochs, f"claim paid {claim.proven_epochs} proven epochs, expected {epochs}")
    return gas_by_epochs


def check_scaling(idle_settlement: dict[int, int], claim_gas: dict[int, int]) -> None:
    """Raise BenchError when settlement cost grows with idle epochs or claim cost grows faster than linearly."""
    settled = [idle_settlement[epochs] for epochs in SCALING_EPOCHS]
    if max(settled) > 1.05 * min(settled):
        raise BenchError(f"settlement gas is not flat over {SCALING_EPOCHS} idle epochs: {settled}")
    per_epoch = [claim_gas[epochs] / epochs for epochs in SCALING_EPOCHS]
    if any(later > earlier for earlier, later in zip(per_epoch, per_epoch[1:])):
        raise BenchError(f"claim gas per epoch grows with the epochs claimed: {per_epoch}")


def _check_claims(results: list[ClaimResult], worker_ids: list[int], epochs: int) -> None:
    claimed = [result.worker_id for result in results]
    check(claimed == worker_ids, f"claimAndWithdraw claimed workers {claimed}, expected {worker_ids}")
    for result in results:
        check(result.proven_epochs == epochs, f"worker {result.worker_id}: {result.proven_epochs} proven epochs paid, expected {epochs}")
