"""The verifier against a real anvil deployment and a loopback node that cheats in one way per test.

Epochs are 60 s, the proof window 1 epoch and the challenge window 2 epochs,
so the answer period is 60 s: epoch 0 is proven in epoch 1 and challenged
from the start of epoch 2 until the start of epoch 3.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloudless.chain import DeploySettings
from cloudless.chain.challenges import ChallengeKind, ChallengeStatus
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams, OfferTerms, PeerSpec
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.merkle import EMPTY_ROOT, ReceiptMerkleTree
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.runtime import CallContext, WasmRuntime
from cloudless.verifier import FindingKind, Verifier, VerifierConfig
from cloudless.verifier.frauds import disagreement_key, equivocation_key, missed_proof_key
from verifier_support import APP_CID, CALLER_KEY, StubNode, build_epoch, honest_calls, resign_receipt, sign_call, stub_node

EPOCH_SECONDS = 60
VERIFIER_INDEX = 15
PROVIDERS = ((1, 10), (2, 11), (3, 12))  # (provider account, peer signer account)
CONTEXT_PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "dist" / "context.cloudless.tar"


@dataclass
class Market:
    """A deployment with one deal placed on one worker per provider, all served by one stub node."""

    chain: LocalChain
    node: StubNode
    deal_id: int
    worker_ids: list[int]  # in the order of PROVIDERS
    domain: Domain
    app_cid: bytes

    @property
    def verifier_session(self) -> Session:
        return self.chain.session(VERIFIER_INDEX)

    def signer(self, position: int) -> Session:
        return self.chain.session(PROVIDERS[position][1])

    def signer_key(self, position: int) -> str:
        return anvil_account_key(PROVIDERS[position][1])

    def deadline(self) -> int:
        return int(self.chain.session(0).client.w3.eth.get_block("latest")["timestamp"]) + 3600

    def verifier(self, state_dir: Path, **options: Any) -> Verifier:
        settings: dict[str, Any] = {"sample_rate": 0.0, "fetch_attempts": 2, "retry_backoff_seconds": 0.0, "http_timeout_seconds": 5.0}
        settings.update(options)
        return Verifier(self.verifier_session, VerifierConfig(state_dir=state_dir, **settings))

    def advance_seconds(self, seconds: int) -> None:
        self.chain.rpc("evm_increaseTime", seconds)
        self.chain.rpc("evm_mine")


def open_market(chain: LocalChain, node: StubNode, providers: int, app_cid: bytes = APP_CID) -> Market:
    """Register providers with one peer each, publish the stub node as their endpoint, and place one deal on all."""
    admin = chain.session(0)
    usdc = admin.usdc
    peer_ids: list[int] = []
    for provider_index, signer_index in PROVIDERS[:providers]:
        provider = chain.session(provider_index)
        admin.fund(provider.address, flt=10 * chain.deployment.collateral_per_cu)
        terms = OfferTerms(payment_token=usdc.address, price_per_cu_per_epoch=usdc.parse("0.1"), region=1, tier=1, sla_bps=9000)
        peer = PeerSpec(chain.session(signer_index).address, 2)
        offer_id = provider.register_provider(
            f"provider {provider_index}", stake=4 * chain.deployment.collateral_per_cu, terms=terms, peers=[peer]
        )
        peer_ids.extend(provider.market.get_offer(offer_id).peer_ids)
        provider.market.set_provider_endpoint(node.url)

    developer = chain.session(5)
    admin.fund(developer.address, usdc=usdc.parse("1000"))
    deal_id = developer.create_deal(
        DealParams(
            app_cid=app_cid,
            payment_token=usdc.address,
            max_price_per_cu_per_epoch=usdc.parse("1"),
            deposit=usdc.parse("100"),
            target_workers=providers,
            max_workers_per_provider=1,
        )
    )
    placed = chain.session(9).deals.match_deal(deal_id, peer_ids)
    assert len(placed.worker_ids) == providers
    admin.fund(chain.session(VERIFIER_INDEX).address, flt=100 * 10**18)
    domain = Domain(chain_id=chain.deployment.chain_id, verifying_contract=chain.deployment.address("ExecutionReceipts"))
    return Market(chain, node, deal_id, list(placed.worker_ids), domain, app_cid)


@pytest.fixture
def market_of() -> Iterator[Callable[..., Market]]:
    settings = DeploySettings(epoch_duration=EPOCH_SECONDS, proof_window_epochs=1, challenge_window_epochs=2)
    with local_chain(settings) as chain, stub_node() as node:
        yield lambda providers, **options: open_market(chain, node, providers, **options)


# ------------------------------------------------------------------ challenges


def test_bad_receipt_challenged_once_then_resolved(market_of: Callable[..., Market], tmp_path: Path) -> None:
    market = market_of(1)
    worker_id = market.worker_ids[0]
    options = {"deal_id": market.deal_id, "worker_id": worker_id, "epoch": 0, "deadline": market.deadline(), "domain": market.domain}
    calls = honest_calls(2, **options)
    replayed = sign_call(nonce=900, sequence=2, **dict(options, deal_id=market.deal_id + 1))
    entry, served = build_epoch([*calls, replayed], worker_id=worker_id, epoch=0, domain=market.domain)
    market.node.epochs[(worker_id, 0)] = served
    market.chain.advance_epochs(1)
    market.signer(0).deals.submit_epoch_proof(worker_id, 0, entry.receipts_root, entry.calls, entry.usage)
    challenges = market.verifier_session.challenges

    with market.verifier(tmp_path / "first") as verifier:
        before_window = verifier.run_once()
        market.chain.advance_epochs(1)
        in_window = verifier.run_once()
        repeated = verifier.run_once()

    assert [proof.challenge for proof in before_window.proofs] == ["challenge_receipt"]
    assert FindingKind.WRONG_DEAL in {finding.kind for finding in before_window.findings}
    assert before_window.actions_of("challenge_receipt") == []
    (sent,) = in_window.actions_of("challenge_receipt", "sent")
    assert sent.tx.startswith("0x")
    challenge = challenges.get_challenge(sent.challenge_id)  # type: ignore[arg-type]
    assert challenge.kind is ChallengeKind.RECEIPT
    assert challenge.receipt_digest == replayed.receipt.digest(market.domain)
    assert repeated.actions_of("challenge_receipt") == []

    # The same account with a lost state file reads its challenge back from the chain.
    with market.verifier(tmp_path / "lost") as restarted:
        report = restarted.run_once()
    assert report.actions_of("challenge_receipt", "sent") == []
    (skipped,) = report.actions_of("challenge_receipt", "skipped")
    assert "already challenged" in skipped.detail
    assert challenges.challenge_count() == 1

    market.advance_seconds(challenges.parameters().answer_period + 1)
    flt = market.verifier_session.flt
    balance_before = flt.balance_of(market.verifier_session.address)
    with market.verifier(tmp_path / "first", withdraw_rewards=True) as verifier:
        after_deadline = verifier.run_once()
    assert len(after_deadline.actions_of("resolve_unanswered", "sent")) == 1
    assert challenges.get_challenge(sent.challenge_id).status is ChallengeStatus.UPHELD  # type: ignore[arg-type]
    assert len(after_deadline.actions_of("withdraw_slash_reward", "sent")) == 1
    assert flt.balance_of(market.verifier_session.address) > balance_before


def test_unserved_proof_sampled_once_after_answer(
    market_of: Callable[..., Market], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    market = market_of(1)
    worker_id = market.worker_ids[0]
    calls = honest_calls(3, deal_id=market.deal_id, worker_id=worker_id, epoch=0, deadline=market.deadline(), domain=market.domain)
    entry, _ = build_epoch(calls, worker_id=worker_id, epoch=0, domain=market.domain)
    market.node.epochs[(worker_id, 0)] = 503
    market.chain.advance_epochs(1)
    market.signer(0).deals.submit_epoch_proof(worker_id, 0, entry.receipts_root, entry.calls, entry.usage)
    challenges = market.verifier_session.challenges

    with caplog.at_level(logging.WARNING, logger="cloudless.verifier"), market.verifier(tmp_path / "first") as verifier:
        early = verifier.run_once()
        market.chain.advance_epochs(1)
        late = verifier.run_once()

    assert [proof.status for proof in early.proofs] == ["not_served"]
    assert early.actions == []
    assert "attempt 1 of 2" in caplog.text
    (sent,) = late.actions_of("challenge_sample", "sent")

    # The node answers the sampled leaf, so the proof is valid again.
    challenge = challenges.get_challenge(sent.challenge_id)  # type: ignore[arg-type]
    tree = ReceiptMerkleTree([(call.receipt.digest(market.domain), call.receipt.fuel_used) for call in calls])
    leaf = challenge.leaf_index
    following = tree.opening(leaf + 1) if leaf + 1 < len(calls) else None
    status = market.signer(0).challenges.answer(
        sent.challenge_id, calls[leaf].request, calls[leaf].receipt, tree.opening(leaf), following  # type: ignore[arg-type]
    )
    assert status is ChallengeStatus.ANSWERED
    assert market.verifier_session.deals.get_epoch_proof(worker_id, 0).proven

    with market.verifier(tmp_path / "lost") as restarted:
        report = restarted.run_once()
    assert report.actions_of("challenge_sample", "sent") == []
    assert len(report.actions_of("challenge_sample", "skipped")) == 1
    assert challenges.challenge_count() == 1


# ---------------------------------------------------------------- fraud proofs


def run_context_call(package: bytes, request: SignedCallRequest, input_bytes: bytes, domain: Domain) -> tuple[bytes, int]:
    """Run `call_info` as an honest node does and return the output and fuel."""
    context = CallContext(
        deal_id=request.deal_id,
        caller=request.signer,
        function=request.function_name,
        request_id="0x" + request.digest(domain).hex(),
    )
    with WasmRuntime() as runtime:
        result = runtime.call(runtime.load(package), request.function_name, input_bytes, context=context)
    return result.output, result.fuel_used


def fraud_epoch_of(market: Market, fraud_key: bytes) -> int:
    """Return the epoch that the `FraudProven` log of `fraud_key` names."""
    session = market.chain.session(0)
    event = session.challenges.contract.events.FraudProven
    (log,) = session.client.get_logs(event, market.chain.deployment.start_block, fraudKey=fraud_key)
    return int(log.args.epoch)


def test_fraud_proofs_held_until_proof_window_closes(market_of: Callable[..., Market], tmp_path: Path) -> None:
    if not CONTEXT_PACKAGE.exists():
        pytest.skip(f"{CONTEXT_PACKAGE} is missing: run `make setup` to build the example functions")
    package = CONTEXT_PACKAGE.read_bytes()
    cid = compute_cid(package)
    market = market_of(3, app_cid=cid_to_bytes(cid))
    market.node.packages[cid] = package
    first_worker, second_worker, third_worker = market.worker_ids
    deadline = market.deadline()
    third = {"deal_id": market.deal_id, "worker_id": third_worker, "deadline": deadline, "domain": market.domain}
    third_signer = market.signer_key(2)

    # The third worker's node counts one call twice in epoch 0: two receipts for one request.
    # It also copies a third call of epoch 0 into epoch 1, re-signed.
    counted = sign_call(nonce=1, sequence=0, epoch=0, peer_key=third_signer, app_cid=market.app_cid, **third)
    counted_again = resign_receipt(counted, key=third_signer, domain=market.domain, sequence=1)
    original = sign_call(nonce=2, sequence=2, epoch=0, peer_key=third_signer, app_cid=market.app_cid, **third)
    copy = resign_receipt(original, key=third_signer, domain=market.domain, epoch=1, sequence=0)
    third_entry, third_served = build_epoch([counted, counted_again, original], worker_id=third_worker, epoch=0, domain=market.domain)
    copy_entry, copy_served = build_epoch([copy], worker_id=third_worker, epoch=1, domain=market.domain)
    market.node.epochs[(third_worker, 0)] = third_served
    market.node.epochs[(third_worker, 1)] = copy_served
    # The first worker proves an empty epoch 0; the second proves nothing.
    _, first_served = build_epoch([], worker_id=first_worker, epoch=0, domain=market.domain)
    market.node.epochs[(first_worker, 0)] = first_served

    # The gateway ran one call of epoch 0 on all three workers, and the first one's output differs.
    request = SignedCallRequest.sign(
        CallRequest.for_input(deal_id=market.deal_id, function_name="call_info", input=b"{}", nonce=7, deadline=deadline),
        CALLER_KEY,
        market.domain,
    )
    output, fuel = run_context_call(package, request, b"{}", market.domain)
    replicas = []
    for position, worker_id in enumerate(market.worker_ids):
        output_hash = hash_output(b'{"forged":true}' if position == 0 else output)
        receipt = Receipt(
            worker_id=worker_id,
            request_hash=request.digest(market.domain),
            app_cid=market.app_cid,
            output_hash=output_hash,
            fuel_used=fuel,
            epoch=0,
            sequence=5,
        )
        replicas.append(SignedReceipt.sign(receipt, market.signer_key(position), market.domain))
    market.node.evidence.append({"id": 0, "kind": "timeout", "deal_id": market.deal_id})
    market.node.evidence.append(
        {
            "id": 1,
            "kind": "disagreement",
            "deal_id": market.deal_id,
            "function": "call_info",
            "request": request.to_dict(),
            "input": base64.b64encode(b"{}").decode("ascii"),
            "receipts": [replica.to_dict() for replica in replicas],
        }
    )

    market.chain.advance_epochs(1)
    market.signer(0).deals.submit_epoch_proof(first_worker, 0, EMPTY_ROOT, 0, 0)
    market.signer(2).deals.submit_epoch_proof(third_worker, 0, third_entry.receipts_root, third_entry.calls, third_entry.usage)
    challenges = market.verifier_session.challenges
    deals = market.verifier_session.deals
    counted_key = equivocation_key(market.signer(2).address, counted.receipt.request_hash)
    replay_key = equivocation_key(market.signer(2).address, original.receipt.request_hash)
    outvoted_key = disagreement_key(first_worker, request.digest(market.domain))
    options: dict[str, Any] = {"sample_rate": 1.0, "gateways": (market.node.url,)}

    # Epoch 1: epoch 0's proof window is open, so a fraud proof would slash without forfeiting it.
    with market.verifier(tmp_path / "state", **options) as verifier:
        inside_window = verifier.run_once()

    statuses = {proof.worker_id: proof.status for proof in inside_window.proofs}
    assert statuses == {first_worker: "ok", third_worker: "findings"}
    third_kinds = {finding.kind for finding in inside_window.findings if finding.worker_id == third_worker}
    assert third_kinds == {FindingKind.EQUIVOCATION, FindingKind.OUTPUT_MISMATCH}
    assert [action for action in inside_window.actions if action.outcome == "sent"] == []
    (held_equivocation,) = inside_window.actions_of("prove_equivocation", "held")
    assert (held_equivocation.worker_id, held_equivocation.epoch) == (third_worker, 0)
    assert "until epoch 2" in held_equivocation.detail
    (held_disagreement,) = inside_window.actions_of("prove_disagreement", "held")
    assert (held_disagreement.worker_id, held_disagreement.epoch) == (first_worker, 0)
    assert not challenges.fraud_settled(counted_key)
    assert not challenges.fraud_settled(outvoted_key)
    saved = json.loads((tmp_path / "state" / "state.json").read_text())["held_frauds"]
    assert sorted(saved) == sorted(["0x" + counted_key.hex(), "0x" + outvoted_key.hex()])

    # Epoch 2: the proof window of epoch 0 has closed. A restarted verifier sends what it held.
    market.chain.advance_epochs(1)
    market.signer(2).deals.submit_epoch_proof(third_worker, 1, copy_entry.receipts_root, copy_entry.calls, copy_entry.usage)
    assert deals.get_epoch_proof(third_worker, 0).proven
    assert deals.get_epoch_proof(first_worker, 0).proven
    with market.verifier(tmp_path / "state", **options) as verifier:
        window_closed = verifier.run_once()

    (equivocation,) = window_closed.actions_of("prove_equivocation", "sent")
    assert equivocation.fraud_key == "0x" + counted_key.hex()
    assert challenges.fraud_settled(counted_key)
    assert not deals.get_epoch_proof(third_worker, 0).proven
    (disagreement,) = window_closed.actions_of("prove_disagreement", "sent")
    assert (disagreement.worker_id, disagreement.epoch) == (first_worker, 0)
    assert challenges.fraud_settled(outvoted_key)
    assert not deals.get_epoch_proof(first_worker, 0).proven
    (missed,) = window_closed.actions_of("report_missed_proof", "sent")
    assert (missed.worker_id, missed.epoch) == (second_worker, 0)
    assert challenges.fraud_settled(missed_proof_key(second_worker, 0))
    # The copy in epoch 1 is named, so the proof waits for epoch 1's proof window.
    (held_replay,) = window_closed.actions_of("prove_equivocation", "held")
    assert (held_replay.worker_id, held_replay.epoch, held_replay.fraud_key) == (third_worker, 1, "0x" + replay_key.hex())
    assert not challenges.fraud_settled(replay_key)

    # Epoch 3: epoch 1's proof window has closed too.
    market.chain.advance_epochs(1)
    assert deals.get_epoch_proof(third_worker, 1).proven
    with market.verifier(tmp_path / "state", **options) as verifier:
        replay_closed = verifier.run_once()
        quiet = verifier.run_once()

    (replay,) = replay_closed.actions_of("prove_equivocation", "sent")
    assert (replay.worker_id, replay.epoch) == (third_worker, 1)
    assert fraud_epoch_of(market, replay_key) == 1
    assert not deals.get_epoch_proof(third_worker, 1).proven
    assert replay_closed.actions_of("prove_disagreement") == []
    assert [action for action in quiet.actions if action.outcome in ("sent", "held")] == []
    assert json.loads((tmp_path / "state" / "state.json").read_text())["held_frauds"] == {}

    # A verifier with a lost state file finds the same frauds and sees them settled.
    with market.verifier(tmp_path / "lost", **options) as restarted:
        rescanned = restarted.run_once()
    fraud_actions = [action for action in rescanned.actions if action.action in ("prove_equivocation", "prove_disagreement")]
    assert {action.fraud_key for action in fraud_actions} == {"0x" + key.hex() for key in (counted_key, replay_key, outvoted_key)}
    assert {action.outcome for action in fraud_actions} == {"skipped"}


def test_held_fraud_sent_after_claims_open(
    market_of: Callable[..., Market], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    market = market_of(1)
    worker_id = market.worker_ids[0]
    counted = sign_call(
        nonce=1, sequence=0, deal_id=market.deal_id, worker_id=worker_id, epoch=0, deadline=market.deadline(),
        domain=market.domain, peer_key=market.signer_key(0),
    )
    counted_again = resign_receipt(counted, key=market.signer_key(0), domain=market.domain, sequence=1)
    entry, served = build_epoch([counted, counted_again], worker_id=worker_id, epoch=0, domain=market.domain)
    market.node.epochs[(worker_id, 0)] = served
    market.chain.advance_epochs(1)
    market.signer(0).deals.submit_epoch_proof(worker_id, 0, entry.receipts_root, entry.calls, entry.usage)

    with market.verifier(tmp_path / "state") as verifier:
        found = verifier.run_once()
    assert len(found.actions_of("prove_equivocation", "held")) == 1

    # The verifier was down until claims of epoch 0 opened (epoch 0 + proof window 1 + challenge window 2 + 1).
    market.chain.advance_epochs(3)
    with caplog.at_level(logging.WARNING, logger="cloudless.verifier"), market.verifier(tmp_path / "state") as verifier:
        late = verifier.run_once()

    (sent,) = late.actions_of("prove_equivocation", "sent")
    assert "after claims of epoch 0 opened" in sent.detail
    assert "may no longer forfeit" in caplog.text
    key = equivocation_key(market.signer(0).address, counted.receipt.request_hash)
    assert market.verifier_session.challenges.fraud_settled(key)
