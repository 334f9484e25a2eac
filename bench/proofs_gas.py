"""Gas of epoch proofs, challenges, answers and fraud proofs on a fresh local anvil.

`measure_proof_gas()` starts anvil on 127.0.0.1, deploys the real contracts
with a challenge window, places one deal's three workers on three providers,
and builds real receipts: requests signed by the caller, receipts signed by
each worker's peer signer, in Merkle trees of 1, 16 and 1024 leaves. It then
sends every transaction of the challenge game once and reads `gasUsed` from
its receipt.

Timeline, with J the epoch in which the workers joined, a proof window of 10
epochs and a challenge window of 4 (an epoch is an hour of chain time, which
the benchmark moves itself):

- epoch J+11: worker 1 proves epochs J+1, J+2 and J+3 (trees of 1, 16 and
  1024 receipts) in one-entry batches, and worker 2 proves J+1 to J+10 in one
  batch of ten. Worker 3 proves nothing.
- epoch J+14 (inside every challenge window): an uncounted challenge and
  answer of worker 2's epoch J+2, then RECEIPT challenges of worker 1's three
  epochs and their answers, a SAMPLE challenge of worker 2's epoch J+1 that
  stays unanswered, an uncounted equivocation by worker 2, the missed proof
  of worker 3's epoch J+1, and an equivocation and a 2-against-1
  disagreement by worker 3.
- one answer period later: `resolveUnanswered` of the SAMPLE challenge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from gas_market import check, measure, metered_session

from cloudless.chain import DeploySettings
from cloudless.chain.challenges import ChallengeStatus, Fault
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams, EpochProofEntry, OfferTerms, PeerSpec, ProofBatch
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.merkle import ReceiptMerkleTree
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = ["GasRow", "ProofGasResults", "measure_proof_gas"]

EPOCH_SECONDS = 3600
PROOF_WINDOW_EPOCHS = 10  # room for one batch of ten epochs of one worker
CHALLENGE_WINDOW_EPOCHS = 4
ANSWER_PERIOD_SECONDS = EPOCH_SECONDS
TREE_SIZES = (1, 16, 1024)
BATCH_SIZE = 10

ADMIN_ACCOUNT = 0
PROVIDER_ACCOUNTS = (1, 2, 3)
DEVELOPER_ACCOUNT = 5
CHALLENGER_ACCOUNT = 6
CALLER_ACCOUNT = 7
SIGNER_ACCOUNTS = (10, 11, 12)  # one peer signer per provider
PROVIDER_STAKE_FLT = "1000"  # room for several slashes of 100 FLT
PEER_CUS = 4


@dataclass(frozen=True)
class GasRow:
    operation: str
    gas: int
    note: str = ""


@dataclass(frozen=True)
class ProofGasResults:
    rows: list[GasRow]
    answer_gas: dict[int, int]  # receipts in the tree -> gas of answerChallenge

    def gas_per_tree_level(self) -> float:
        """Gas each doubling of the tree adds to an answer, from the trees of 16 and 1024 receipts."""
        levels = math.log2(1024) - math.log2(16)
        return (self.answer_gas[1024] - self.answer_gas[16]) / levels


@dataclass(frozen=True)
class WorkerAccount:
    worker_id: int
    signer: Session  # the peer signer: proofs and answers
    signer_key: str


@dataclass(frozen=True)
class EpochCalls:
    """One worker's calls in one epoch: signed requests and receipts in sequence order, and their tree."""

    worker_id: int
    epoch: int
    requests: tuple[SignedCallRequest, ...]
    receipts: tuple[SignedReceipt, ...]
    tree: ReceiptMerkleTree

    def proof_entry(self) -> EpochProofEntry:
        return EpochProofEntry(
            worker_id=self.worker_id,
            epoch=self.epoch,
            receipts_root=self.tree.root,
            calls=len(self.tree),
            usage=self.tree.total_fuel,
        )


