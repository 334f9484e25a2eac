"""Hypothesis state machine over random market histories against a Python model.

The rules mix every user action: developers create, top up, withdraw from
and stop SUBSCRIPTION and USAGE deals (anyone may top up); the matcher places
workers; providers change prices, pause offers, resize peers, unstake, take
workers out, prove epochs (alone or in batches) and claim; a slasher slashes;
time passes. The model re-implements settlement, matching, claims, reserves
and stake. Every rule compares the contract's events and storage with the
model. After every step the invariants check that:

1. the DealManager's USDC balance equals the deal balances, pending amounts
   and unwithdrawn earnings together, and the Market's FLT balance equals the
   stakes, unbonding amounts, slash rewards and treasury together;
2. no (worker, epoch) is paid without an accepted proof or paid twice;
3. a settled epoch is charged exactly the rates of the workers in the deal in
   that epoch, so nothing before a join, after a leave or after the end;
4. balances and pending amounts match the model (so never go negative), and a
   withdrawal from a running deal keeps the reserve;
5. each peer's free CUs plus the CUs of its active workers equal its total.
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

from contract_helpers import (
    COLLATERAL_PER_CU,
    FLT,
    MIN_DEPOSITED_EPOCHS,
    PROOF_WINDOW_EPOCHS,
    UINT64_MAX,
    RawRpc,
    Skip,
    events,
)

# `make test` runs a short budget; `make fuzz` sets a long one through these variables.
MAX_EXAMPLES = int(os.environ.get("CLOUDLESS_FUZZ_EXAMPLES", "15"))
STEPS_PER_EXAMPLE = int(os.environ.get("CLOUDLESS_FUZZ_STEPS", "25"))
ZERO_ADDRESS = "0x" + "00" * 20
FUEL_PER_MEGAFUEL = 1_000_000

MAX_DEALS = 3
UNKNOWN_PEER_ID = 999
PEER_LAYOUT = (
    # (provider index, CUs, price per CU per epoch)
    (0, 6, 100),
    (0, 4, 150),
    (1, 5, 80),
    (2, 3, 200),
)

DEAL_TERMS = st.tuples(
    st.integers(min_value=1, max_value=3),  # target workers
    st.integers(min_value=1, max_value=3),  # CUs per worker
    st.integers(min_value=1, max_value=2),  # max workers per provider
    st.sampled_from([0, 2, 4, 8]),  # duration in epochs, 0 = open-ended
    st.sampled_from([90, 150, 250]),  # price cap
    st.integers(min_value=0, max_value=2_000),  # deposit above the reserve
    # USAGE terms (usage price per 10**6 fuel, fuel cap per worker epoch), or None for SUBSCRIPTION
    st.one_of(st.none(), st.tuples(st.sampled_from([1_000, 50_000]), st.sampled_from([1_000_000, 3_000_000]))),
)
PRICES = st.sampled_from([50, 80, 100, 150, 200, 300])
SLASH_AMOUNTS = st.sampled_from([1 * FLT, 5_000 * FLT, 9_995 * FLT, 20_000 * FLT])


@dataclass
class PeerModel:
    peer_id: int
    offer_id: int
    provider: str
    signer: object
    total_cus: int
    price: int
    free_cus: int
    paused: bool = False


@dataclass
class ProviderModel:
    account: object
    stake: int
    unbonding: int = 0


@dataclass
class WorkerModel:
    worker_id: int
    deal_id: int
    peer: PeerModel
    provider: str
    price: int
    cus: int
    joined: int
    left: int = UINT64_MAX
    usage_reserve: int = 0
    claimed_until: int = 0
    active: bool = True

    @property
    def base_rate(self) -> int:
        return self.price * self.cus

    @property
    def rate(self) -> int:
        return self.base_rate + self.usage_reserve


@dataclass
class DealModel:
    deal_id: int
    cap: int
    cu_per_worker: int
    target: int
    max_per_provider: int
    end: int
    settled: int
    balance: int
    usage_price: int = 0
    usage_cap: int = 0
    stopped: bool = False
    pending: int = 0
    rate: int = 0
    workers: list = field(default_factory=list)
    funded: set = field(default_factory=set)

    @property
    def usage_reserve(self) -> int:
        return self.usage_cap * self.usage_price // FUEL_PER_MEGAFUEL

    def usage_charge(self, fuel: int) -> int:
        return min(fuel, self.usage_cap) * self.usage_price // FUEL_PER_MEGAFUEL

    def active_workers(self) -> list:
        return [worker for worker in self.workers if worker.active]


class Environment:
    """Contracts, accounts and peers shared by every example of one test run."""

    def __init__(self, fixtures: SimpleNamespace):
        self.reader = RawRpc(fixtures.chain.provider.web3)
        self.chain = fixtures.chain
        self.clock = fixtures.clock
        self.build = fixtures.build
        self.deal_manager = fixtures.deal_manager
        self.market = fixtures.market
        self.usdc = fixtures.usdc
        self.flt = fixtures.flt
        self.admin = fixtures.admin
        self.developer = fixtures.developer
        self.stranger = fixtures.stranger
        self.providers = fixtures.providers
        self.peers = []
        for index, (provider_index, cus, price) in enumerate(PEER_LAYOUT):
            offer_id, [peer_id] = self.build.offer(
                self.providers[provider_index], cus=(cus,), price=price, signers=[fixtures.signers[index].address]
            )
            self.peers.append((peer_id, offer_id, self.providers[provider_index], fixtures.signers[index], cus, price))
        # The admin slashes in the `slash` rule; in production the challenge logic does.
        self.market.setSlasher(self.admin, True, sender=self.admin)


class DealMachine(RuleBasedStateMachine):
    environment: Environment = None

    def __init__(self):
        super().__init__()
        self.env = DealMachine.environment
        self.dm = self.env.deal_manager
        self.snapshot = self.env.chain.snapshot()
        self.deals = {}
        self.workers = {}
        self.peers = [
            PeerModel(peer_id, offer_id, provider.address, signer, cus, price, cus)
            for peer_id, offer_id, provider, signer, cus, price in self.env.peers
        ]
        self.providers = {
            account.address: ProviderModel(account, self.env.market.getProvider(account).stake)
            for account in self.env.providers
        }
        self.slash_rewards = 0
        self.treasury = 0
        self.usage = {}  # (worker id, epoch) -> reported fuel
        self.proofs = set()
        self.paid = set()
        self.earnings = {provider.address: 0 for provider in self.env.providers}
        # Only the advance rule moves chain time across an epoch boundary, so
        # the model tracks the epoch and preconditions need no RPC call.
        self.epoch = self.env.clock.epoch()

    def teardown(self):
        self.env.chain.restore(self.snapshot)

    # ------------------------------------------------------------------ model

    def provable(self) -> list:
        """Return the (worker, epoch) pairs that accept a proof now and have none yet."""
        pairs = []
        for worker in self.workers.values():
            deal = self.deals[worker.deal_id]
            first = max(worker.joined, self.epoch - PROOF_WINDOW_EPOCHS)
            for epoch in range(first, min(worker.left, deal.end, self.epoch)):
                if (worker.worker_id, epoch) not in self.proofs:
                    pairs.append((worker.worker_id, epoch))
        return pairs

    def max_claim_epoch(self, worker: WorkerModel) -> int:
        deal = self.deals[worker.deal_id]
        settled = max(deal.settled, min(self.epoch, deal.end))
        return min(worker.left, deal.end, settled, max(self.epoch - PROOF_WINDOW_EPOCHS, 0))

    def claimable(self) -> list:
        return sorted(w.worker_id for w in self.workers.values() if self.max_claim_epoch(w) > w.claimed_until)

    def running_deals(self) -> list:
        return sorted(deal.deal_id for deal in self.deals.values() if not deal.stopped)

    def preview_settle(self, deal: DealModel, now: int):
        """Return (from, to, funded, charged) that settling at `now` emits, or None."""
        to_epoch = min(now, deal.end)
        if to_epoch <= deal.settled:
            return None
        elapsed = to_epoch - deal.settled
        funded = min(elapsed, deal.balance // deal.rate) if deal.rate else 0
        return deal.settled, to_epoch, funded, funded * deal.rate

    def apply_settle(self, deal: DealModel, now: int, receipt) -> None:
        """Settle the model and check the receipt's DealSettled event against it."""
        expected = self.preview_settle(deal, now)
        logs = events(receipt, self.dm.DealSettled)
        if expected is None:
            assert logs == []
            return
        [log] = logs
        self.apply_settle_log(deal, now, log)

    def apply_settle_log(self, deal: DealModel, now: int, log) -> None:
        expected = self.preview_settle(deal, now)
        assert (log.fromEpoch, log.toEpoch, log.fundedEpochs, log.charged) == expected
        from_epoch, to_epoch, funded, charged = expected
        assert charged <= deal.balance
        for epoch in range(from_epoch, from_epoch + funded):
            # Invariant 3: the charge of each funded epoch is the sum of the
            # rates of the workers that were in the deal in that epoch.
            assert epoch < deal.end
            in_deal = [w for w in deal.workers if w.joined <= epoch < min(w.left, deal.end)]
            assert deal.rate == sum(worker.rate for worker in in_deal)
            deal.funded.add(epoch)
        deal.balance -= charged
        deal.pending += charged
        deal.settled = to_epoch

    def reserve(self, deal: DealModel, now: int, settled: int) -> int:
        if now >= deal.end:
            return 0
        if deal.stopped:
            return deal.rate * (deal.end - settled)
        worker_rate = deal.cap * deal.cu_per_worker + deal.usage_reserve
        return worker_rate * deal.target * min(MIN_DEPOSITED_EPOCHS, deal.end - now)

    def stake_covered(self, address: str) -> bool:
        total_cus = sum(peer.total_cus for peer in self.peers if peer.provider == address)
        return self.providers[address].stake >= COLLATERAL_PER_CU * total_cus

    def predict_candidates(self, deal: DealModel, balance: int, peer_indexes: list) -> list:
        """Return the SkipReason of each candidate, counting the workers placed before it."""
        active = [(worker.peer, worker.provider) for worker in deal.active_workers()]
        free_cus = {id(peer): peer.free_cus for peer in self.peers}
        rate = deal.rate
        reasons = []
        for index in peer_indexes:
            reason = self._skip_reason(deal, balance, rate, active, free_cus, index)
            reasons.append(reason)
            if reason == Skip.NONE:
                peer = self.peers[index]
                active.append((peer, peer.provider))
                free_cus[id(peer)] -= deal.cu_per_worker
                rate += peer.price * deal.cu_per_worker + deal.usage_reserve
        return reasons

    def _skip_reason(self, deal, balance, rate, active, free_cus, index) -> int:
        if len(active) >= deal.target:
            return Skip.NO_FREE_SLOT
        if index >= len(self.peers):
            return Skip.PEER_NOT_FOUND
        peer = self.peers[index]
        if peer.paused:
            return Skip.OFFER_PAUSED
        if peer.price > deal.cap:
            return Skip.PRICE_ABOVE_CAP
        if free_cus[id(peer)] < deal.cu_per_worker:
            return Skip.NOT_ENOUGH_CUS
        if any(active_peer is peer for active_peer, _ in active):
            return Skip.PEER_ALREADY_IN_DEAL
        if sum(1 for _, provider in active if provider == peer.provider) >= deal.max_per_provider:
            return Skip.PROVIDER_LIMIT
        if not self.stake_covered(peer.provider):
            return Skip.INSUFFICIENT_STAKE
        if balance < rate + peer.price * deal.cu_per_worker + deal.usage_reserve:
            return Skip.INSUFFICIENT_FUNDS
        return Skip.NONE

    @staticmethod
    def release(worker: WorkerModel, left: int) -> None:
        worker.left = left
        worker.active = False
        worker.peer.free_cus += worker.cus

    def expect_revert(self, method_name, arguments, error_name, sender=None, contract=None) -> None:
        contract = contract or self.dm
        handler = getattr(contract, method_name)
        error = getattr(contract, error_name)
        self.env.reader.assert_reverts(handler, arguments, sender or self.env.developer, error)

    @staticmethod
    def has_ended(deal: DealModel, now: int) -> bool:
        return now >= deal.end

    # ------------------------------------------------------------------ rules

    @initialize(terms=DEAL_TERMS, peer_order=st.permutations(range(len(PEER_LAYOUT))))
    def start_with_matched_deal(self, terms, peer_order):
        # Hypothesis enables a random subset of rules per example, so every
        # example starts with a deal that has workers whenever its terms allow.
        self.create_deal(terms)
        self.match_peers(max(self.deals), list(peer_order))

    @precondition(lambda self: len(self.deals) < MAX_DEALS)
    @rule(terms=DEAL_TERMS)
    def create_deal(self, terms):
        target_workers, cu_per_worker, max_per_provider, duration, cap, extra, usage = terms
        usage_price, usage_cap = usage or (0, 0)
        epochs = min(MIN_DEPOSITED_EPOCHS, duration) if duration else MIN_DEPOSITED_EPOCHS
        worker_rate = cap * cu_per_worker + usage_cap * usage_price // FUEL_PER_MEGAFUEL
        deposit = worker_rate * target_workers * epochs + extra
        now = self.epoch

        deal_id = self.env.build.deal(
            maxPricePerCuPerEpoch=cap,
            cuPerWorker=cu_per_worker,
            minWorkers=1,
            targetWorkers=target_workers,
            maxWorkersPerProvider=max_per_provider,
            durationEpochs=duration,
            billingMode=1 if usage else 0,
            usagePricePerMegafuel=usage_price,
            maxUsagePerWorkerEpoch=usage_cap,
            deposit=deposit,
        )

        end = now + duration if duration else UINT64_MAX
        self.deals[deal_id] = DealModel(
            deal_id, cap, cu_per_worker, target_workers, max_per_provider, end, now, deposit, usage_price, usage_cap
        )
        assert self.dm.getDeal(deal_id).endEpoch == end

    @precondition(lambda self: self.deals)
    @rule(data=st.data(), amount=st.integers(min_value=1, max_value=3_000), by_stranger=st.booleans())
    def deposit(self, data, amount, by_stranger):
        deal = self.deals[data.draw(st.sampled_from(sorted(self.deals)))]
        sender = self.env.stranger if by_stranger else self.env.developer
        now = self.epoch

        if self.has_ended(deal, now):
            self.expect_revert("deposit", [deal.deal_id, amount], "DealEnded", sender=sender)
            return
        receipt = self.dm.deposit(deal.deal_id, amount, sender=sender)

        self.apply_settle(deal, now, receipt)
        deal.balance += amount

    @precondition(lambda self: self.running_deals())
    @rule(data=st.data(), peer_indexes=st.lists(st.integers(min_value=0, max_value=len(PEER_LAYOUT)), max_size=4))
    def match(self, data, peer_indexes):
        self.match_peers(data.draw(st.sampled_from(self.running_deals())), peer_indexes)

    def match_peers(self, deal_id, peer_indexes):
        """Match the deal on the peers at `peer_indexes`. An index past the layout becomes an unknown peer id."""
        deal = self.deals[deal_id]
        peer_ids = [self.peers[i].peer_id if i < len(self.peers) else UNKNOWN_PEER_ID for i in peer_indexes]
        now = self.epoch
        if deal.stopped or self.has_ended(deal, now):
            self.expect_revert("matchDeal", [deal.deal_id, peer_ids], "DealEnded")
            return

        settlement = self.preview_settle(deal, now)
        balance = deal.balance - (settlement[3] if settlement else 0)
        predicted = self.predict_candidates(deal, balance, peer_indexes)

        if Skip.NONE not in predicted:
            self.expect_revert("matchDeal", [deal.deal_id, peer_ids], "DealNoWorkerPlaced")
            return
        receipt = self.dm.matchDeal(deal.deal_id, peer_ids, sender=self.env.developer)

        self.apply_settle(deal, now, receipt)
        skipped = [(log.peerId, log.reason) for log in events(receipt, self.dm.CandidateSkipped)]
        expected_skips = [(peer_ids[i], r) for i, r in enumerate(predicted) if r != Skip.NONE]
        assert skipped == expected_skips
        joined = events(receipt, self.dm.WorkerJoined)
        placed_indexes = [index for index, r in zip(peer_indexes, predicted, strict=True) if r == Skip.NONE]
        assert [log.peerId for log in joined] == [self.peers[i].peer_id for i in placed_indexes]
        for log, index in zip(joined, placed_indexes, strict=True):
            peer = self.peers[index]
            assert (log.pricePerCuPerEpoch, log.cus, log.joinedEpoch) == (peer.price, deal.cu_per_worker, now)
            worker = WorkerModel(
                log.workerId,
                deal.deal_id,
                peer,
                peer.provider,
                peer.price,
                deal.cu_per_worker,
                now,
                usage_reserve=deal.usage_reserve,
                claimed_until=now,
            )
            deal.workers.append(worker)
            self.workers[log.workerId] = worker
            peer.free_cus -= deal.cu_per_worker
            deal.rate += worker.rate

    @precondition(lambda self: any(worker.active for worker in self.workers.values()))
    @rule(data=st.data())
    def exit_worker(self, data):
        active = sorted(worker_id for worker_id, worker in self.workers.items() if worker.active)
        worker = self.workers[data.draw(st.sampled_from(active))]
        deal = self.deals[worker.deal_id]
        now = self.epoch

        receipt = self.dm.exitWorker(worker.worker_id, sender=worker.provider)

        self.apply_settle(deal, now, receipt)
        if now < deal.end:
            deal.rate -= worker.rate
        self.release(worker, min(now, deal.end))
        [log] = events(receipt, self.dm.WorkerLeft)
        assert (log.workerId, log.leftEpoch) == (worker.worker_id, worker.left)

    @precondition(lambda self: self.deals)
    @rule(data=st.data(), epochs=st.integers(min_value=1, max_value=3))
    def advance(self, data, epochs):
        self.epoch = self.env.clock.advance(epochs)

        assert self.dm.currentEpoch() == self.epoch
        # Hypothesis enables a random subset of rules per example. Proving and
        # claiming here as well, as nodes do when time passes, lets examples
        # without the prove or claim rule still pay providers.
        pairs = self.provable()
        if pairs:
            for worker_id, epoch in data.draw(st.lists(st.sampled_from(pairs), unique=True, max_size=3)):
                self.submit_proofs([(worker_id, epoch, 1)])
        # Providers claim some of the epochs whose proof window closed.
        claimable = self.claimable()
        if claimable:
            for worker_id in data.draw(st.lists(st.sampled_from(claimable), unique=True, max_size=2)):
                worker = self.workers[worker_id]
                self.claim_worker(worker, self.max_claim_epoch(worker))

    @precondition(lambda self: self.provable())
    @rule(
        data=st.data(),
        submit_twice=st.sampled_from([False, False, False, True]),
        fuel=st.integers(min_value=0, max_value=4_000_000),
    )
    def prove(self, data, submit_twice, fuel):
        """Prove one or more epochs of one peer's workers in one batch, with random metered fuel."""
        worker_id, epoch = data.draw(st.sampled_from(self.provable()))
        signer = self.workers[worker_id].peer.signer
        same_signer = [pair for pair in self.provable() if self.workers[pair[0]].peer.signer == signer]
        extra = data.draw(st.lists(st.sampled_from(same_signer), unique=True, max_size=3))
        pairs = [(worker_id, epoch)] + [pair for pair in extra if pair != (worker_id, epoch)]

        self.submit_proofs([(worker, at, fuel) for worker, at in pairs])

        if submit_twice:
            arguments = [worker_id, epoch, b"\x03" * 32, 2, 2]
            self.expect_revert("submitEpochProof", arguments, "DealProofAlreadySubmitted", sender=signer)

    def submit_proofs(self, entries) -> None:
        """Send (worker id, epoch, fuel) entries of one signer as one batch and check the batch log."""
        signer = self.workers[entries[0][0]].peer.signer
        batch = [(worker_id, epoch, b"\x02" * 32, 1, fuel) for worker_id, epoch, fuel in entries]

        receipt = self.dm.submitEpochProofs(batch, sender=signer)

        [log] = events(receipt, self.dm.EpochProofsSubmitted)
        # Entries decode as tuples: (workerId, epoch, receiptsRoot, calls, usage).
        assert [(entry[0], entry[1], entry[4]) for entry in log.entries] == [
            (worker_id, epoch, fuel) for worker_id, epoch, fuel in entries
        ]
        assert self.dm.proofBatchSubmittedAt(log.batchHash) > 0
        for worker_id, epoch, fuel in entries:
            self.proofs.add((worker_id, epoch))
            self.usage[(worker_id, epoch)] = fuel

    @precondition(lambda self: self.claimable())
    @rule(data=st.data())
    def claim(self, data):
        worker = self.workers[data.draw(st.sampled_from(self.claimable()))]
        max_to = self.max_claim_epoch(worker)
        assert self.dm.maxClaimEpoch(worker.worker_id) == max_to
        to_epoch = data.draw(st.integers(min_value=worker.claimed_until + 1, max_value=max_to))
        self.claim_worker(worker, to_epoch)

    def claim_worker(self, worker: WorkerModel, to_epoch: int) -> None:
        """Claim `[claimed_until, to_epoch)` and check the payout against the model's proofs and funded epochs."""
        deal = self.deals[worker.deal_id]
        now = self.epoch

        receipt = self.dm.claim(worker.worker_id, to_epoch, sender=worker.provider)

        self.apply_settle(deal, now, receipt)
        [log] = events(receipt, self.dm.WorkerClaimed)
        self.check_claim(worker, to_epoch, log)
        self.earnings[worker.provider] += log.paid

    def check_claim(self, worker: WorkerModel, to_epoch: int, log) -> None:
        """Check a WorkerClaimed log against the model's proofs, fuel and funded epochs, and book it."""
        deal = self.deals[worker.deal_id]
        epochs = range(worker.claimed_until, to_epoch)
        funded = [e for e in epochs if e in deal.funded]
        paid_epochs = [e for e in funded if (worker.worker_id, e) in self.proofs]
        usage_earned = sum(deal.usage_charge(self.usage[(worker.worker_id, e)]) for e in paid_epochs)
        expected_paid = len(paid_epochs) * worker.base_rate + usage_earned
        assert (log.fromEpoch, log.toEpoch, log.provenEpochs) == (worker.claimed_until, to_epoch, len(paid_epochs))
        assert log.paid == expected_paid
        assert log.returned == len(funded) * worker.rate - expected_paid
        for epoch in paid_epochs:
            # Invariant 2: paid only with an accepted proof, and only once.
            assert (worker.worker_id, epoch) not in self.paid
            self.paid.add((worker.worker_id, epoch))
        deal.pending -= log.paid + log.returned
        deal.balance += log.returned
        worker.claimed_until = to_epoch

    @precondition(lambda self: self.deals)
    @rule(data=st.data(), above_limit=st.sampled_from([False, False, False, True]))
    def withdraw(self, data, above_limit):
        deal = self.deals[data.draw(st.sampled_from(sorted(self.deals)))]
        now = self.epoch
        settlement = self.preview_settle(deal, now)
        balance = deal.balance - (settlement[3] if settlement else 0)
        settled = settlement[1] if settlement else deal.settled
        available = max(balance - self.reserve(deal, now, settled), 0)
        assert self.dm.withdrawable(deal.deal_id) == available
        if available == 0 and not above_limit:
            return
        amount = available + 1 if above_limit else data.draw(st.integers(1, available))

        if amount > available:
            self.expect_revert("withdraw", [deal.deal_id, amount], "DealWithdrawBelowReserve")
            return
        receipt = self.dm.withdraw(deal.deal_id, amount, sender=self.env.developer)

        self.apply_settle(deal, now, receipt)
        deal.balance -= amount
        # Invariant 4: a running deal keeps its reserve after a withdrawal.
        if not self.has_ended(deal, now):
            assert deal.balance >= self.reserve(deal, now, deal.settled)

    @precondition(lambda self: any(self.earnings.values()))
    @rule(data=st.data())
    def withdraw_earnings(self, data):
        owed_by = sorted(address for address, owed in self.earnings.items() if owed)
        address = data.draw(st.sampled_from(owed_by))
        provider = next(account for account in self.env.providers if account.address == address)
        owed = self.earnings[address]
        wallet = self.env.usdc.balanceOf(provider)

        self.dm.withdrawEarnings(self.env.usdc, sender=provider)

        assert self.env.usdc.balanceOf(provider) == wallet + owed
        self.earnings[address] = 0

    @precondition(lambda self: self.running_deals())
    @rule(data=st.data())
    def stop(self, data):
        deal = self.deals[data.draw(st.sampled_from(self.running_deals()))]
        now = self.epoch

        if deal.stopped or self.has_ended(deal, now):
            self.expect_revert("stopDeal", [deal.deal_id], "DealEnded")
            return
        receipt = self.dm.stopDeal(deal.deal_id, sender=self.env.developer)

        self.apply_settle(deal, now, receipt)
        deal.end = min(deal.end, now + 1)
        deal.stopped = True
        released = deal.active_workers()
        for worker in released:
            self.release(worker, deal.end)
        left = sorted((log.workerId, log.leftEpoch) for log in events(receipt, self.dm.WorkerLeft))
        assert left == sorted((worker.worker_id, deal.end) for worker in released)

    @precondition(lambda self: self.claimable())
    @rule(data=st.data())
    def claim_and_withdraw(self, data):
        """A provider claims several of its workers, some maybe with nothing due, and is paid at once."""
        first = self.workers[data.draw(st.sampled_from(self.claimable()))]
        provider = self.providers[first.provider].account
        own = sorted(w.worker_id for w in self.workers.values() if w.provider == first.provider)
        worker_ids = data.draw(st.lists(st.sampled_from(own), unique=True, max_size=3))
        worker_ids = [first.worker_id] + [worker_id for worker_id in worker_ids if worker_id != first.worker_id]
        wallet = self.env.usdc.balanceOf(provider)
        due = {worker_id: self.max_claim_epoch(self.workers[worker_id]) for worker_id in worker_ids}
        now = self.epoch

        receipt = self.dm.claimAndWithdraw(worker_ids, sender=provider)

        for worker_id in worker_ids:
            # Settlement happens once per deal, at the first of its workers.
            deal = self.deals[self.workers[worker_id].deal_id]
            settle_logs = [log for log in events(receipt, self.dm.DealSettled) if log.dealId == deal.deal_id]
            if settle_logs and deal.settled < settle_logs[0].toEpoch:
                self.apply_settle_log(deal, now, settle_logs[0])
        claims = {log.workerId: log for log in events(receipt, self.dm.WorkerClaimed)}
        expected = [worker_id for worker_id in worker_ids if due[worker_id] > self.workers[worker_id].claimed_until]
        assert sorted(claims) == sorted(expected)
        for worker_id in expected:
            self.check_claim(self.workers[worker_id], due[worker_id], claims[worker_id])
        paid = sum(log.paid for log in claims.values())
        assert self.env.usdc.balanceOf(provider) == wallet + paid

    @rule(data=st.data(), price=PRICES)
    def set_price(self, data, price):
        """A new price applies to new matches only: workers keep the price they were matched at."""
        peer = data.draw(st.sampled_from(self.peers))
        provider = self.providers[peer.provider].account

        self.env.market.setOfferPrice(peer.offer_id, price, sender=provider)

        peer.price = price

    @rule(data=st.data())
    def toggle_pause(self, data):
        peer = data.draw(st.sampled_from(self.peers))
        provider = self.providers[peer.provider].account

        self.env.market.setOfferPaused(peer.offer_id, not peer.paused, sender=provider)

        peer.paused = not peer.paused

    @rule(data=st.data(), total_cus=st.integers(min_value=1, max_value=8))
    def set_capacity(self, data, total_cus):
        """Add or remove capacity; used CUs and the stake bound what is allowed."""
        peer = data.draw(st.sampled_from(self.peers))
        model = self.providers[peer.provider]
        used = peer.total_cus - peer.free_cus
        others = sum(p.total_cus for p in self.peers if p.provider == peer.provider and p is not peer)
        required = COLLATERAL_PER_CU * (others + total_cus)
        arguments = [peer.peer_id, total_cus]

        if total_cus < used:
            self.expect_revert("setPeerCapacity", arguments, "MarketCapacityInUse", model.account, self.env.market)
            return
        if total_cus > peer.total_cus and model.stake < required:
            self.expect_revert("setPeerCapacity", arguments, "MarketInsufficientStake", model.account, self.env.market)
            return
        self.env.market.setPeerCapacity(peer.peer_id, total_cus, sender=model.account)

        peer.free_cus = total_cus - used
        peer.total_cus = total_cus

    @rule(data=st.data(), amount=SLASH_AMOUNTS, with_reporter=st.booleans())
    def slash(self, data, amount, with_reporter):
        """Slashing takes stake, then unbonding FLT, and pays the reporter half."""
        model = self.providers[data.draw(st.sampled_from(sorted(self.providers)))]
        reporter = self.env.stranger.address if with_reporter else ZERO_ADDRESS
        from_stake = min(amount, model.stake)
        from_unbonding = min(amount - from_stake, model.unbonding)
        slashed = from_stake + from_unbonding
        if slashed == 0:
            return

        receipt = self.env.market.slash(model.account, amount, reporter, b"fuzz".ljust(32, b"\0"), sender=self.env.admin)

        [log] = events(receipt, self.env.market.ProviderSlashed)
        share = slashed // 2 if with_reporter else 0
        assert (log.amount, log.reporterShare) == (slashed, share)
        model.stake -= from_stake
        model.unbonding -= from_unbonding
        self.slash_rewards += share
        self.treasury += slashed - share

    @rule(data=st.data(), amount=st.sampled_from([1 * FLT, 1_000 * FLT, 9_990 * FLT]))
    def request_unstake(self, data, amount):
        """The stake left after an unstake request must still cover every offered CU."""
        model = self.providers[data.draw(st.sampled_from(sorted(self.providers)))]
        total_cus = sum(peer.total_cus for peer in self.peers if peer.provider == model.account.address)

        if model.stake < COLLATERAL_PER_CU * total_cus + amount:
            self.expect_revert("requestUnstake", [amount], "MarketInsufficientStake", model.account, self.env.market)
            return
        self.env.market.requestUnstake(amount, sender=model.account)

        model.stake -= amount
        model.unbonding += amount

    # ------------------------------------------------------------- invariants

    def read_chain(self):
        """Return (token balance, stored deals, on-chain earnings, stored peers) in one batch request."""
        env = self.env
        deal_ids = sorted(self.deals)
        env.reader.add(env.usdc, "balanceOf", self.dm.address)
        for deal_id in deal_ids:
            env.reader.add(self.dm, "getDeal", deal_id)
        for provider in env.providers:
            env.reader.add(self.dm, "earnings", provider.address, env.usdc.address)
        for peer in self.peers:
            env.reader.add(env.market, "getPeer", peer.peer_id)
        results = env.reader.execute()
        token_balance = results[0]
        deals = dict(zip(deal_ids, results[1 : 1 + len(deal_ids)], strict=True))
        earnings_start = 1 + len(deal_ids)
        earnings = results[earnings_start : earnings_start + len(env.providers)]
        peers = results[earnings_start + len(env.providers) :]
        return token_balance, deals, earnings, peers

    def read_stake(self):
        """Return (Market FLT balance, stored providers, slash rewards of the reporter, treasury) in one batch."""
        env = self.env
        env.reader.add(env.flt, "balanceOf", env.market.address)
        for account in env.providers:
            env.reader.add(env.market, "getProvider", account.address)
        env.reader.add(env.market, "slashRewards", env.stranger.address)
        env.reader.add(env.market, "treasuryBalance")
        results = env.reader.execute()
        return results[0], results[1:-2], results[-2], results[-1]

    @invariant()
    def chain_matches_model(self):
        token_balance, deals, earnings, peers = self.read_chain()

        # Invariant 1: each token in the DealManager's balance belongs to a deal or to earnings.
        assert token_balance == sum(deal.balance + deal.pending for deal in deals.values()) + sum(earnings)
        assert sum(earnings) == sum(self.earnings.values())

        # Invariant 4: balances and pending amounts follow the model, so they never go negative.
        for deal_id, stored in deals.items():
            deal = self.deals[deal_id]
            assert deal.balance >= 0
            assert deal.pending >= 0
            assert (stored.balance, stored.pending, stored.settledEpoch) == (
                deal.balance,
                deal.pending,
                deal.settled,
            )
            assert (stored.ratePerEpoch, stored.endEpoch, stored.stopped) == (deal.rate, deal.end, deal.stopped)
            assert stored.activeWorkers == len(deal.active_workers())

        # Invariant 5: a peer's free CUs plus its active workers' CUs are its total.
        for peer, stored in zip(self.peers, peers, strict=True):
            active_cus = sum(w.cus for w in self.workers.values() if w.active and w.peer is peer)
            assert stored.freeCus + active_cus == stored.totalCus
            assert (stored.freeCus, stored.totalCus) == (peer.free_cus, peer.total_cus)

    @invariant()
    def stake_matches_model(self):
        flt_balance, providers, rewards, treasury = self.read_stake()

        # Invariant 1 for FLT: every FLT wei in the Market is someone's stake,
        # unbonding amount, slash reward or the treasury's.
        assert flt_balance == sum(p.stake + p.unbonding for p in providers) + rewards + treasury
        assert (rewards, treasury) == (self.slash_rewards, self.treasury)
        for account, stored in zip(self.env.providers, providers, strict=True):
            model = self.providers[account.address]
            assert (stored.stake, stored.unbonding) == (model.stake, model.unbonding)


def test_deal_state_machine(
    chain, clock, build, deal_manager, market, usdc, flt, admin, developer, stranger, providers, signers
):
    DealMachine.environment = Environment(
        SimpleNamespace(
            chain=chain,
            clock=clock,
            build=build,
            deal_manager=deal_manager,
            market=market,
            usdc=usdc,
            flt=flt,
            admin=admin,
            developer=developer,
            stranger=stranger,
            providers=providers,
            signers=signers,
        )
    )
    run_state_machine_as_test(
        DealMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
