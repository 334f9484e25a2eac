"""Provider nodes built to cheat are caught on chain and slashed, and the honest providers of their deals are paid.

Everything is real: anvil, the contracts, ten provider nodes serving HTTP, the
gateway and the verifier. Two nodes are honest. Each of the others runs one
test-only cheat mode of its config (`cheat:`). Every deal allow-lists one
cheater and one or two honest providers, so every scenario has both.

All scenarios share one schedule of epochs (`timeline`), because each needs the
same steps and chain time only moves forward:

    epoch 0   calls, straight to the workers and, for the replicated deal,
              through the gateway; a verifier pass (gateway evidence)
    epoch 1   every node but `skip-proofs` proves epoch 0; a verifier pass
    epoch 2   epoch 1 is proven. The test opens sample challenges against
              `ignore` and one honest worker, then the verifier runs, is
              restarted on its state dir and run once more from an empty
              state dir, and the nodes answer. Later in epoch 2, after every
              answer deadline, a verifier pass resolves unanswered challenges.
    epoch 3   nodes claim epoch 0; a verifier pass (epoch 1's challenge window)
    epoch 4   nodes claim epoch 1; a last verifier pass

The verifier runs once per phase, as `cloudless verifier run` would between
the test's steps. Each test then checks one scenario on chain: the event that
names the cheater's worker and epoch, the slash of its stake, that the named
epoch was not paid, the reporter's bond and reward, and the pay of the honest
workers of the same deal.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cheat_stack import (
    ANSWER_PERIOD,
    CHALLENGER_INDEX,
    EPOCH_SECONDS,
    PROOF_WINDOW,
    VERIFIER_INDEX,
    ChainLogs,
    CheatStack,
    DealSpec,
    ProvenFraud,
    ProviderSpec,
    Slash,
    UpheldChallenge,
    failure_reports,
    start_cheat_stack,
    wait_for,
    wait_until,
)

from cloudless.chain.challenges import ChallengeStatus, Fault
from cloudless.chain.session import Session
from cloudless.chain.types import BillingMode
from cloudless.exceptions import InvalidSignatureError
from cloudless.receipts.eip712 import recover_request_signer
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.verifier import PassReport, Verifier, VerifierConfig

HONEST = ("honest-1", "honest-2")
PROVIDERS = [
    ProviderSpec("honest-1", cus=8),
    ProviderSpec("honest-2", cus=8),
    ProviderSpec("fabricate", ("fabricate_call",)),
    ProviderSpec("inflate", ("inflate_usage",)),
    ProviderSpec("wrong-output", ("wrong_output",)),
    ProviderSpec("skip-proofs", ("skip_proofs",)),
    ProviderSpec("replay-epoch", ("replay_epoch",)),
    ProviderSpec("replay-deal", ("replay_deal",)),
    ProviderSpec("equivocate", ("equivocate",)),
    ProviderSpec("ignore", ("ignore_challenges",)),
]
DEALS = [
    DealSpec("fabricate_call", ("fabricate", "honest-1")),
    DealSpec("inflate_usage", ("inflate", "honest-2"), BillingMode.USAGE),
    DealSpec("wrong_output", ("wrong-output", "honest-1", "honest-2"), replication=3),
    DealSpec("skip_proofs", ("skip-proofs", "honest-1")),
    DealSpec("replay_epoch", ("replay-epoch", "honest-2")),
    # `replay-deal` serves a worker of each: it copies receipts of deal A's requests into its worker of deal B.
    DealSpec("replay_deal_a", ("replay-deal", "honest-1")),
    DealSpec("replay_deal_b", ("replay-deal", "honest-2")),
    DealSpec("equivocate", ("equivocate", "honest-1")),
    DealSpec("ignore_challenges", ("ignore", "honest-2")),
]
CHEATER_OF = {deal.key: deal.providers[0] for deal in DEALS}
CALL_EPOCH = 0
# Calls sent straight to each worker in epoch 0: (deal key, provider, calls).
DIRECT_CALLS = [
    ("fabricate_call", "fabricate", 2),
    ("fabricate_call", "honest-1", 1),
    ("inflate_usage", "inflate", 2),
    ("inflate_usage", "honest-2", 1),
    ("skip_proofs", "skip-proofs", 2),
    ("skip_proofs", "honest-1", 1),
    ("replay_epoch", "replay-epoch", 2),
    ("replay_epoch", "honest-2", 1),
    # Only deal A's worker of `replay-deal` is called; its worker of deal B gets the copy.
    ("replay_deal_a", "replay-deal", 2),
    ("replay_deal_a", "honest-1", 1),
    ("replay_deal_b", "honest-2", 1),
    ("equivocate", "equivocate", 2),
    ("equivocate", "honest-1", 1),
    ("ignore_challenges", "ignore", 2),
    ("ignore_challenges", "honest-2", 1),
]
GATEWAY_CALLS = 2  # on the replicated deal
# Cheaters whose served receipts of epoch 0 the tests compare with the receipt the verifier challenged.
SERVED_EPOCHS = [("fabricate_call", "fabricate"), ("inflate_usage", "inflate"), ("replay_deal_b", "replay-deal")]
VERIFIER_FLT = 500  # whole FLT for bonds
CHALLENGER_FLT = 100
PHASE_TIMEOUT_SECONDS = 45.0

log = logging.getLogger("cloudless.tests")


@dataclass(frozen=True)
class Balances:
    """What the scenarios compare before and after the schedule."""

    stake: dict[str, int]  # provider name -> FLT wei staked in the Market
    usdc: dict[str, int]  # provider name -> USDC base units held
    flt: dict[str, int]  # provider name, "verifier" or "challenger" -> FLT wei held
    slash_rewards: dict[str, int]  # "verifier" or "challenger" -> FLT wei not yet withdrawn


@dataclass
class Timeline:
    """The recorded outcome of the shared schedule."""

    stack: CheatStack
    verifier: Session
    challenger: Session
    before: Balances
    after: Balances | None = None
    gateway_replies: list[httpx.Response] = field(default_factory=list)
    passes: dict[str, PassReport] = field(default_factory=dict)
    challenge_counts: dict[str, int] = field(default_factory=dict)
    test_challenges: dict[str, int] = field(default_factory=dict)  # "ignore" / "honest" -> challenge id
    resolved_by_test: list[int] = field(default_factory=list)
    # (deal key, provider) -> the node's `GET /workers/{id}/epochs/0/receipts` reply, read in epoch 2
    served: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    running_verifier: Verifier | None = None

    @property
    def state_dir(self) -> Path:
        return self.stack.directory / "verifier-state"

    @property
    def logs(self) -> ChainLogs:
        return ChainLogs(self.stack.admin)

    def final(self) -> Balances:
        assert self.after is not None, "the schedule did not finish; see the error of the first test"
        return self.after


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cheat_stack(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[CheatStack]:
    started = time.monotonic()
    with start_cheat_stack(tmp_path_factory.mktemp("cheaters"), PROVIDERS, DEALS) as stack:
        log.info("cheat stack up in %.1f s", time.monotonic() - started)
        with failure_reports(pytestconfig, stack, "cheat_stack"):
            yield stack


@pytest.fixture(scope="module")
def timeline(cheat_stack: CheatStack) -> Iterator[Timeline]:
    stack = cheat_stack
    verifier = stack.chain.session(VERIFIER_INDEX)
    challenger = stack.chain.session(CHALLENGER_INDEX)
    stack.admin.fund(verifier.address, flt=stack.admin.flt.parse(str(VERIFIER_FLT)))
    stack.admin.fund(challenger.address, flt=stack.admin.flt.parse(str(CHALLENGER_FLT)))
    challenger.challenges.approve_bonds(challenger.flt.contract, count=2)

    timeline = Timeline(stack, verifier, challenger, _balances(stack, verifier, challenger))
    phases = [
        ("calls", _epoch_0_calls),
        ("proofs", _epoch_1_proofs),
        ("challenges", _epoch_2_challenges),
        ("deadlines", _epoch_2_after_deadlines),
        ("claims", _epochs_3_and_4_claims),
    ]
    try:
        timeline.running_verifier = _verifier(timeline, timeline.state_dir)
        for name, phase in phases:
            started = time.monotonic()
            log.info("phase %s starts at chain epoch %d", name, stack.current_epoch())
            phase(timeline)
            timeline.seconds[name] = time.monotonic() - started
            log.info("phase %s took %.1f s", name, timeline.seconds[name])
        timeline.after = _balances(stack, verifier, challenger)
        log.info("the schedule took %s", {name: round(seconds, 1) for name, seconds in timeline.seconds.items()})
        yield timeline
    finally:
        if timeline.running_verifier is not None:
            timeline.running_verifier.close()


def _balances(stack: CheatStack, verifier: Session, challenger: Session) -> Balances:
    market = stack.admin.market
    flt = stack.admin.flt
    usdc = stack.admin.usdc
    providers = stack.providers.values()
    accounts = {"verifier": verifier.address, "challenger": challenger.address}
    return Balances(
        stake={running.spec.name: market.get_provider(running.address).stake for running in providers},
        usdc={running.spec.name: usdc.balance_of(running.address) for running in providers},
        flt={
            **{running.spec.name: flt.balance_of(running.address) for running in providers},
            **{name: flt.balance_of(address) for name, address in accounts.items()},
        },
        slash_rewards={name: market.slash_rewards(address) for name, address in accounts.items()},
    )


def _verifier(timeline: Timeline, state_dir: Path) -> Verifier:
    config = VerifierConfig(
        state_dir=state_dir,
        gateways=(timeline.stack.gateway.url,),
        withdraw_rewards=True,
        seed="test-cheaters",
    )
    return Verifier(timeline.verifier, config)


def _verifier_pass(timeline: Timeline, name: str, verifier: Verifier | None = None) -> PassReport:
    """Run one pass of `verifier`, by default the running one, and record its report and the challenge count."""
    chosen = verifier or timeline.running_verifier
    assert chosen is not None
    started = time.monotonic()
    report = chosen.run_once()
    timeline.seconds[f"verifier pass {name}"] = time.monotonic() - started
    timeline.passes[name] = report
    timeline.challenge_counts[name] = timeline.stack.admin.challenges.challenge_count()
    acted = [action.describe() for action in report.actions if action.outcome != "skipped"]
    log.info("verifier pass %s: %d actions not skipped: %s; errors: %s", name, len(acted), acted, report.errors)
    return report


# -------------------------------------------------------------------- phases


def _epoch_0_calls(timeline: Timeline) -> None:
    stack = timeline.stack
    assert stack.current_epoch() == CALL_EPOCH, f"setup ran past epoch {CALL_EPOCH}: {stack.current_epoch()}"
    calls = [(deal_key, provider, index) for deal_key, provider, count in DIRECT_CALLS for index in range(count)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = pool.map(
            lambda call: stack.call_worker(call[0], call[1], "reverse", {"text": f"{call[0]} {call[2]}"}), calls
        )
        for (deal_key, provider, _), reply in zip(calls, replies):
            assert reply.ok, f"call on {provider} in {deal_key} failed: {reply.error}"
    for index in range(GATEWAY_CALLS):
        timeline.gateway_replies.append(stack.call_gateway("wrong_output", "reverse", {"text": f"replicated {index}"}))
    assert stack.current_epoch() == CALL_EPOCH, "the calls ran past epoch 0; the schedule assumes they all land in it"
    _verifier_pass(timeline, "epoch 0")


def _epoch_1_proofs(timeline: Timeline) -> None:
    stack = timeline.stack
    stack.goto(CALL_EPOCH + 1)
    _wait_for_proofs(stack, CALL_EPOCH)
    _verifier_pass(timeline, "epoch 1")


def _epoch_2_challenges(timeline: Timeline) -> None:
    stack = timeline.stack
    stack.goto(CALL_EPOCH + 2)
    _wait_for_proofs(stack, CALL_EPOCH + 1)
    for deal_key, provider in SERVED_EPOCHS:
        timeline.served[(deal_key, provider)] = _served_epoch(stack, deal_key, provider, CALL_EPOCH)

    # The test's own sample challenges go first, so no verifier challenge of the same proof is open.
    challenges = timeline.challenger.challenges
    deals = timeline.challenger.deals
    for name, worker_id in (
        ("ignore", stack.worker("ignore_challenges", "ignore")),
        ("honest", stack.worker("ignore_challenges", "honest-2")),
    ):
        batch = deals.proof_batch(worker_id, CALL_EPOCH)
        assert batch is not None, f"no proof batch of worker {worker_id} epoch {CALL_EPOCH}"
        timeline.test_challenges[name] = challenges.challenge_sample(batch)
    timeline.challenge_counts["test challenges"] = challenges.challenge_count()

    # The verifier challenges the cheaters, then is restarted on the same
    # state dir and started once more on an empty one, all in the window.
    _verifier_pass(timeline, "epoch 2")
    assert timeline.running_verifier is not None
    timeline.running_verifier.close()
    timeline.running_verifier = None  # so that the fixture does not close it twice if the restart fails
    timeline.running_verifier = _verifier(timeline, timeline.state_dir)
    _verifier_pass(timeline, "restart")
    with _verifier(timeline, stack.directory / "verifier-empty-state") as fresh:
        _verifier_pass(timeline, "empty state", fresh)

    honest_id = timeline.test_challenges["honest"]
    wait_for(
        lambda: challenges.get_challenge(honest_id).status == ChallengeStatus.ANSWERED,
        f"honest-2 to answer the test's challenge {honest_id}",
        PHASE_TIMEOUT_SECONDS,
    )
    ignored = stack.providers["ignore"].address

    def unsettled() -> list[int]:
        return [
            challenge.challenge_id
            for challenge in challenges.opened_challenges()
            if challenge.status == ChallengeStatus.OPEN and challenge.provider != ignored
        ]

    # A node that does not answer leaves its challenge to the deadline, which a scenario may accept.
    if not wait_until(lambda: not unsettled(), PHASE_TIMEOUT_SECONDS):
        log.warning("challenges %s are still open after %.0f s; they wait for the deadline", unsettled(), PHASE_TIMEOUT_SECONDS)


def _epoch_2_after_deadlines(timeline: Timeline) -> None:
    stack = timeline.stack
    challenges = timeline.challenger.challenges
    # Challenges open until ANSWER_PERIOD seconds before epoch 3, and each
    # deadline is ANSWER_PERIOD seconds after its opening.
    latest_deadline = max(challenge.deadline for challenge in challenges.opened_challenges())
    offset = latest_deadline + 5 - stack.epoch_start(CALL_EPOCH + 2)
    assert offset < stack.epoch_start(CALL_EPOCH + 3) - stack.epoch_start(CALL_EPOCH + 2), (
        f"the last answer deadline {latest_deadline} is not inside epoch {CALL_EPOCH + 2}"
    )
    stack.goto(CALL_EPOCH + 2, max(offset, ANSWER_PERIOD + 5))
    _verifier_pass(timeline, "after deadlines")
    for challenge in challenges.opened_challenges():
        if challenge.status == ChallengeStatus.OPEN:
            log.warning("the verifier left challenge %d open after its deadline; the test resolves it", challenge.challenge_id)
            challenges.resolve_unanswered(challenge.challenge_id)
            timeline.resolved_by_test.append(challenge.challenge_id)


def _epochs_3_and_4_claims(timeline: Timeline) -> None:
    stack = timeline.stack
    for epoch in (CALL_EPOCH + 3, CALL_EPOCH + 4):
        stack.goto(epoch)
        # A node may claim before it proves the epoch that just ended, in the
        # same loop round. So wait for those proofs before time jumps past their window.
        _wait_for_proofs(stack, epoch - 1)
        _verifier_pass(timeline, f"epoch {epoch}")
        claimed = epoch - 3  # claims of epoch e open in epoch e + proof window + challenge window + 1
        _wait_for_claims(timeline, claimed)
    honest = [stack.providers[name].address for name in HONEST]
    usdc = stack.admin.usdc
    deals = stack.admin.deals
    wait_for(
        lambda: all(deals.earnings(address, usdc.address) == 0 for address in honest),
        "the honest nodes to withdraw their earnings",
        PHASE_TIMEOUT_SECONDS,
    )


def _wait_for_proofs(stack: CheatStack, epoch: int) -> None:
    deals = stack.admin.deals
    expected = {worker_id for (_, provider), worker_id in stack.workers.items() if provider != "skip-proofs"}

    def missing() -> list[int]:
        return sorted(worker_id for worker_id in expected if not deals.get_epoch_proof(worker_id, epoch).proven)

    wait_for(lambda: not missing(), lambda: f"proofs of epoch {epoch}, still missing for workers {missing()}", PHASE_TIMEOUT_SECONDS)


def _wait_for_claims(timeline: Timeline, epoch: int) -> None:
    logs = timeline.logs
    workers = sorted(timeline.stack.workers.values())

    def unclaimed() -> list[int]:
        return [worker_id for worker_id in workers if logs.claim_of(worker_id, epoch) is None]

    wait_for(lambda: not unclaimed(), lambda: f"claims of epoch {epoch}, still missing for workers {unclaimed()}", PHASE_TIMEOUT_SECONDS)


def _served_epoch(stack: CheatStack, deal_key: str, provider: str, epoch: int) -> dict[str, Any]:
    worker_id = stack.worker(deal_key, provider)
    url = f"{stack.providers[provider].url}/workers/{worker_id}/epochs/{epoch}/receipts"
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, f"GET {url} returned {response.status_code}: {response.text[:300]}"
    return dict(response.json())


# ---------------------------------------------------------------- assertions


def _upheld(timeline: Timeline, worker_id: int, faults: tuple[Fault, ...]) -> UpheldChallenge:
    events = timeline.logs.upheld(worker_id)
    matching = [event for event in events if event.fault in faults]
    assert matching, f"no ChallengeUpheld of worker {worker_id} with fault {[fault.name for fault in faults]}; upheld: {events}"
    return matching[0]


def _fraud(timeline: Timeline, worker_id: int, fault: Fault) -> ProvenFraud:
    events = timeline.logs.frauds(worker_id)
    matching = [event for event in events if event.fault == fault]
    assert matching, f"no FraudProven of worker {worker_id} with fault {fault.name}; proven: {events}"
    return matching[0]


def _slash_of(timeline: Timeline, reason: bytes) -> Slash:
    slashes = [slash for slash in timeline.logs.slashes() if slash.reason == reason]
    assert len(slashes) == 1, f"expected one ProviderSlashed with reason 0x{reason.hex()}, got {slashes}"
    return slashes[0]


def _challenged_leaf(timeline: Timeline, deal_key: str, challenge_id: int) -> dict[str, Any]:
    """Return the served leaf (receipt, request, input, opening) that a RECEIPT challenge names."""
    stack = timeline.stack
    challenge = stack.admin.challenges.get_challenge(challenge_id)
    served = timeline.served[(deal_key, CHEATER_OF[deal_key])]
    leaves = [
        leaf for leaf in served["receipts"] if SignedReceipt.from_dict(leaf["receipt"]).digest(stack.domain) == challenge.receipt_digest
    ]
    assert len(leaves) == 1, f"challenge {challenge_id} names receipt 0x{challenge.receipt_digest.hex()}, not one of {served}"
    return dict(leaves[0])


def _caller_signed(stack: CheatStack, request: SignedCallRequest) -> bool:
    try:
        recover_request_signer(request.to_request(), request.signature, stack.domain)
    except InvalidSignatureError:
        return False
    return True


def _challenge_reason(challenge_id: int) -> bytes:
    return challenge_id.to_bytes(32, "big")


def _reporter_share(timeline: Timeline, amount: int) -> int:
    market = timeline.stack.admin.market
    bps = int(market.client.call(market.contract.functions.slashReporterShareBps()))
    return amount * bps // 10_000


def assert_stake_slashed(timeline: Timeline, provider: str, slash: Slash, amount: int) -> None:
    """Check that the slash took `amount` from `provider` and that its stake fell by exactly the sum of its slashes."""
    address = timeline.stack.providers[provider].address
    assert slash.provider == address, f"slash {slash} is not of {provider} ({address})"
    assert slash.amount == amount
    all_slashes = timeline.logs.slashes(address)
    dropped = timeline.before.stake[provider] - timeline.final().stake[provider]
    assert dropped == sum(item.amount for item in all_slashes), f"stake of {provider} fell by {dropped}; slashes: {all_slashes}"


def assert_epoch_not_paid(timeline: Timeline, worker_id: int, epoch: int, transaction: bytes) -> None:
    """Check that the cheater's claim of `epoch`, which the event in `transaction` names, returned its pay to the deal."""
    stack = timeline.stack
    proof = stack.admin.deals.get_epoch_proof(worker_id, epoch)
    mined_in = _mined_epoch(stack, transaction)
    assert not proof.proven, (
        f"epoch {epoch} of worker {worker_id} is still proven, so the cheater was paid for it. The event that names "
        f"it was mined in epoch {mined_in}; up to epoch {epoch + PROOF_WINDOW} the epoch's proof window is open, and "
        "there the ChallengeManager slashes without forfeiting the epoch"
    )
    claim = timeline.logs.claim_of(worker_id, epoch)
    assert claim is not None, f"no claim of worker {worker_id} covers epoch {epoch}"
    assert claim.proven_epochs < claim.to_epoch - claim.from_epoch, f"claim {claim} paid every epoch"
    assert claim.returned > 0, f"claim {claim} returned nothing to the deal"
    if claim.to_epoch - claim.from_epoch == 1:
        assert claim.paid == 0, f"claim {claim} of the forfeited epoch alone paid something"


