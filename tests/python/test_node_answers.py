"""Automatic challenge answers against a real anvil and a real deployment.

One module fixture deploys with a 1-epoch proof window and a 2-epoch
challenge window (so a 60 s answer period), registers a provider with one
peer, places a one-worker deal on it, stores three calls of one epoch the way
the node does, and proves the epoch with the node's prover. The tests then
run in order: the timeline of the epoch moves forward only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from cloudless.chain import DeploySettings
from cloudless.chain.challenges import ChallengeStatus
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams, OfferTerms, PeerSpec
from cloudless.node.answers import AnswerResult, ChallengeAnswerer
from cloudless.node.cheats import Cheats
from cloudless.node.epoch_records import EpochRecords
from cloudless.node.evidence_store import CallEvidence, EvidenceStore
from cloudless.node.prover import EpochClock, EpochProver
from cloudless.node.workers import TrackedWorker, WorkerTracker
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.receipts.store import ReceiptStore

PROVIDER, DEVELOPER, CALLER, CHALLENGER, SIGNER = 1, 5, 7, 9, 10
EPOCH_SECONDS = 60
PROOF_WINDOW = 1
CHALLENGE_WINDOW = 2
APP_CID = b"\x01\x55\x12\x20" + keccak(b"answers app")


@dataclass
class World:
    chain: LocalChain
    provider: Session
    signer: Session
    challenger: Session
    tracker: WorkerTracker
    records: EpochRecords
    domain: Domain
    worker_id: int
    deal_id: int
    epoch: int  # the epoch with the stored calls
    receipts: list[SignedReceipt]

    def tracked(self) -> TrackedWorker:
        self.tracker.sync()
        tracked = self.tracker.get(self.worker_id)
        assert tracked is not None
        return tracked

    def answerer(self, *cheats: str) -> ChallengeAnswerer:
        """A new answerer, as a restarted node builds it: it scans from the deployment block."""
        return ChallengeAnswerer(
            session=self.provider,
            signers={self.signer.address: self.signer},
            tracker=self.tracker,
            records=self.records,
            start_block=self.chain.deployment.start_block,
            cheats=Cheats(cheats),
        )

    def prover(self, **options: object) -> EpochProver:
        return EpochProver(
            self.provider,
            {self.signer.address: self.signer},
            self.records,
            EpochClock(self.provider),
            proof_window_epochs=PROOF_WINDOW,
            **options,  # type: ignore[arg-type]
        )

    def move_into_epoch(self, epoch: int, seconds: int = 1) -> None:
        """Set chain time to `seconds` after the start of `epoch` and mine a block."""
        deals = self.provider.deals
        target = deals.genesis() + epoch * deals.epoch_duration() + seconds
        self.chain.rpc("evm_setNextBlockTimestamp", target)
        self.chain.rpc("evm_mine")
        assert deals.current_epoch() == epoch

    def chain_time(self) -> int:
        return int(self.provider.client.w3.eth.get_block("latest")["timestamp"])

    def signed_receipt(self, request_hash: bytes, sequence: int, fuel: int) -> SignedReceipt:
        receipt = Receipt(
            worker_id=self.worker_id,
            request_hash=request_hash,
            app_cid=APP_CID,
            output_hash=hash_output(request_hash),
            fuel_used=fuel,
            epoch=self.epoch,
            sequence=sequence,
        )
        return SignedReceipt.sign(receipt, anvil_account_key(SIGNER), self.domain)


def store_calls(world: World, count: int) -> list[SignedReceipt]:
    """Store `count` signed calls and their receipts in the world's epoch, the call first, as CallService does."""
    stored = []
    for index in range(count):
        input_bytes = f'{{"call":{index}}}'.encode()
        request = CallRequest.for_input(
            deal_id=world.deal_id,
            function_name="echo",
            input=input_bytes,
            nonce=time.time_ns(),
            deadline=world.chain_time() + 3600,
        )
        signed = SignedCallRequest.sign(request, anvil_account_key(CALLER), world.domain)
        call = CallEvidence(request_hash=signed.digest(world.domain), request=signed, input=input_bytes)
        world.records.evidence.append(world.worker_id, world.epoch, call)
        stored.append(
            world.records.store.append_next(
                world.worker_id, lambda sequence: world.signed_receipt(call.request_hash, sequence, 1_000 + index)
            )
        )
    return stored


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("answers")
    settings = DeploySettings(
        epoch_duration=EPOCH_SECONDS, proof_window_epochs=PROOF_WINDOW, challenge_window_epochs=CHALLENGE_WINDOW
    )
    with local_chain(settings) as chain:
        admin, provider, developer = chain.session(0), chain.session(PROVIDER), chain.session(DEVELOPER)
        signer, challenger = chain.session(SIGNER), chain.session(CHALLENGER)
        stake = 2 * chain.deployment.collateral_per_cu
        admin.fund(provider.address, flt=stake)
        admin.fund(developer.address, usdc=admin.usdc.parse("1000"))
        admin.fund(challenger.address, flt=100 * 10**18)
        provider.register_provider(
            "answers",
            stake=stake,
            terms=OfferTerms(
                payment_token=provider.usdc.address,
                price_per_cu_per_epoch=provider.usdc.parse("0.2"),
                region=276,
                tier=3,
                sla_bps=9990,
            ),
            peers=[PeerSpec(signer=signer.address, cus=2)],
        )
        peer_id = provider.market.peer_id_by_signer(signer.address)
        deal_id = developer.create_deal(
            DealParams(
                app_cid=APP_CID,
                payment_token=developer.usdc.address,
                max_price_per_cu_per_epoch=developer.usdc.parse("1"),
                deposit=developer.usdc.parse("100"),
            )
        )
        (worker_id,) = developer.deals.match_deal(deal_id, [peer_id]).worker_ids
        domain = Domain(chain_id=chain.deployment.chain_id, verifying_contract=chain.deployment.address("ExecutionReceipts"))
        tracker = WorkerTracker(provider, {peer_id: signer.address}, chain.deployment.start_block)
        store = ReceiptStore(directory / "receipts", domain)
        evidence = EvidenceStore(directory / "evidence")
        try:
            records = EpochRecords(store, evidence, EpochClock(provider))
            epoch = provider.deals.current_epoch()
            built = World(chain, provider, signer, challenger, tracker, records, domain, worker_id, deal_id, epoch, [])
            built.receipts = store_calls(built, 3)
            built.move_into_epoch(epoch + 1)
            yield built
        finally:
            evidence.close()
            store.close()


