"""The verifier service: one pass follows new epoch proofs, checks them, re-executes a sample and acts on what it proved.

A pass (`Verifier.run_once`) does, in order:

1. read new `EpochProofsSubmitted` logs from the block cursor;
2. fetch each new proof's receipts from its node and check them (`checks`),
   index the receipts, re-execute a sample (`reexec`), prove or hold
   equivocations (`frauds`), and keep the best challenge until the proof's
   challenge window opens;
3. send the held fraud proofs whose forfeited epochs' proof windows have closed;
4. open the challenges whose window is open;
5. read the gateways' evidence feeds, index their receipts, re-execute them;
6. prove or hold disagreements where at least two other providers agree with a re-execution;
7. report funded epochs without a proof in their challenge window;
8. resolve open challenges whose answer deadline passed, and withdraw slash rewards if asked.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from web3.exceptions import Web3Exception

from cloudless.chain.session import Session
from cloudless.exceptions import CloudlessError, ConfigError
from cloudless.node.chain_identity import check_chain_identity
from cloudless.verifier.actions import ActionRecord, Actor
from cloudless.verifier.chain_view import VerifierChain
from cloudless.verifier.evidence import EvidenceReader
from cloudless.verifier.fetch import Fetcher
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from cloudless.verifier.frauds import FraudProver, missed_proof_key
from cloudless.verifier.index import ReceiptIndex
from cloudless.verifier.proofs import ProofChecker, ProofReport
from cloudless.verifier.reexec import Reexecutor
from cloudless.verifier.state import VerifierState, lock_state_dir, worker_epoch_key

__all__ = ["PassReport", "Verifier", "VerifierConfig"]

logger = logging.getLogger("cloudless.verifier")


@dataclass(frozen=True)
class VerifierConfig:
    """Settings of a verifier.

    `deal_ids` limits the proofs, missed proofs and evidence it looks at (None:
    every deal). `sample_rate` is the share of each epoch's receipts that it
    re-executes (at least one per non-empty epoch; 0 turns re-execution off),
    and `seed` makes the sample repeatable (None: a random seed per process).
    `gateways` are evidence feeds and, unless `package_sources` is given, the
    package sources. A node that does not answer is asked `fetch_attempts`
    times per pass, waiting `retry_backoff_seconds`, then twice that, between tries.
    """

    state_dir: Path
    deal_ids: frozenset[int] | None = None
    sample_rate: float = 0.1
    seed: str | None = None
    gateways: tuple[str, ...] = ()
    package_sources: tuple[str, ...] | None = None
    withdraw_rewards: bool = False
    fetch_attempts: int = 3
    retry_backoff_seconds: float = 1.0
    http_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.sample_rate <= 1:
            raise ConfigError(f"invalid sample rate {self.sample_rate}: use a share from 0 to 1, e.g. 0.1")
        if self.fetch_attempts < 1:
            raise ConfigError(f"invalid fetch attempts {self.fetch_attempts}: use 1 or more")
        for url in (*self.gateways, *(self.package_sources or ())):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"invalid URL {url!r}: use http://HOST:PORT, e.g. http://127.0.0.1:8080")
        if self.deal_ids is not None and any(deal_id < 1 for deal_id in self.deal_ids):
            raise ConfigError(f"invalid deal ids {sorted(self.deal_ids)}: deal ids start at 1")

    @property
    def sources(self) -> list[str]:
        chosen = self.package_sources if self.package_sources is not None else self.gateways
        return [url.rstrip("/") for url in chosen]


@dataclass
class PassReport:
    """Proofs checked, findings and actions of one pass."""

    proofs: list[ProofReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def actions_of(self, action: str, outcome: str | None = None) -> list[ActionRecord]:
        return [record for record in self.actions if record.action == action and outcome in (None, record.outcome)]


class Verifier:
    """Checks epoch proofs of `session`'s deployment and challenges from `session`'s account.

    Use it as a context manager, or call `close`. `run_once` runs one pass and
    returns its report; `run` repeats passes until `stop`.
    """

    def __init__(self, session: Session, config: VerifierConfig) -> None:
        self.session = session
        self.config = config
        self.chain = VerifierChain(session)

        self._lock = lock_state_dir(config.state_dir)
        try:
            # A chain restarted and redeployed keeps its id and addresses; the
            # deployment block's hash differs between them.
            check_chain_identity(config.state_dir, session, setting="--state-dir", contents="verifier state")
            self.state = VerifierState.load(
                config.state_dir / "state.json",
                chain_id=session.deployment.chain_id,
                deal_manager=session.deals.address,
            )
            self._check_deals()
        except BaseException:
            self._lock.close()
            raise

        self.seed = config.seed if config.seed is not None else secrets.token_hex(8)
        self.index = ReceiptIndex(config.state_dir / "receipts.sqlite3")
        self.fetcher = Fetcher(
            attempts=config.fetch_attempts,
            backoff_seconds=config.retry_backoff_seconds,
            timeout_seconds=config.http_timeout_seconds,
        )
        self.reexecutor = Reexecutor(
            config.state_dir / "packages", config.state_dir / "compiled", config.sources, self.chain.domain
        )
        self.actor = Actor(session, self.chain, self.state)
        self.frauds = FraudProver(session, self.chain, self.state)

        self.proofs = ProofChecker(
            chain=self.chain,
            state=self.state,
            index=self.index,
            fetcher=self.fetcher,
            reexecutor=self.reexecutor,
            frauds=self.frauds,
            sample_rate=config.sample_rate,
            seed=self.seed,
        )
        self.evidence = EvidenceReader(
            chain=self.chain, state=self.state, index=self.index, fetcher=self.fetcher, reexecutor=self.reexecutor, frauds=self.frauds
        )

        self._prepared = False
        self._stop = threading.Event()

    def _check_deals(self) -> None:
        if self.config.deal_ids is None:
            return
        count = self.chain.deal_count()
        missing = sorted(deal_id for deal_id in self.config.deal_ids if deal_id > count)
        if missing:
            raise ConfigError(
                f"deal {', '.join(map(str, missing))} not found: the DealManager at {self.session.deals.address} "
                f"has {count} deals; check the --deal ids"
            )

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.reexecutor.close()
        self.fetcher.close()
        self.index.close()
        self._lock.close()

    def _selected(self, deal_id: int) -> bool:
        return self.config.deal_ids is None or deal_id in self.config.deal_ids

    # ------------------------------------------------------------------ pass

    def run_once(self) -> PassReport:
        """Run one pass and return its report. Chain and node errors of single proofs are logged and reported."""
        report = PassReport()
        self.chain.begin_pass()
        if not self._prepared:
            self.actor.prepare()
            self._prepared = True

        self.proofs.scan(self._selected)
        for proof in self.proofs.check_due(report.actions, report.errors):
            report.proofs.append(proof)
            report.findings.extend(proof.findings)
        # Held fraud proofs go before challenges: an open challenge clears the
        # epoch's proven bit, and the contract forfeits only a proven epoch.
        report.actions.extend(self.frauds.send_held())
        for record in list(self.state.data.proofs.values()):
            if record.pending is not None:
                action = self.actor.challenge(record)
                if action is not None:
                    report.actions.append(action)

        for gateway in self.config.gateways:
            self.evidence.read(gateway.rstrip("/"), self._selected, report.actions, report.errors)
        self.evidence.prove_disagreements(report.actions)
        report.findings.extend(self._report_missed_proofs(report.actions))
        report.actions.extend(self.actor.resolve_expired())
        if self.config.withdraw_rewards:
            withdrawal = self.actor.withdraw_rewards()
            if withdrawal is not None:
                report.actions.append(withdrawal)

        self.state.prune()
        self.state.save()
        # A quiet pass is logged at DEBUG, so an idle verifier does not log every interval.
        busy = report.proofs or report.findings or report.actions or report.errors
        logger.log(
            logging.INFO if busy else logging.DEBUG,
            "pass done at epoch %d: %d proofs checked, %d findings, %d actions (%d sent)",
            self.chain.current_epoch(),
            len(report.proofs),
            len(report.findings),
            len(report.actions),
            sum(1 for action in report.actions if action.outcome == "sent"),
        )
        return report

    def _report_missed_proofs(self, actions: list[ActionRecord]) -> list[Finding]:
        """Report each funded worker epoch, in its challenge window now, of which no proof was submitted."""
        chain = self.chain
        if chain.challenge_window_epochs == 0:
            return []
        current = chain.current_epoch()
        last = current - chain.proof_window_epochs - 1
        first = max(0, current - chain.proof_window_epochs - chain.challenge_window_epochs)
        if last < first:
            return []

        now = chain.now()
        findings = []
        for worker_id in range(1, chain.worker_count() + 1):
            worker = chain.worker(worker_id)
            if not self._selected(worker.deal_id):
                continue
            deal = chain.deal(worker.deal_id)
            in_deal_until = min(worker.left_epoch, deal.end_epoch)
            for epoch in range(max(first, worker.joined_epoch), min(last + 1, in_deal_until)):
                window = chain.challenge_window(epoch)
                if not window.opens_at <= now < window.claims_at:
                    continue
                if worker_epoch_key(worker_id, epoch) in self.state.data.proofs:
                    continue  # a proof was submitted; a forfeited proof is not a missed one
                if chain.epoch_proven(worker_id, epoch) or not chain.was_funded(deal, epoch):
                    continue
                message = f"deal {deal.deal_id}: no proof of a funded epoch by the end of its proof window"
                finding = Finding(FindingKind.MISSED_PROOF, worker_id, epoch, message, Remedy.REPORT_MISSED_PROOF)
                if not self.frauds.done(missed_proof_key(worker_id, epoch)):
                    logger.warning("%s", finding.describe())
                    findings.append(finding)
                    actions.append(self.frauds.report_missed_proof(worker_id, epoch, message))
        return findings

    # ------------------------------------------------------------------ loop

    def run(self, interval_seconds: float) -> None:
        """Run a pass every `interval_seconds` until `stop()`; the errors of a pass are logged, not raised."""
        logger.info(
            "verifier started for DealManager %s from %s: deals %s, sample rate %g, seed %s, gateways %s, state %s",
            self.session.deals.address,
            self.session.address,
            "all" if self.config.deal_ids is None else sorted(self.config.deal_ids),
            self.config.sample_rate,
            self.seed,
            list(self.config.gateways) or "none",
            self.config.state_dir,
        )
        while not self._stop.is_set():
            try:
                self.run_once()
            except (CloudlessError, OSError, Web3Exception, ValidationError) as error:
                logger.warning("verifier pass failed, retrying in %.1f s: %s", interval_seconds, error)
                logger.debug("pass failure", exc_info=True)
            self._stop.wait(interval_seconds)
        logger.info("verifier stopped")

    def stop(self) -> None:
        self._stop.set()