def _mined_time(stack: CheatStack, transaction: bytes) -> int:
    """Return the timestamp of the block that mined `transaction`, in unix seconds."""
    w3 = stack.admin.client.w3
    return int(w3.eth.get_block(w3.eth.get_transaction_receipt(transaction)["blockNumber"])["timestamp"])


def _mined_epoch(stack: CheatStack, transaction: bytes) -> int:
    return (_mined_time(stack, transaction) - stack.epoch_start(0)) // EPOCH_SECONDS


def assert_reporter_rewarded(timeline: Timeline, slash: Slash, reporter: str) -> None:
    """Check that the Market credited the slash's reporter share to `reporter` ("verifier" or "challenger")."""
    session = timeline.verifier if reporter == "verifier" else timeline.challenger
    assert slash.reporter == session.address, f"slash {slash} credits {slash.reporter}, not the {reporter}"
    assert slash.reporter_share == _reporter_share(timeline, slash.amount)
    assert slash.reporter_share > 0


def assert_bond_returned(timeline: Timeline, upheld: UpheldChallenge, challenger: Session) -> None:
    """Check that the transaction that upheld the challenge sent the bond back to the challenger."""
    manager = timeline.stack.admin.challenges
    bond = manager.get_challenge(upheld.challenge_id).bond
    transfers = timeline.logs.flt_transfers(upheld.transaction, manager.address)
    assert (challenger.address, bond) in transfers, f"bond {bond} not returned to {challenger.address}: {transfers}"