@dataclass
class ProofChain:
    chain: LocalChain
    domain: Domain
    deal_id: int
    app_cid: bytes
    joined_epoch: int
    workers: list[WorkerAccount]
    challenger: Session
    caller_key: str = field(default_factory=lambda: anvil_account_key(CALLER_ACCOUNT))
    _nonce: int = 0

    def next_nonce(self) -> int:
        self._nonce += 1
        return self._nonce

    def move_to_epoch(self, epoch: int) -> None:
        """Move chain time to the first second of `epoch`, which must not have started yet."""
        start = self.chain.deployment.epoch.genesis + epoch * EPOCH_SECONDS
        now = int(self.challenger.client.w3.eth.get_block("latest")["timestamp"])
        check(start > now, f"epoch {epoch} already started at {start}, and the chain is at {now}")
        self.chain.rpc("evm_increaseTime", start - now)
        self.chain.rpc("evm_mine")
        current = self.challenger.deals.current_epoch()
        check(current == epoch, f"moved to epoch {epoch}, but the DealManager is in epoch {current}")

    def sign_request(self, function_name: str = "echo") -> SignedCallRequest:
        nonce = self.next_nonce()
        request = CallRequest.for_input(
            deal_id=self.deal_id,
            function_name=function_name,
            input=b'{"value": %d}' % nonce,
            nonce=nonce,
            deadline=2**40,  # far after every epoch here, so no receipt counts as EXPIRED_REQUEST
        )
        return SignedCallRequest.sign(request, self.caller_key, self.domain)

    def sign_receipt(
        self, worker: WorkerAccount, request: SignedCallRequest, *, epoch: int, sequence: int, output: bytes, fuel: int
    ) -> SignedReceipt:
        receipt = Receipt(
            worker_id=worker.worker_id,
            request_hash=request.digest(self.domain),
            app_cid=self.app_cid,
            output_hash=hash_output(output),
            fuel_used=fuel,
            epoch=epoch,
            sequence=sequence,
        )
        return SignedReceipt.sign(receipt, worker.signer_key, self.domain)

    def epoch_calls(self, worker: WorkerAccount, epoch: int, count: int, first_sequence: int = 0) -> EpochCalls:
        """Sign `count` calls of `worker` in `epoch` and build their receipts tree."""
        requests = [self.sign_request() for _ in range(count)]
        receipts = [
            self.sign_receipt(
                worker,
                request,
                epoch=epoch,
                sequence=first_sequence + position,
                output=b"output %d" % position,
                fuel=50_000 + 17 * position,
            )
            for position, request in enumerate(requests)
        ]
        tree = ReceiptMerkleTree((receipt.digest(self.domain), receipt.fuel_used) for receipt in receipts)
        return EpochCalls(worker.worker_id, epoch, tuple(requests), tuple(receipts), tree)

    def batch_of(self, calls: EpochCalls) -> ProofBatch:
        batch = self.challenger.deals.proof_batch(calls.worker_id, calls.epoch)
        check(batch is not None, f"no recorded proof batch for worker {calls.worker_id} epoch {calls.epoch}")
        assert batch is not None
        return batch


@contextmanager
def proof_chain() -> Iterator[ProofChain]:
    """Start anvil, deploy, register three providers, place a 3-worker deal and fund the challenger."""
    settings = DeploySettings(
        epoch_duration=EPOCH_SECONDS,
        proof_window_epochs=PROOF_WINDOW_EPOCHS,
        challenge_window_epochs=CHALLENGE_WINDOW_EPOCHS,
        answer_period=ANSWER_PERIOD_SECONDS,
    )
    with local_chain(settings) as chain:
        admin = chain.session(ADMIN_ACCOUNT)
        peer_ids = [_register_provider(chain, admin, account, signer) for account, signer in zip(PROVIDER_ACCOUNTS, SIGNER_ACCOUNTS)]

        developer = chain.session(DEVELOPER_ACCOUNT)
        admin.fund(developer.address, usdc=developer.usdc.parse("10000"))
        app_cid = cid_to_bytes(compute_cid(b"proofs benchmark package"))
        deal_id = developer.create_deal(
            DealParams(
                app_cid=app_cid,
                payment_token=developer.usdc.address,
                max_price_per_cu_per_epoch=developer.usdc.parse("0.3"),
                deposit=developer.usdc.parse("1000"),
                min_workers=3,
                target_workers=3,
            )
        )
        match = developer.deals.match_deal(deal_id, peer_ids)
        check(len(match.worker_ids) == 3, f"matchDeal of deal {deal_id} placed {len(match.worker_ids)} of 3 workers")
        joined_epoch = developer.deals.get_worker(match.worker_ids[0]).joined_epoch

        challenger = metered_session(chain, CHALLENGER_ACCOUNT)
        admin.fund(challenger.address, flt=100 * settings.challenge_bond)
        challenger.challenges.approve_bonds(challenger.flt.contract, count=100)

        workers = [
            WorkerAccount(worker_id, metered_session(chain, signer), anvil_account_key(signer))
            for worker_id, signer in zip(match.worker_ids, SIGNER_ACCOUNTS)
        ]
        domain = Domain(chain_id=chain.deployment.chain_id, verifying_contract=chain.deployment.address("ExecutionReceipts"))
        yield ProofChain(chain, domain, deal_id, app_cid, joined_epoch, workers, challenger)