def test_skip_proofs_submits_nothing(world: World) -> None:
    sent = world.prover(skip_proofs=True).prove(world.tracked(), world.epoch + 1)

    assert sent == 0
    assert not world.provider.deals.get_epoch_proof(world.worker_id, world.epoch).proven


def test_prover_submits_the_records_summary(world: World) -> None:
    sent = world.prover().prove(world.tracked(), world.epoch + 1)

    entry = world.provider.deals.proof_entry(world.worker_id, world.epoch)
    summary = world.records.summary(world.worker_id, world.epoch)
    assert sent == 1
    assert entry is not None
    assert (entry.receipts_root, entry.calls, entry.usage) == (summary.root, 3, 3_003)


def test_sample_challenge_is_answered(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.move_into_epoch(world.epoch + PROOF_WINDOW + 1)
    challenges = world.challenger.challenges
    challenges.approve_bonds(world.challenger.flt.contract, count=4)
    batch = world.challenger.deals.proof_batch(world.worker_id, world.epoch)
    assert batch is not None
    provider_flt = world.provider.flt.balance_of(world.provider.address)
    challenge_id = challenges.challenge_sample(batch)
    assert not world.provider.deals.get_epoch_proof(world.worker_id, world.epoch).proven, "a challenge forfeits the epoch"

    with caplog.at_level(logging.INFO, logger="cloudless.node"):
        outcomes = world.answerer().run_once()

    challenge = challenges.get_challenge(challenge_id)
    assert [(outcome.challenge_id, outcome.result) for outcome in outcomes] == [(challenge_id, AnswerResult.ANSWERED)]
    assert challenge.status == ChallengeStatus.ANSWERED
    assert world.provider.flt.balance_of(world.provider.address) == provider_flt + challenge.bond
    assert world.provider.deals.get_epoch_proof(world.worker_id, world.epoch).proven, "the answer restores the epoch"
    assert f"challenge {challenge_id} of deal {world.deal_id} worker {world.worker_id} epoch {world.epoch}: SAMPLE" in caplog.text
    assert f"answered challenge {challenge_id} of deal {world.deal_id}" in caplog.text
    assert "ANSWERED" in caplog.text


def test_receipt_challenge_answered_after_restart(world: World, caplog: pytest.LogCaptureFixture) -> None:
    challenges = world.challenger.challenges
    batch = world.challenger.deals.proof_batch(world.worker_id, world.epoch)
    assert batch is not None
    challenge_id = challenges.challenge_receipt(batch, world.receipts[0])

    ignoring = world.answerer("ignore_challenges")
    with caplog.at_level(logging.WARNING, logger="cloudless.node"):
        ignored = ignoring.run_once()
    assert [outcome.result for outcome in ignored] == [AnswerResult.IGNORED]
    assert challenges.get_challenge(challenge_id).status == ChallengeStatus.OPEN
    assert ignoring.has_open_challenge(world.worker_id)
    assert f"cheat ignore_challenges: not answering challenge {challenge_id}" in caplog.text

    restarted = world.answerer()
    outcomes = restarted.run_once()

    assert [(outcome.challenge_id, outcome.result) for outcome in outcomes] == [(challenge_id, AnswerResult.ANSWERED)]
    assert challenges.get_challenge(challenge_id).status == ChallengeStatus.ANSWERED
    assert not restarted.has_open_challenge(world.worker_id)
    assert restarted.open_epochs() == set()


def test_missing_receipt_is_logged_and_keeps_the_epoch(world: World, caplog: pytest.LogCaptureFixture) -> None:
    challenges = world.challenger.challenges
    batch = world.challenger.deals.proof_batch(world.worker_id, world.epoch)
    assert batch is not None
    # A receipt the peer signed but the node never stored.
    forgotten = world.signed_receipt(keccak(b"forgotten request"), sequence=99, fuel=5)
    challenge_id = challenges.challenge_receipt(batch, forgotten)
    answerer = world.answerer()

    with caplog.at_level(logging.ERROR, logger="cloudless.node"):
        outcomes = answerer.run_once()
        answerer.run_once()

    assert [(outcome.challenge_id, outcome.result) for outcome in outcomes] == [(challenge_id, AnswerResult.FAILED)]
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1, "an unanswerable challenge is reported once"
    assert f"cannot answer challenge {challenge_id} of deal {world.deal_id} worker {world.worker_id} epoch {world.epoch}" in errors[0]
    assert "not stored" in errors[0]
    assert challenges.get_challenge(challenge_id).status == ChallengeStatus.OPEN
    assert answerer.has_open_challenge(world.worker_id)
    assert answerer.open_epochs() == {(world.worker_id, world.epoch)}

    # Claims have opened; the challenge is past its deadline, still open.
    world.move_into_epoch(world.epoch + PROOF_WINDOW + CHALLENGE_WINDOW + 1)
    answerer.run_once()
    assert world.records.prune(world.epoch + 1, answerer.open_epochs()) == {}, "an epoch with an open challenge stays"
    assert world.records.store.epochs(world.worker_id) == [world.epoch]

    world.challenger.challenges.resolve_unanswered(challenge_id)
    answerer.run_once()
    assert answerer.open_epochs() == set()
    assert world.records.prune(world.epoch + 1, answerer.open_epochs()) == {world.worker_id: [world.epoch]}


def test_claim_waits_for_open_challenge(world: World, caplog: pytest.LogCaptureFixture) -> None:
    tracked = world.tracked()
    assert world.provider.deals.max_claim_epoch(world.worker_id) > tracked.worker.claimed_until_epoch

    with caplog.at_level(logging.INFO, logger="cloudless.node"):
        waiting = world.prover(has_open_challenge=lambda worker_id: True).claim(tracked)
    claimed = world.prover().claim(world.tracked())

    assert waiting is None
    assert f"not claiming deal {world.deal_id} worker {world.worker_id} while a challenge of it is open" in caplog.text
    assert claimed is not None
    assert world.provider.deals.get_worker(world.worker_id).claimed_until_epoch > world.epoch


def test_signer_of_other_node_is_skipped(world: World) -> None:
    stranger = ChallengeAnswerer(
        session=world.provider,
        signers={Account.from_key(anvil_account_key(11)).address: world.chain.session(11)},
        tracker=world.tracker,
        records=world.records,
        start_block=world.chain.deployment.start_block,
    )

    assert stranger.run_once() == []
    assert stranger.open_epochs() == set()