def assert_honest_paid(timeline: Timeline, deal_key: str, epoch: int = CALL_EPOCH) -> None:
    """Check that every honest worker of the deal was paid in full for `epoch` and that its provider received USDC."""
    stack = timeline.stack
    deals = stack.admin.deals
    usage_billed = deals.get_deal(stack.deals[deal_key]).billing_mode == BillingMode.USAGE
    honest = [provider for provider in HONEST if (deal_key, provider) in stack.workers]
    assert honest, f"deal {deal_key} has no honest worker"
    for provider in honest:
        worker_id = stack.worker(deal_key, provider)
        worker = deals.get_worker(worker_id)
        claim = timeline.logs.claim_of(worker_id, epoch)
        assert claim is not None, f"honest worker {worker_id} of {deal_key} never claimed epoch {epoch}"
        epochs = claim.to_epoch - claim.from_epoch
        assert claim.proven_epochs == epochs, f"claim {claim} of {provider} lost an epoch"
        if usage_billed:
            # The base rate plus metered fuel; the unused usage reserve goes back to the deal.
            assert claim.paid > worker.rate_per_epoch * epochs, f"claim {claim} paid no fuel"
            assert claim.paid + claim.returned == deals.worker_epoch_rate(worker_id) * epochs
        else:
            assert claim.paid == worker.rate_per_epoch * epochs, f"claim {claim} is not the full rate"
            assert claim.returned == 0
        assert timeline.final().usdc[provider] > timeline.before.usdc[provider]