def _register_provider(chain: LocalChain, admin: Session, account: int, signer_account: int) -> int:
    session = chain.session(account)
    stake = session.flt.parse(PROVIDER_STAKE_FLT)
    # One FLT more than the stake, so the bond an answer pays the provider
    # does not write its FLT balance from zero.
    admin.fund(session.address, flt=stake + session.flt.parse("1"))
    terms = OfferTerms(
        payment_token=session.usdc.address,
        price_per_cu_per_epoch=session.usdc.parse("0.2"),
        region=276,
        tier=3,
        sla_bps=9990,
    )
    signer = chain.session(signer_account).address
    offer_id = session.register_provider(f"provider {account}", stake=stake, terms=terms, peers=[PeerSpec(signer=signer, cus=PEER_CUS)])
    (peer_id,) = session.market.get_offer(offer_id).peer_ids
    return int(peer_id)


# --------------------------------------------------------------------------- the measurements


def measure_proof_gas(report: Callable[[str], None] = lambda _: None) -> ProofGasResults:
    """Run the timeline in the module docstring on a fresh chain and return the gas of each step."""
    report("starting anvil, deploying, registering 3 providers and a 3-worker deal")
    with proof_chain() as bench:
        first, second, third = bench.workers
        joined = bench.joined_epoch

        report("signing receipts for trees of 1, 16 and 1024 leaves")
        answered = [bench.epoch_calls(first, joined + 1 + position, size) for position, size in enumerate(TREE_SIZES)]
        sampled = bench.epoch_calls(second, joined + 1, 16)
        batch_calls = [sampled] + [bench.epoch_calls(second, joined + offset, 2) for offset in range(2, BATCH_SIZE + 1)]

        report("submitting epoch proofs")
        rows = _submit_proofs(bench, first, second, answered, batch_calls, prove_at=joined + BATCH_SIZE + 1)

        report("opening and answering challenges")
        bench.move_to_epoch(joined + 1 + len(TREE_SIZES) + PROOF_WINDOW_EPOCHS)
        # A first challenge and answer write storage slots from zero (the
        # challenge counter, the ChallengeManager's FLT balance), which costs
        # about 17,000 gas more per slot. This one is not counted, so the rows
        # below show what any later challenge costs.
        _challenge_and_answer(bench, second, batch_calls[1])
        answer_gas: dict[int, int] = {}
        challenge_gas: dict[int, int] = {}
        for calls in answered:
            size = len(calls.tree)
            challenge_gas[size], gas = _challenge_and_answer(bench, first, calls)
            depth = len(calls.tree.proof(0))
            next_leaf = "next leaf checked" if size > 1 else "last leaf: no next leaf, fuel total checked"
            rows.append(GasRow(f"answerChallenge, tree of {size}", gas, f"Merkle depth {depth}, {next_leaf}"))
            answer_gas[size] = gas
        # A RECEIPT challenge hashes and checks one receipt and does no Merkle work, so the tree size must not matter.
        spread = max(challenge_gas.values()) - min(challenge_gas.values())
        check(spread < 1_000, f"challengeReceipt gas varies by {spread} with the tree size: {challenge_gas}")
        rows.insert(
            2,
            GasRow("challengeReceipt", challenge_gas[TREE_SIZES[0]], "batch of 1 entry, same for trees of 1, 16 and 1024"),
        )

        sample_id, gas = measure(bench.challenger, lambda: bench.challenger.challenges.challenge_sample(bench.batch_of(sampled)))
        rows.append(GasRow("challengeSample", gas, f"batch of {BATCH_SIZE} entries, left unanswered"))

        report("sending fraud proofs")
        rows += _fraud_proofs(bench, first, second, third)

        report("resolving the unanswered challenge")
        bench.chain.rpc("evm_increaseTime", ANSWER_PERIOD_SECONDS + 1)
        bench.chain.rpc("evm_mine")
        _, gas = measure(bench.challenger, lambda: bench.challenger.challenges.resolve_unanswered(sample_id))
        status = bench.challenger.challenges.get_challenge(sample_id).status
        check(status == ChallengeStatus.UPHELD, f"resolveUnanswered left challenge {sample_id} {status.name}")
        rows.append(GasRow("resolveUnanswered", gas, "slashes, returns the bond"))
    return ProofGasResults(rows, answer_gas)


