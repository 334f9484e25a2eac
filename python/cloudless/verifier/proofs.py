"""Following epoch proofs: the block cursor over `EpochProofsSubmitted`, fetching, checking and re-executing each proof."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from web3.exceptions import Web3Exception

from cloudless.chain.types import Deal, EpochProofEntry, Worker
from cloudless.exceptions import ChainError
from cloudless.formatting import format_count
from cloudless.receipts.eip712 import hash_input
from cloudless.verifier.actions import ActionRecord
from cloudless.verifier.chain_view import ChallengeWindow, VerifierChain
from cloudless.verifier.checks import (
    EpochCheck,
    EpochContext,
    check_served_epoch,
    equivocation_finding,
    not_served_finding,
    omitted_receipt_findings,
    pick_challenge,
)
from cloudless.verifier.fetch import Fetcher
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from cloudless.verifier.frauds import FraudProver
from cloudless.verifier.index import ReceiptIndex
from cloudless.verifier.reexec import Inconclusive, Reexecutor, outcome_finding, sample_indices
from cloudless.verifier.state import PendingChallenge, ProofRecord, VerifierState, worker_epoch_key

__all__ = ["ProofChecker", "ProofReport"]

logger = logging.getLogger("cloudless.verifier")


@dataclass(frozen=True)
class ProofReport:
    """The result of checking one worker epoch proof in one pass.

    `status` is "ok", "findings" or "not_served". A proof that is not served
    before its challenge window opens is fetched again next pass. `challenge`
    is the remedy kept for the challenge window, or "".
    """

    deal_id: int
    worker_id: int
    epoch: int
    calls: int
    usage: int
    status: str
    findings: tuple[Finding, ...]
    reexecuted: int
    challenge: str
    summary: str


class ProofChecker:
    """Finds new proofs in the chain's logs and checks each one against its node's served receipts."""

    def __init__(
        self,
        *,
        chain: VerifierChain,
        state: VerifierState,
        index: ReceiptIndex,
        fetcher: Fetcher,
        reexecutor: Reexecutor,
        frauds: FraudProver,
        sample_rate: float,
        seed: str,
    ) -> None:
        self.chain = chain
        self.state = state
        self.index = index
        self.fetcher = fetcher
        self.reexecutor = reexecutor
        self.frauds = frauds
        self.sample_rate = sample_rate
        self.seed = seed

    # ------------------------------------------------------------------ logs

    def scan(self, selected: Callable[[int], bool]) -> int:
        """Record the proofs submitted since the block cursor for deals that `selected` accepts; return how many."""
        data = self.state.data
        cursor = data.proof_cursor if data.proof_cursor is not None else self.chain.session.deployment.start_block
        latest = self.chain.latest_block()
        if cursor > latest:
            return 0

        found = 0
        for log in self.chain.proof_logs(cursor, latest):
            for index, entry in enumerate(log.entries):
                worker = self.chain.worker(entry.worker_id)
                if not selected(worker.deal_id):
                    continue
                key = worker_epoch_key(entry.worker_id, entry.epoch)
                earlier = data.proofs.get(key)
                if earlier is not None and earlier.batch_hash == log.batch_hash:
                    continue
                if earlier is not None:
                    logger.info("worker %d epoch %d was proven again in batch %s; checking the new proof", entry.worker_id, entry.epoch, log.batch_hash)
                if log.batch_hash not in data.batches:
                    self.state.add_batch(log.batch_hash, log.block, log.entries)
                data.proofs[key] = ProofRecord(
                    worker_id=entry.worker_id,
                    epoch=entry.epoch,
                    deal_id=worker.deal_id,
                    batch_hash=log.batch_hash,
                    entry_index=index,
                )
                found += 1
        data.proof_cursor = latest + 1
        self.state.save()
        if found:
            logger.info("found %s in blocks %d to %d", format_count(found, "new proof"), cursor, latest)
        return found

    # ---------------------------------------------------------------- checks

    def check_due(self, actions: list[ActionRecord], errors: list[str]) -> list[ProofReport]:
        """Check every proof not yet checked, and close those whose challenge window is over."""
        now = self.chain.now()
        reports = []
        for record in list(self.state.data.proofs.values()):
            if record.status == "closed":
                continue
            window = self.chain.challenge_window(record.epoch)
            if now >= window.claims_at:
                if record.status != "checked" or record.pending is not None:
                    logger.warning(
                        "proof of worker %d epoch %d: its challenge window closed at %d before the verifier %s",
                        record.worker_id,
                        record.epoch,
                        window.claims_at,
                        "could act on it" if record.status == "checked" else "could check it",
                    )
                record.status = "closed"
                record.pending = None
                continue
            if record.status == "checked":
                continue
            try:
                reports.append(self._check(record, window, now, actions))
            except (ChainError, Web3Exception, OSError) as error:
                message = f"checking proof of worker {record.worker_id} epoch {record.epoch} failed: {error}; retrying next pass"
                logger.warning("%s", message)
                errors.append(message)
            self.state.save()
        return reports

    def _check(self, record: ProofRecord, window: ChallengeWindow, now: int, actions: list[ActionRecord]) -> ProofReport:
        entry = self.state.entry(record)
        worker = self.chain.worker(record.worker_id)
        endpoint = self.chain.endpoint(worker.provider)
        if endpoint is None:
            result_error, served = f"provider {worker.provider} publishes no endpoint", None
        else:
            result = self.fetcher.served_epoch(endpoint, record.worker_id, record.epoch)
            result_error, served = result.error, result.epoch
        record.attempts += 1

        if served is None:
            record.last_error = result_error
            return self._not_served(record, entry, window, now)

        context = EpochContext(
            worker_id=record.worker_id,
            deal_id=worker.deal_id,
            epoch=record.epoch,
            signer=self.chain.signer(worker.peer_id),
            epoch_start=self.chain.epoch_start(record.epoch),
            domain=self.chain.domain,
            caller_allowed=lambda caller: self.chain.caller_allowed(worker.deal_id, caller, record.epoch),
        )
        check = check_served_epoch(entry, served, context)
        findings = list(check.findings)
        findings.extend(self._index_receipts(check, context, findings))
        findings.extend(self._omitted_from_other_sources(check, findings))
        reexec_findings, reexecuted = self._reexecute(check, worker, self.chain.deal(worker.deal_id))
        findings.extend(reexec_findings)

        report = self._conclude(record, entry, tuple(findings), reexecuted, window)
        # The request's deal tells which receipt of a replay across deals is the copy.
        request_deals = {
            checked.receipt.request_hash: checked.item.request.deal_id for checked in check.receipts if checked.request_matches
        }
        for finding in findings:
            if finding.remedy is Remedy.PROVE_EQUIVOCATION and finding.receipt is not None:
                actions.append(self.frauds.prove_equivocation(finding, request_deals.get(finding.receipt.request_hash)))
        return report

    def _not_served(self, record: ProofRecord, entry: EpochProofEntry, window: ChallengeWindow, now: int) -> ProofReport:
        """Keep asking until the challenge window opens; then the proof is challenged as not served."""
        if now < window.opens_at:
            record.status = "unserved"
            summary = (
                f"not served yet ({record.last_error}); asking again each pass until the challenge window opens at {window.opens_at}"
            )
            logger.warning("%s", self._summary_line(record, entry, summary))
            return self._report(record, entry, "not_served", (), 0, "", summary)
        finding = not_served_finding(
            entry, f"the node did not serve the receipts in {format_count(record.attempts, 'pass', 'passes')}: {record.last_error}"
        )
        logger.warning("%s", finding.describe())
        return self._conclude(record, entry, (finding,), 0, window)

    def _conclude(
        self, record: ProofRecord, entry: EpochProofEntry, findings: tuple[Finding, ...], reexecuted: int, window: ChallengeWindow
    ) -> ProofReport:
        record.status = "checked"
        record.findings = [finding.kind.value for finding in findings]
        chosen = pick_challenge(findings)
        record.pending = (
            PendingChallenge(
                remedy=chosen.remedy.value,
                finding=chosen.kind.value,
                message=chosen.message,
                receipt_json=chosen.receipt.to_json() if chosen.remedy is Remedy.CHALLENGE_RECEIPT and chosen.receipt else None,
            )
            if chosen is not None
            else None
        )
        for finding in findings:
            logger.warning("proof of deal %d: %s", record.deal_id, finding.describe())

        if not findings:
            status, summary = "ok", f"ok: the served receipts rebuild the root; {reexecuted} re-executed"
        else:
            status = "not_served" if findings[0].kind is FindingKind.NOT_SERVED else "findings"
            kinds = ", ".join(sorted({finding.kind.value for finding in findings}))
            summary = f"{format_count(len(findings), 'finding')} ({kinds}); {reexecuted} re-executed"
            if chosen is not None:
                summary += f"; {chosen.remedy.value} ({chosen.kind.value}) once the challenge window opens at {window.opens_at}"
            else:
                summary += "; nothing to challenge"
        logger.info("%s", self._summary_line(record, entry, summary))
        return self._report(record, entry, status, findings, reexecuted, chosen.remedy.value if chosen else "", summary)

    @staticmethod
    def _summary_line(record: ProofRecord, entry: EpochProofEntry, summary: str) -> str:
        return (
            f"proof deal {record.deal_id} worker {record.worker_id} epoch {record.epoch} "
            f"({format_count(entry.calls, 'call')}, {entry.usage} fuel, root 0x{entry.receipts_root.hex()[:12]}): {summary}"
        )

    @staticmethod
    def _report(
        record: ProofRecord,
        entry: EpochProofEntry,
        status: str,
        findings: tuple[Finding, ...],
        reexecuted: int,
        challenge: str,
        summary: str,
    ) -> ProofReport:
        return ProofReport(
            deal_id=record.deal_id,
            worker_id=record.worker_id,
            epoch=record.epoch,
            calls=entry.calls,
            usage=entry.usage,
            status=status,
            findings=findings,
            reexecuted=reexecuted,
            challenge=challenge,
            summary=summary,
        )

    # -------------------------------------------------------------- receipts

    def _index_receipts(self, check: EpochCheck, context: EpochContext, found: list[Finding]) -> list[Finding]:
        """Index the receipts the worker's peer signed for this worker, and return equivocations with earlier ones."""
        reported = {
            finding.receipt.request_hash
            for finding in found
            if finding.kind is FindingKind.EQUIVOCATION and finding.receipt is not None
        }
        findings = []
        for checked in check.receipts:
            receipt = checked.receipt
            if not checked.signed_by_worker or receipt.worker_id != context.worker_id:
                continue
            for earlier in self.index.add(receipt, checked.digest, context.signer):
                finding = equivocation_finding(receipt, earlier, context.domain)
                if finding is not None and receipt.request_hash not in reported:
                    reported.add(receipt.request_hash)
                    findings.append(finding)
        return findings

    def _omitted_from_other_sources(self, check: EpochCheck, found: list[Finding]) -> list[Finding]:
        """Return receipts of this worker epoch seen elsewhere (other nodes' trees, evidence) that the root lacks."""
        if check.known_digests is None:
            return []
        domain = self.chain.domain
        reported = {
            finding.receipt.digest(domain)
            for finding in found
            if finding.kind is FindingKind.RECEIPT_OMITTED and finding.receipt is not None
        }
        others = [
            receipt
            for receipt in self.index.receipts_of(check.entry.worker_id, check.entry.epoch)
            if receipt.digest(domain) not in reported
        ]
        return omitted_receipt_findings(others, check.entry, check.known_digests, domain)

    def _reexecute(self, check: EpochCheck, worker: Worker, deal: Deal) -> tuple[list[Finding], int]:
        """Re-execute a sample of the epoch's receipts and return the mismatches and how many ran."""
        if self.sample_rate == 0:
            return [], 0
        candidates = [
            checked
            for checked in check.receipts
            if checked.signed_by_worker
            and checked.request_matches
            and hash_input(checked.item.input_bytes) == checked.item.request.input_hash
        ]
        entry = check.entry
        picks = sample_indices(len(candidates), self.sample_rate, f"{self.seed}:{entry.worker_id}:{entry.epoch}:{entry.receipts_root.hex()}")
        findings: list[Finding] = []
        ran = 0
        for pick in picks:
            checked = candidates[pick]
            receipt = checked.receipt
            request = checked.item.request
            if receipt.app_cid != deal.app_cid:
                findings.append(
                    Finding(
                        FindingKind.APP_CID_MISMATCH,
                        entry.worker_id,
                        entry.epoch,
                        f"the receipt names package 0x{receipt.app_cid.hex()}, the deal runs 0x{deal.app_cid.hex()} "
                        "(the deal may have changed its package); not re-executed",
                        leaf_index=checked.position,
                    )
                )
                continue
            outcome = self.reexecutor.run(deal.app_cid, request, checked.item.input_bytes)
            if isinstance(outcome, Inconclusive):
                logger.info(
                    "cannot re-execute worker %d epoch %d leaf %d: %s", entry.worker_id, entry.epoch, checked.position, outcome.reason
                )
                continue
            ran += 1
            self.index.record_outcome(request, receipt.request_hash, deal.app_cid, outcome.output_hash, outcome.fuel_used)
            finding = outcome_finding(receipt, outcome, worker_id=worker.worker_id, epoch=entry.epoch, leaf_index=checked.position)
            if finding is not None:
                findings.append(finding)
        return findings, ran