def assert_challenge_caught(
    timeline: Timeline, deal_key: str, faults: tuple[Fault, ...], challenger: str = "verifier"
) -> UpheldChallenge:
    """Check a cheater caught by an upheld challenge and return the event."""
    stack = timeline.stack
    cheater = CHEATER_OF[deal_key]
    worker_id = stack.worker(deal_key, cheater)
    upheld = _upheld(timeline, worker_id, faults)
    session = timeline.verifier if challenger == "verifier" else timeline.challenger
    challenge = stack.admin.challenges.get_challenge(upheld.challenge_id)

    assert upheld.epoch == CALL_EPOCH
    assert challenge.challenger == session.address, f"challenge {challenge} was not opened by the {challenger}"
    assert challenge.status == ChallengeStatus.UPHELD
    slash = _slash_of(timeline, _challenge_reason(upheld.challenge_id))
    parameters = stack.admin.challenges.parameters()
    assert_stake_slashed(timeline, cheater, slash, parameters.slash_amount)
    assert_epoch_not_paid(timeline, worker_id, upheld.epoch, upheld.transaction)
    assert_reporter_rewarded(timeline, slash, challenger)
    assert_bond_returned(timeline, upheld, session)
    assert_honest_paid(timeline, deal_key)
    return upheld


def assert_fraud_caught(timeline: Timeline, deal_key: str, fault: Fault, amount: int | None = None) -> ProvenFraud:
    """Check a cheater caught by a fraud proof from the verifier and return the event."""
    stack = timeline.stack
    cheater = CHEATER_OF[deal_key]
    worker_id = stack.worker(deal_key, cheater)
    fraud = _fraud(timeline, worker_id, fault)
    parameters = stack.admin.challenges.parameters()

    assert fraud.reporter == timeline.verifier.address
    assert fraud.provider == stack.providers[cheater].address
    slash = _slash_of(timeline, fraud.fraud_key)
    assert_stake_slashed(timeline, cheater, slash, parameters.slash_amount if amount is None else amount)
    assert fraud.slashed == slash.amount
    assert_epoch_not_paid(timeline, worker_id, fraud.epoch, fraud.transaction)
    assert_reporter_rewarded(timeline, slash, "verifier")
    assert_honest_paid(timeline, deal_key)
    return fraud