def _submit_proofs(
    bench: ProofChain,
    first: WorkerAccount,
    second: WorkerAccount,
    answered: Sequence[EpochCalls],
    batch_calls: Sequence[EpochCalls],
    *,
    prove_at: int,
) -> list[GasRow]:
    bench.move_to_epoch(prove_at)
    rows = []
    for position, calls in enumerate(answered):
        _, gas = measure(first.signer, lambda: first.signer.deals.submit_epoch_proofs([calls.proof_entry()]))
        if position == 0:
            rows.append(GasRow("submitEpochProofs, 1 entry", gas, "first proof of the worker"))
    entries = [calls.proof_entry() for calls in batch_calls]
    _, gas = measure(second.signer, lambda: second.signer.deals.submit_epoch_proofs(entries))
    rows.append(GasRow(f"submitEpochProofs, {len(entries)} entries", gas, f"{gas / len(entries):,.0f} per entry"))
    return rows


def _challenge_and_answer(bench: ProofChain, worker: WorkerAccount, calls: EpochCalls) -> tuple[int, int]:
    """Challenge the epoch to contain its first receipt, answer with leaf 0, and return both gas amounts."""
    challenges = bench.challenger.challenges
    challenge_id, challenge_gas = measure(
        bench.challenger, lambda: challenges.challenge_receipt(bench.batch_of(calls), calls.receipts[0])
    )
    next_leaf = calls.tree.opening(1) if len(calls.tree) > 1 else None
    status, gas = measure(
        worker.signer,
        lambda: worker.signer.challenges.answer(
            challenge_id, calls.requests[0], calls.receipts[0], calls.tree.opening(0), next_leaf
        ),
    )
    check(
        status == ChallengeStatus.ANSWERED,
        f"answer to challenge {challenge_id} (tree of {len(calls.tree)}) left it {status.name}",
    )
    return challenge_gas, gas


def _fraud_proofs(bench: ProofChain, first: WorkerAccount, second: WorkerAccount, third: WorkerAccount) -> list[GasRow]:
    challenges = bench.challenger.challenges
    epoch = bench.joined_epoch + 1
    rows = []

    # The first slash of a deployment writes the Market's treasury and the
    # reporter's reward from zero. This equivocation takes that cost and is not counted.
    request = bench.sign_request()
    one = bench.sign_receipt(second, request, epoch=epoch, sequence=0, output=b"one output", fuel=1_000)
    other = bench.sign_receipt(second, request, epoch=epoch, sequence=1, output=b"another output", fuel=1_000)
    challenges.prove_equivocation(one, other)

    proof, gas = measure(bench.challenger, lambda: challenges.report_missed_proof(third.worker_id, epoch))
    check(proof.fault == Fault.MISSED_PROOF, f"reportMissedProof proved {proof.fault.name}")
    rows.append(GasRow("reportMissedProof", gas, "worker 3 never proved its epoch"))

    request = bench.sign_request()
    one = bench.sign_receipt(third, request, epoch=epoch, sequence=0, output=b"one output", fuel=1_000)
    other = bench.sign_receipt(third, request, epoch=epoch, sequence=1, output=b"another output", fuel=1_000)
    proof, gas = measure(bench.challenger, lambda: challenges.prove_equivocation(one, other))
    check(proof.fault == Fault.EQUIVOCATION, f"proveEquivocation proved {proof.fault.name}")
    rows.append(GasRow("proveEquivocation", gas, "two receipts of one request, two outputs"))

    request = bench.sign_request()
    majority = [
        bench.sign_receipt(worker, request, epoch=epoch, sequence=5, output=b"agreed output", fuel=2_000)
        for worker in (first, second)
    ]
    minority = bench.sign_receipt(third, request, epoch=epoch, sequence=5, output=b"odd output", fuel=2_000)
    proof, gas = measure(bench.challenger, lambda: challenges.prove_disagreement(request, majority, minority))
    check(proof.fault == Fault.DISAGREEMENT, f"proveDisagreement proved {proof.fault.name}")
    rows.append(GasRow("proveDisagreement, 2 against 1", gas, "request signature and 3 receipt signatures checked"))
    return rows

