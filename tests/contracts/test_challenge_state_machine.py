"""Hypothesis state machine over challenges, answers, fraud proofs and claims against a Python model.

Three workers of one deal, on peers of three providers, prove epochs honestly
or with a cheat: a reported usage that does not add up, a receipt whose caller
signature is garbage, or a signed receipt left out of the tree. The challenger
opens SAMPLE and RECEIPT challenges, peers answer what they can, deadlines pass
and anyone resolves; a reporter proves equivocation and disagreement and
reports missed proofs; time passes and providers claim. The model predicts
every outcome, including the reverts. After every step the invariants check
that:

1. the ChallengeManager's FLT balance is the sum of the bonds of the OPEN
   challenges, and the Market's FLT balance is the stakes, unbonding amounts,
   treasury and unpaid slash rewards together;
2. an epoch under an OPEN or UPHELD challenge is not proven on chain, so no
   claim pays it (each claim checks its paid epochs as well);
3. no fraud key slashes twice;
4. a challenge's status only moves from OPEN to ANSWERED or UPHELD.
"""

import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cloudless.chain.challenges import ChallengeKind, ChallengeStatus, Fault, request_tuple

from challenge_helpers import ProvenEpoch, Worker, fraud_key
from contract_helpers import (
    CHALLENGE_BOND,
    CHALLENGE_WINDOW_EPOCHS,
    MISSED_PROOF_SLASH_AMOUNT,
    PROOF_WINDOW_EPOCHS,
    SLASH_AMOUNT,
    USDC,
    RawRpc,
    events,
)

# The defaults keep `make test` short. A longer run sets these variables, as for the deal state machine.
MAX_EXAMPLES = int(os.environ.get("CLOUDLESS_FUZZ_EXAMPLES", "10"))
STEPS_PER_EXAMPLE = int(os.environ.get("CLOUDLESS_FUZZ_STEPS", "20"))

REPORTER_SHARE_BPS = 5_000  # the Market's default
DELAY_EPOCHS = PROOF_WINDOW_EPOCHS + CHALLENGE_WINDOW_EPOCHS
MARGIN_SECONDS = 5
"""Distance from a window edge or deadline below which a step does nothing, because
the timestamp of the next block may be a second or two later than predicted."""
GARBAGE_SIGNATURE = b"\xff" * 65
CHEATS = st.sampled_from(["honest", "honest", "empty", "usage", "bad-caller", "hidden"])
FUELS = st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=4)

ALLOWED_MOVES = {
    ChallengeStatus.OPEN: {ChallengeStatus.OPEN, ChallengeStatus.ANSWERED, ChallengeStatus.UPHELD},
    ChallengeStatus.ANSWERED: {ChallengeStatus.ANSWERED},
    ChallengeStatus.UPHELD: {ChallengeStatus.UPHELD},
}


@dataclass
class ProofModel:
    """An epoch proof as the peer submitted it, and how it cheats."""

    worker: Worker
    epoch: int
    proven: ProvenEpoch
    usage_delta: int = 0  # reported usage minus the fuel of the tree's receipts
    bad_index: int | None = None  # the receipt whose request carries a garbage caller signature
    hidden: list = field(default_factory=list)  # calls the peer signed for the epoch but left out

    @property
    def key(self) -> tuple:
        return (self.worker.worker_id, self.epoch)

    @property
    def calls(self) -> int:
        return len(self.proven.calls)

    def outcome(self, index: int) -> tuple:
        """Return (status, fault) of the answer that opens leaf `index` of the peer's tree."""
        if index == self.bad_index:
            return ChallengeStatus.UPHELD, Fault.BAD_CALLER_SIGNATURE
        tree = self.proven.tree
        fuel_after = tree.fuel_before[index] + self.proven.calls[index].receipt.fuel_used
        usage = tree.total_fuel + self.usage_delta
        last = index == self.calls - 1
        if fuel_after > usage or (last and fuel_after != usage):
            return ChallengeStatus.UPHELD, Fault.USAGE_MISMATCH
        return ChallengeStatus.ANSWERED, None


@dataclass
class ChallengeModel:
    challenge_id: int
    proof: ProofModel
    kind: int
    deadline: int
    leaf_index: int | None  # the leaf an answer must open, or None for a receipt outside the tree
    status: int = ChallengeStatus.OPEN