# --------------------------------------------------------------------- tests


def test_fabricated_call_slashed(timeline: Timeline) -> None:
    upheld = assert_challenge_caught(timeline, "fabricate_call", (Fault.BAD_CALLER_SIGNATURE, Fault.UNANSWERED))

    stack = timeline.stack
    challenge = stack.admin.challenges.get_challenge(upheld.challenge_id)
    signer = stack.providers["fabricate"].signer
    sender = stack.admin.client.w3.eth.get_transaction(upheld.transaction)["from"]
    log.info("fabricate_call was upheld with %s by a transaction from %s", upheld.fault.name, sender)
    assert challenge.kind.name == "RECEIPT", "the verifier should name the fabricated receipt, not sample a leaf"
    leaf = _challenged_leaf(timeline, "fabricate_call", upheld.challenge_id)
    assert not _caller_signed(stack, SignedCallRequest.from_dict(leaf["request"])), f"leaf {leaf} has a caller signature"
    if upheld.fault == Fault.BAD_CALLER_SIGNATURE:
        # The node answered, and its answer opened the request that no caller signed.
        assert sender == signer, f"BAD_CALLER_SIGNATURE came from {sender}, not from the cheater's signer {signer}"
    else:
        # The node did not answer, so the challenge was resolved after its deadline.
        assert _mined_time(stack, upheld.transaction) > challenge.deadline


def test_inflated_usage_slashed(timeline: Timeline) -> None:
    upheld = assert_challenge_caught(timeline, "inflate_usage", (Fault.USAGE_MISMATCH,))

    stack = timeline.stack
    challenge = stack.admin.challenges.get_challenge(upheld.challenge_id)
    served = timeline.served[("inflate_usage", "inflate")]
    fuel = sum(SignedReceipt.from_dict(leaf["receipt"]).fuel_used for leaf in served["receipts"])
    assert stack.admin.deals.get_deal(stack.deals["inflate_usage"]).billing_mode == BillingMode.USAGE
    assert challenge.kind.name == "RECEIPT"
    assert challenge.usage > fuel, f"the proof claims {challenge.usage} fuel, the receipts add up to {fuel}"
    # The last receipt's running total ends below the proof's usage, which is what the challenge shows.
    leaf = _challenged_leaf(timeline, "inflate_usage", upheld.challenge_id)
    assert leaf["index"] == len(served["receipts"]) - 1


def test_wrong_output_outvoted(timeline: Timeline) -> None:
    stack = timeline.stack
    for index, response in enumerate(timeline.gateway_replies):
        assert response.status_code == 200, response.text
        body = response.json()
        # The two honest replicas outvote the made-up output.
        assert body["output"] == {"text": f"replicated {index}"[::-1]}
        assert body["worker_id"] != stack.worker("wrong_output", "wrong-output")
    evidence = httpx.get(f"{stack.gateway.url}/evidence", params={"since": 0}, timeout=10).json()
    items = [item for item in evidence["items"] if item["deal_id"] == stack.deals["wrong_output"]]
    assert len(items) == GATEWAY_CALLS, f"expected one evidence item per replicated call: {evidence}"
    for item in items:
        assert item["kind"] == "disagreement"
        assert len(item["receipts"]) == 3
        assert base64.b64decode(item["input"]).startswith(b'{"text": "replicated')

    fraud = assert_fraud_caught(timeline, "wrong_output", Fault.DISAGREEMENT)
    assert fraud.epoch == CALL_EPOCH