class ChallengeMachine(RuleBasedStateMachine):
    environment: SimpleNamespace = None

    def __init__(self):
        super().__init__()
        self.env = ChallengeMachine.environment.challenges
        self.workers = ChallengeMachine.environment.workers
        self.joined = ChallengeMachine.environment.joined
        self.reader = ChallengeMachine.environment.reader
        self.cm = self.env.challenge_manager
        self.dm = self.env.deal_manager
        self.snapshot = self.env.chain.snapshot()
        self.epoch = self.env.clock.epoch()
        self.challenger = self.env.challenger
        self.reporter = self.env.developer
        self.proofs = {}  # (worker id, epoch) -> ProofModel
        self.proven = set()  # (worker id, epoch) whose proven bit is set on chain
        self.challenges = {}  # challenge id -> ChallengeModel
        self.seen_status = {}  # challenge id -> status the last invariant check read
        self.settled_keys = set()
        self.slashed_keys = []  # fraud keys of every FraudProven event, in order
        self.equivocations = []  # (first, second) receipt pairs already proven
        self.claimed_until = {worker.worker_id: self.joined for worker in self.workers}
        self.paid = set()
        self.stakes, self.rewards, self.treasury = self.read_stakes()

    def teardown(self):
        self.env.chain.restore(self.snapshot)

    # ----------------------------------------------------------------- model

    def read_stakes(self):
        market = self.env.market
        for worker in self.workers:
            self.reader.add(market, "getProvider", worker.provider.address)
        for account in (self.challenger, self.reporter):
            self.reader.add(market, "slashRewards", account.address)
        self.reader.add(market, "treasuryBalance")
        results = self.reader.execute()
        count = len(self.workers)
        stakes = {w.provider.address: stored.stake for w, stored in zip(self.workers, results[:count], strict=True)}
        rewards = {self.challenger.address: results[count], self.reporter.address: results[count + 1]}
        return stakes, rewards, results[count + 2]

    def now(self) -> int:
        return self.env.chain.pending_timestamp

    def near(self, moment: int) -> bool:
        return abs(self.now() - moment) < MARGIN_SECONDS

    def slash(self, provider_address: str, amount: int, reporter_address: str) -> int:
        """Book a slash as the Market does and return the amount taken."""
        slashed = min(amount, self.stakes[provider_address])
        share = slashed * REPORTER_SHARE_BPS // 10_000
        self.stakes[provider_address] -= slashed
        self.rewards[reporter_address] += share
        self.treasury += slashed - share
        return slashed

    def forfeit(self, worker_id: int, epoch: int) -> None:
        """Clear a proven epoch as a fraud proof does once its proof window has closed."""
        if self.epoch > epoch + PROOF_WINDOW_EPOCHS:
            self.proven.discard((worker_id, epoch))

    def blocked(self, key) -> bool:
        """Whether an OPEN or UPHELD challenge exists for the epoch, so that no claim may pay it."""
        return any(
            c.proof.key == key and c.status in (ChallengeStatus.OPEN, ChallengeStatus.UPHELD)
            for c in self.challenges.values()
        )

    def expect_revert(self, contract, method_name, arguments, error_name, sender, **inputs) -> None:
        handler = getattr(contract, method_name)
        self.reader.assert_reverts(handler, arguments, sender, getattr(contract, error_name), **inputs)

    def check_fraud(self, tx, key: bytes, fault: Fault, worker: Worker, epoch: int, slashed: int) -> None:
        [log] = events(tx, self.cm.FraudProven)
        assert (bytes(log.fraudKey), log.fault, log.workerId, log.epoch, log.slashed) == (
            key,
            fault,
            worker.worker_id,
            epoch,
            slashed,
        )
        # Invariant 3: a fraud key slashes once.
        assert key not in self.slashed_keys
        self.slashed_keys.append(key)
        self.settled_keys.add(key)

    # ----------------------------------------------------------------- proofs

    def provable(self) -> list:
        first = max(self.joined, self.epoch - PROOF_WINDOW_EPOCHS)
        return [
            (worker, epoch)
            for worker in self.workers
            for epoch in range(first, self.epoch)
            if (worker.worker_id, epoch) not in self.proofs
        ]

    @initialize(data=st.data())
    def start_with_challengeable_proofs(self, data):
        # Hypothesis enables a random subset of rules per example, so every
        # example starts with a proof of each worker for the current epoch, some
        # of them cheating, and moves into that epoch's challenge window.
        first = self.epoch
        self.epoch = self.env.clock.advance(1)
        for worker in self.workers:
            self.submit_proof(data, worker, first)
        self.epoch = self.env.clock.advance(PROOF_WINDOW_EPOCHS)

    @precondition(lambda self: self.provable())
    @rule(data=st.data())
    def prove(self, data):
        worker, epoch = data.draw(st.sampled_from(self.provable()))
        self.submit_proof(data, worker, epoch)

    def submit_proof(self, data, worker: Worker, epoch: int) -> None:
        """Prove the epoch with a drawn cheat, or none, and book it in the model."""
        cheat, fuels = data.draw(CHEATS), data.draw(FUELS)
        env = self.env
        calls = [] if cheat == "empty" else env.calls(worker, epoch, fuels)
        model = ProofModel(worker, epoch, None)
        if cheat == "bad-caller":
            model.bad_index = data.draw(st.integers(min_value=0, max_value=len(calls) - 1))
            bad = calls[model.bad_index]
            calls[model.bad_index] = env.pair(bad.request.model_copy(update={"signature": GARBAGE_SIGNATURE}), bad.receipt)
        if cheat == "usage":
            total = sum(fuels)
            model.usage_delta = data.draw(
                st.integers(min_value=-total, max_value=1_000).filter(lambda delta: delta != 0)
            )
        if cheat == "hidden":
            model.hidden.append(env.call(worker, epoch, sequence=len(calls)))

        tree = env.tree(calls)
        model.proven = env.prove(worker, epoch, calls, usage=tree.total_fuel + model.usage_delta)

        self.proofs[model.key] = model
        self.proven.add(model.key)

    # ------------------------------------------------------------- challenges

    def check_standing(self, model: ProofModel, method_name: str, arguments: list) -> bool:
        """Return whether a challenge of the proof may open now, after checking the revert when it may not."""
        opens_at, closes_at = self.env.opens_at(model.epoch), self.env.closes_at(model.epoch)
        now = self.now()
        # Time only moves forward, so only the seconds just before an edge are ambiguous.
        if opens_at - MARGIN_SECONDS <= now < opens_at or self.near(closes_at):
            return False
        if now < opens_at or now > closes_at:
            self.expect_revert(
                self.cm,
                method_name,
                arguments,
                "ChallengeOutsideWindow",
                self.challenger,
                workerId=model.worker.worker_id,
                epoch=model.epoch,
                opensAt=opens_at,
                closesAt=closes_at,
            )
            return False
        if model.key not in self.proven:
            self.expect_revert(
                self.cm,
                method_name,
                arguments,
                "ChallengeProofNotStanding",
                self.challenger,
                workerId=model.worker.worker_id,
                epoch=model.epoch,
            )
            return False
        return True

    def book_opened(self, log, model: ProofModel, leaf_index) -> None:
        assert (log.workerId, log.epoch) == model.key
        self.challenges[log.challengeId] = ChallengeModel(log.challengeId, model, log.kind, log.deadline, leaf_index)
        self.proven.discard(model.key)

    def pick_proof(self, data, keys) -> ProofModel:
        """Draw a proof, mostly one that may be challenged now, so that reverts stay the exception."""
        now = self.now()
        standing = [
            key
            for key in keys
            if key in self.proven and self.env.opens_at(key[1]) < now < self.env.closes_at(key[1])
        ]
        if standing and data.draw(st.integers(min_value=0, max_value=4)) > 0:
            return self.proofs[data.draw(st.sampled_from(standing))]
        return self.proofs[data.draw(st.sampled_from(keys))]

    @precondition(lambda self: self.proofs)
    @rule(data=st.data(), kind=st.sampled_from([ChallengeKind.SAMPLE, ChallengeKind.RECEIPT]))
    def challenge(self, data, kind):
        if kind == ChallengeKind.SAMPLE:
            self.challenge_sample(data)
        elif any(model.calls or model.hidden for model in self.proofs.values()):
            self.challenge_receipt(data)

    def challenge_sample(self, data):
        model = self.pick_proof(data, sorted(self.proofs))
        arguments = [model.proven.batch, 0]
        if not self.check_standing(model, "challengeSample", arguments):
            return
        if model.calls == 0:
            self.expect_revert(
                self.cm,
                "challengeSample",
                arguments,
                "ChallengeNothingToSample",
                self.challenger,
                workerId=model.worker.worker_id,
                epoch=model.epoch,
            )
            return

        log = self.env.challenge_sample(model.proven)

        assert log.kind == ChallengeKind.SAMPLE
        assert log.leafIndex < model.calls
        self.book_opened(log, model, log.leafIndex)

    def challenge_receipt(self, data):
        keys = sorted(key for key, model in self.proofs.items() if model.calls or model.hidden)
        model = self.pick_proof(data, keys)
        named_calls = model.proven.calls + model.hidden
        index = data.draw(st.integers(min_value=0, max_value=len(named_calls) - 1))
        named = named_calls[index]
        arguments = [model.proven.batch, 0, named.signed_receipt()]
        if not self.check_standing(model, "challengeReceipt", arguments):
            return

        log = self.env.challenge_receipt(model.proven, named)

        assert bytes(log.receiptDigest) == named.digest
        self.book_opened(log, model, index if index < model.calls else None)

    def answerable(self) -> list:
        deadline_after = self.now() + MARGIN_SECONDS
        return sorted(
            challenge_id
            for challenge_id, challenge in self.challenges.items()
            if challenge.status == ChallengeStatus.OPEN
            and challenge.leaf_index is not None
            and challenge.deadline > deadline_after
        )

    @precondition(lambda self: self.answerable())
    @rule(data=st.data(), by_provider=st.booleans())
    def answer(self, data, by_provider):
        challenge = self.challenges[data.draw(st.sampled_from(self.answerable()))]
        model = challenge.proof
        sender = model.worker.provider if by_provider else model.worker.signer
        status, fault = model.outcome(challenge.leaf_index)

        tx = self.env.answer(challenge.challenge_id, model.proven, challenge.leaf_index, sender=sender)

        challenge.status = status
        if status == ChallengeStatus.ANSWERED:
            assert len(events(tx, self.cm.ChallengeAnswered)) == 1
            self.proven.add(model.key)
            return
        [upheld] = events(tx, self.cm.ChallengeUpheld)
        assert upheld.fault == fault
        self.slash(model.worker.provider.address, SLASH_AMOUNT, self.challenger.address)

    @precondition(lambda self: any(c.status == ChallengeStatus.OPEN for c in self.challenges.values()))
    @rule(data=st.data())
    def resolve_after_deadline(self, data):
        open_ids = sorted(i for i, c in self.challenges.items() if c.status == ChallengeStatus.OPEN)
        challenge = self.challenges[data.draw(st.sampled_from(open_ids))]
        if self.now() + MARGIN_SECONDS < challenge.deadline:
            self.expect_revert(
                self.cm,
                "resolveUnanswered",
                [challenge.challenge_id],
                "ChallengeDeadlineNotReached",
                self.reporter,
                challengeId=challenge.challenge_id,
                deadline=challenge.deadline,
            )
        if self.now() <= challenge.deadline:
            self.env.pass_deadline(challenge.deadline)
            self.epoch = self.env.clock.epoch()

        tx = self.cm.resolveUnanswered(challenge.challenge_id, sender=self.reporter)

        [upheld] = events(tx, self.cm.ChallengeUpheld)
        assert upheld.fault == Fault.UNANSWERED
        challenge.status = ChallengeStatus.UPHELD
        # The challenger, not the account that resolved, gets the reporter share.
        self.slash(challenge.proof.worker.provider.address, SLASH_AMOUNT, self.challenger.address)

    # ------------------------------------------------------------ fraud proofs

    def recent_epoch(self, data) -> int:
        return data.draw(st.integers(min_value=max(self.joined, self.epoch - 4), max_value=self.epoch))

    @rule(data=st.data(), replay=st.booleans(), repeat=st.booleans())
    def prove_equivocation(self, data, replay, repeat):
        if repeat and self.equivocations:
            self.repeat_equivocation(data)
            return
        worker = data.draw(st.sampled_from(self.workers))
        epoch = self.recent_epoch(data)
        env = self.env
        request = env.request(worker.deal_id)
        first = env.pair(request, env.receipt(request, worker, epoch))
        if replay:
            second = env.pair(request, env.receipt(request, worker, epoch + 1, sequence=1))
        else:
            second = env.pair(request, env.receipt(request, worker, epoch, output=b"other", sequence=1))
        key = fraud_key(Fault.EQUIVOCATION, worker.signer.address, request.digest(env.domain))

        tx = self.cm.proveEquivocation(first.signed_receipt(), second.signed_receipt(), sender=self.reporter)

        slashed = self.slash(worker.provider.address, SLASH_AMOUNT, self.reporter.address)
        self.check_fraud(tx, key, Fault.EQUIVOCATION, worker, epoch, slashed)
        self.forfeit(worker.worker_id, epoch)
        self.forfeit(worker.worker_id, second.receipt.epoch)
        self.equivocations.append((first, second, key))

    def repeat_equivocation(self, data):
        first, second, key = data.draw(st.sampled_from(self.equivocations))

        self.expect_revert(
            self.cm,
            "proveEquivocation",
            [second.signed_receipt(), first.signed_receipt()],
            "FraudAlreadyProven",
            self.challenger,
            fraudKey=key,
        )

    @rule(data=st.data(), minority_index=st.integers(min_value=0, max_value=2))
    def prove_disagreement(self, data, minority_index):
        epoch = self.recent_epoch(data)
        env = self.env
        minority_worker = self.workers[minority_index]
        request = env.request(minority_worker.deal_id)
        majority = [
            env.pair(request, env.receipt(request, worker, epoch, output=b"agreed"))
            for worker in self.workers
            if worker is not minority_worker
        ]
        minority = env.pair(request, env.receipt(request, minority_worker, epoch, output=b"disagreed"))
        key = fraud_key(Fault.DISAGREEMENT, minority_worker.worker_id, request.digest(env.domain))

        tx = self.cm.proveDisagreement(
            request_tuple(request),
            request.signature,
            [call.signed_receipt() for call in majority],
            minority.signed_receipt(),
            sender=self.reporter,
        )

        slashed = self.slash(minority_worker.provider.address, SLASH_AMOUNT, self.reporter.address)
        self.check_fraud(tx, key, Fault.DISAGREEMENT, minority_worker, epoch, slashed)
        self.forfeit(minority_worker.worker_id, epoch)

    def reportable(self) -> list:
        """Epochs whose challenge window is open now: proven ones make the report revert."""
        epochs = [epoch for epoch in (self.epoch - 3, self.epoch - 4) if epoch >= self.joined]
        return [(worker, epoch) for worker in self.workers for epoch in epochs]

    @precondition(lambda self: self.reportable())
    @rule(data=st.data())
    def report_missed_proof(self, data):
        worker, epoch = data.draw(st.sampled_from(self.reportable()))
        key = fraud_key(Fault.MISSED_PROOF, worker.worker_id, epoch)
        arguments = [worker.worker_id, epoch]
        if (worker.worker_id, epoch) in self.proofs:
            # Proven, even when a challenge or a fraud proof forfeited the epoch since.
            self.expect_revert(
                self.cm,
                "reportMissedProof",
                arguments,
                "MissedProofNotReportable",
                self.reporter,
                workerId=worker.worker_id,
                epoch=epoch,
                reason="proven",
            )
            return
        if key in self.settled_keys:
            self.expect_revert(self.cm, "reportMissedProof", arguments, "FraudAlreadyProven", self.reporter, fraudKey=key)
            return

        tx = self.cm.reportMissedProof(worker.worker_id, epoch, sender=self.reporter)

        slashed = self.slash(worker.provider.address, MISSED_PROOF_SLASH_AMOUNT, self.reporter.address)
        self.check_fraud(tx, key, Fault.MISSED_PROOF, worker, epoch, slashed)

    @precondition(lambda self: any(self.rewards.values()))
    @rule(data=st.data())
    def withdraw_slash_reward(self, data):
        address = data.draw(st.sampled_from(sorted(a for a, reward in self.rewards.items() if reward)))
        account = self.challenger if address == self.challenger.address else self.reporter
        wallet = self.env.flt.balanceOf(account)

        self.env.market.withdrawSlashReward(sender=account)

        assert self.env.flt.balanceOf(account) == wallet + self.rewards[address]
        self.rewards[address] = 0

    # ------------------------------------------------------------ time, claims

    @rule(data=st.data(), epochs=st.integers(min_value=1, max_value=2))
    def advance(self, data, epochs):
        self.epoch = self.env.clock.advance(epochs)

        # Peers prove some of the epochs that ended and providers claim, as
        # nodes do when time passes.
        pairs = self.provable()
        if pairs:
            for worker, epoch in data.draw(st.lists(st.sampled_from(pairs), unique=True, max_size=3)):
                self.submit_proof(data, worker, epoch)
        claimable = self.claimable()
        if claimable:
            for worker in data.draw(st.lists(st.sampled_from(claimable), unique=True, max_size=3)):
                self.claim(worker)

    def claimable(self) -> list:
        max_epoch = self.epoch - DELAY_EPOCHS
        return [worker for worker in self.workers if max_epoch > self.claimed_until[worker.worker_id]]

    def claim(self, worker: Worker) -> None:
        """Claim every epoch of the worker that is past its challenge window."""
        to_epoch = self.epoch - DELAY_EPOCHS
        from_epoch = self.claimed_until[worker.worker_id]
        assert self.dm.maxClaimEpoch(worker.worker_id) == to_epoch

        tx = self.dm.claim(worker.worker_id, to_epoch, sender=worker.provider)

        [log] = events(tx, self.dm.WorkerClaimed)
        paid = [epoch for epoch in range(from_epoch, to_epoch) if (worker.worker_id, epoch) in self.proven]
        assert log.provenEpochs == len(paid)
        for epoch in paid:
            key = (worker.worker_id, epoch)
            # Invariant 2: paid only without an OPEN or UPHELD challenge of the epoch, and only once.
            assert not self.blocked(key)
            assert key not in self.paid
            self.paid.add(key)
        self.claimed_until[worker.worker_id] = to_epoch

    # -------------------------------------------------------------- invariants

    @invariant()
    def chain_matches_model(self):
        env, reader = self.env, self.reader
        challenge_ids = sorted(self.challenges)
        pairs = sorted(set(self.proofs) | {c.proof.key for c in self.challenges.values()})
        keys = sorted(self.settled_keys)
        reader.add(env.flt, "balanceOf", self.cm.address)
        reader.add(env.flt, "balanceOf", env.market.address)
        for challenge_id in challenge_ids:
            reader.add(self.cm, "getChallenge", challenge_id)
        for worker_id, epoch in pairs:
            reader.add(self.dm, "getEpochProof", worker_id, epoch)
        for key in keys:
            reader.add(self.cm, "fraudSettled", key)
        results = reader.execute()
        bonds_held, market_flt = results[0], results[1]
        stored_challenges = results[2 : 2 + len(challenge_ids)]
        stored_proofs = results[2 + len(challenge_ids) : 2 + len(challenge_ids) + len(pairs)]
        settled = results[2 + len(challenge_ids) + len(pairs) :]
        stakes, rewards, treasury = self.read_stakes()

        # Invariant 1: bonds of OPEN challenges, and the Market's stakes, rewards and treasury.
        open_bonds = sum(CHALLENGE_BOND for c in self.challenges.values() if c.status == ChallengeStatus.OPEN)
        assert bonds_held == open_bonds
        assert market_flt == sum(stakes.values()) + sum(rewards.values()) + treasury
        assert (stakes, rewards, treasury) == (self.stakes, self.rewards, self.treasury)

        # Invariant 4: statuses follow the model and only leave OPEN.
        for challenge_id, stored in zip(challenge_ids, stored_challenges, strict=True):
            before = self.seen_status.get(challenge_id, ChallengeStatus.OPEN)
            assert stored.status in ALLOWED_MOVES[before], (challenge_id, before, stored.status)
            assert stored.status == self.challenges[challenge_id].status
            self.seen_status[challenge_id] = stored.status

        # Invariant 2: the proven bits follow the model, and no blocked epoch is proven.
        for pair, stored in zip(pairs, stored_proofs, strict=True):
            assert stored.proven == (pair in self.proven), pair
            if self.blocked(pair):
                assert not stored.proven, pair

        # Invariant 3: every fraud key that slashed is settled, once.
        assert all(settled)
        assert len(self.slashed_keys) == len(set(self.slashed_keys))


def test_challenge_state_machine(chain, challenge_env):
    env = challenge_env
    env.clock.advance(1)
    # One deal of three workers on peers of three providers, funded for far
    # longer than any example runs.
    peers = []
    for index in range(3):
        _, [peer_id] = env.build.offer(env.providers[index], signers=[env.signers[index].address])
        peers.append(peer_id)
    deal_id = env.build.deal(targetWorkers=3, maxWorkersPerProvider=1, deposit=10_000 * USDC)
    _, worker_ids = env.build.match(deal_id, peers)
    workers = [
        Worker(deal_id, worker_id, peer_id, env.providers[index], env.signers[index])
        for index, (worker_id, peer_id) in enumerate(zip(worker_ids, peers, strict=True))
    ]
    ChallengeMachine.environment = SimpleNamespace(
        challenges=env,
        workers=workers,
        joined=env.deal_manager.getWorker(worker_ids[0]).joinedEpoch,
        reader=RawRpc(chain.provider.web3),
    )

    run_state_machine_as_test(
        ChallengeMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