def test_missed_proof_slashed(timeline: Timeline) -> None:
    stack = timeline.stack
    worker_id = stack.worker("skip_proofs", "skip-proofs")
    assert stack.admin.deals.proof_entry(worker_id, CALL_EPOCH) is None, "skip-proofs submitted a proof"

    fraud = assert_fraud_caught(
        timeline, "skip_proofs", Fault.MISSED_PROOF, stack.admin.challenges.parameters().missed_proof_slash_amount
    )
    assert fraud.epoch == CALL_EPOCH
    # Every later epoch was missed too. Each is reported in its own challenge
    # window, which has opened for every epoch e with e + PROOF_WINDOW + 1 <= current epoch.
    reported = sorted(event.epoch for event in timeline.logs.frauds(worker_id))
    assert reported == list(range(CALL_EPOCH, stack.current_epoch() - PROOF_WINDOW))


def test_replayed_epoch_equivocation(timeline: Timeline) -> None:
    fraud = assert_fraud_caught(timeline, "replay_epoch", Fault.EQUIVOCATION)
    assert fraud.epoch in (CALL_EPOCH, CALL_EPOCH + 1)


def test_replayed_deal_slashed(timeline: Timeline) -> None:
    stack = timeline.stack
    copy_worker = stack.worker("replay_deal_b", "replay-deal")
    original_worker = stack.worker("replay_deal_a", "replay-deal")
    challenged = [event for event in timeline.logs.upheld(copy_worker) if event.fault in (Fault.WRONG_DEAL, Fault.UNANSWERED)]
    proven = [
        event
        for worker_id in (copy_worker, original_worker)
        for event in timeline.logs.frauds(worker_id)
        if event.fault == Fault.EQUIVOCATION
    ]
    assert challenged or proven, f"replay-deal was neither challenged nor proven to equivocate: {timeline.logs.slashes()}"

    if challenged:
        # The verifier named the copied receipt, whose request is of deal A, in the proof of deal B's worker.
        upheld = assert_challenge_caught(timeline, "replay_deal_b", (Fault.WRONG_DEAL, Fault.UNANSWERED))
        challenge = stack.admin.challenges.get_challenge(upheld.challenge_id)
        log.info("replay_deal was upheld with %s", upheld.fault.name)
        assert challenge.kind.name == "RECEIPT"
        assert challenge.deal_id == stack.deals["replay_deal_b"]
        leaf = _challenged_leaf(timeline, "replay_deal_b", upheld.challenge_id)
        assert leaf["request"]["deal_id"] == stack.deals["replay_deal_a"]
    else:
        # The copy and the original are two receipts of one signer for one request. A fraud
        # proof settles that at once, and once it forfeited the epoch no challenge of it can open.
        fraud = proven[0]
        deal_key = "replay_deal_b" if fraud.worker_id == copy_worker else "replay_deal_a"
        assert_fraud_caught(timeline, deal_key, Fault.EQUIVOCATION)
        log.info("replay_deal was proven to equivocate on worker %d epoch %d", fraud.worker_id, fraud.epoch)
    assert_honest_paid(timeline, "replay_deal_a")
    assert_honest_paid(timeline, "replay_deal_b")


def test_equivocation_slashed(timeline: Timeline) -> None:
    fraud = assert_fraud_caught(timeline, "equivocate", Fault.EQUIVOCATION)
    assert fraud.epoch == CALL_EPOCH


def test_ignored_challenge_upheld(timeline: Timeline) -> None:
    upheld = assert_challenge_caught(timeline, "ignore_challenges", (Fault.UNANSWERED,), challenger="challenger")

    assert upheld.challenge_id == timeline.test_challenges["ignore"]
    challenge = timeline.stack.admin.challenges.get_challenge(upheld.challenge_id)
    assert challenge.kind.name == "SAMPLE"
    assert _mined_time(timeline.stack, upheld.transaction) > challenge.deadline


def test_challenged_honest_keeps_pay(timeline: Timeline) -> None:
    stack = timeline.stack
    challenge_id = timeline.test_challenges["honest"]
    challenge = stack.admin.challenges.get_challenge(challenge_id)
    worker_id = stack.worker("ignore_challenges", "honest-2")
    answered_against_honest_2 = [
        item
        for item in stack.admin.challenges.opened_challenges()
        if item.provider == stack.providers["honest-2"].address and item.status == ChallengeStatus.ANSWERED
    ]

    assert challenge.status == ChallengeStatus.ANSWERED
    assert challenge.worker_id == worker_id
    assert stack.admin.deals.get_epoch_proof(worker_id, CALL_EPOCH).proven
    assert_honest_paid(timeline, "ignore_challenges")
    # The provider received every bond of the challenges it answered, this one included.
    gained = timeline.final().flt["honest-2"] - timeline.before.flt["honest-2"]
    assert gained == sum(item.bond for item in answered_against_honest_2)
    assert gained >= challenge.bond
    assert timeline.before.stake["honest-2"] == timeline.final().stake["honest-2"]


def test_restarted_verifier_challenges_once(timeline: Timeline) -> None:
    counts = timeline.challenge_counts
    challenges = timeline.stack.admin.challenges.opened_challenges(challenger=timeline.verifier.address)
    per_proof: dict[tuple[int, int], list[int]] = {}
    for challenge in challenges:
        per_proof.setdefault((challenge.worker_id, challenge.epoch), []).append(challenge.challenge_id)

    assert counts["epoch 2"] > counts["test challenges"], "the first pass in the window challenged no cheater"
    assert counts["restart"] == counts["epoch 2"]
    assert counts["empty state"] == counts["epoch 2"]
    assert {key: ids for key, ids in per_proof.items() if len(ids) > 1} == {}
    for name in ("restart", "empty state"):
        repeated = [
            action.describe()
            for action in timeline.passes[name].actions
            if action.action in ("challenge_sample", "challenge_receipt") and action.outcome in ("sent", "reverted")
        ]
        assert repeated == [], f"the {name} pass tried to challenge again: {repeated}"


def test_honest_providers_never_slashed(timeline: Timeline) -> None:
    for provider in HONEST:
        address = timeline.stack.providers[provider].address
        assert timeline.logs.slashes(address) == []
        assert timeline.final().stake[provider] == timeline.before.stake[provider]


def test_reporters_receive_rewards(timeline: Timeline) -> None:
    """Each reporter's FLT plus unwithdrawn rewards grew by its reporter shares, less bonds lost to answered challenges."""
    manager = timeline.stack.admin.challenges
    slashes = timeline.logs.slashes()
    for name, session in (("verifier", timeline.verifier), ("challenger", timeline.challenger)):
        shares = sum(slash.reporter_share for slash in slashes if slash.reporter == session.address)
        lost = sum(
            challenge.bond
            for challenge in manager.opened_challenges(challenger=session.address)
            if challenge.status == ChallengeStatus.ANSWERED
        )
        before = timeline.before.flt[name] + timeline.before.slash_rewards[name]
        after = timeline.final().flt[name] + timeline.final().slash_rewards[name]
        assert shares > 0, f"the {name} earned no reporter share"
        assert after - before == shares - lost, f"{name}: FLT changed by {after - before}, shares {shares}, bonds lost {lost}"
    # The verifier withdraws its rewards itself.
    assert timeline.final().slash_rewards["verifier"] == 0
