"""Gateway evidence and disagreement fraud proofs.

Each "disagreement" item of a gateway's evidence feed has one signed request,
its input and the receipts of the replicas that ran it. The verifier indexes
every receipt that verifies (for this request, from a worker of the
request's deal, signed by that worker's peer signer), re-executes the input
and records the outcome. `prove_disagreements` then looks at every indexed
receipt that differs from a re-execution, whatever its source, and submits
`proveDisagreement` when at least two receipts of distinct other providers
agree with the re-execution. Both kinds of fraud proof go through
`FraudProver`, which holds them until they can also forfeit the epoch they
name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError
from web3.exceptions import Web3Exception

from cloudless.exceptions import ChainError, InvalidSignatureError
from cloudless.receipts.eip712 import recover_receipt_signer, recover_request_signer
from cloudless.receipts.models import SignedReceipt
from cloudless.verifier.actions import ActionRecord
from cloudless.verifier.chain_view import VerifierChain
from cloudless.verifier.checks import equivocation_finding
from cloudless.verifier.fetch import FetchError, Fetcher
from cloudless.verifier.frauds import FraudProver, disagreement_key
from cloudless.verifier.index import Disagreement, ReceiptIndex
from cloudless.verifier.models import EvidenceItem
from cloudless.verifier.reexec import Inconclusive, Reexecutor
from cloudless.verifier.state import VerifierState

__all__ = ["EvidenceReader"]

logger = logging.getLogger("cloudless.verifier")

# Evidence pages read per gateway and pass, so a long backlog does not stall a pass.
MAX_PAGES_PER_PASS = 10


class EvidenceReader:
    """Reads evidence feeds and proves disagreements."""

    def __init__(
        self,
        *,
        chain: VerifierChain,
        state: VerifierState,
        index: ReceiptIndex,
        fetcher: Fetcher,
        reexecutor: Reexecutor,
        frauds: FraudProver,
    ) -> None:
        self.chain = chain
        self.state = state
        self.index = index
        self.fetcher = fetcher
        self.reexecutor = reexecutor
        self.frauds = frauds

    def read(self, gateway: str, selected: Callable[[int], bool], actions: list[ActionRecord], errors: list[str]) -> int:
        """Read new items of one gateway's feed from its cursor; return how many were used."""
        cursors = self.state.data.evidence_cursors
        used = 0
        for _ in range(MAX_PAGES_PER_PASS):
            since = cursors.get(gateway, 0)
            try:
                page = self.fetcher.evidence(gateway, since)
            except FetchError as error:
                logger.warning("evidence feed %s: %s", gateway, error)
                errors.append(str(error))
                break
            for raw in page.items:
                if self._use(gateway, raw, selected, actions):
                    used += 1
            cursors[gateway] = max(page.next, since)
            self.state.save()
            if not page.items or page.next <= since:
                break
        return used

    def _use(self, gateway: str, raw: dict[str, object], selected: Callable[[int], bool], actions: list[ActionRecord]) -> bool:
        if raw.get("kind") != "disagreement":
            logger.debug("evidence %s item %s has kind %r, which this verifier does not use", gateway, raw.get("id"), raw.get("kind"))
            return False
        try:
            item = EvidenceItem.model_validate(raw)
        except ValidationError as error:
            logger.warning("evidence %s item %s is invalid, skipping it: %s", gateway, raw.get("id"), error)
            return False
        if not selected(item.deal_id):
            return False
        try:
            self._use_item(gateway, item, actions)
        except (ChainError, Web3Exception) as error:
            logger.warning("evidence %s item %d of deal %d: a chain read failed, skipping it: %s", gateway, item.id, item.deal_id, error)
            return False
        return True

    def _use_item(self, gateway: str, item: EvidenceItem, actions: list[ActionRecord]) -> None:
        domain = self.chain.domain
        request = item.request
        where = f"evidence {gateway} item {item.id} (deal {item.deal_id})"
        if request.deal_id != item.deal_id or item.deal_id > self.chain.deal_count():
            logger.warning("%s: the request is for deal %d; skipping it", where, request.deal_id)
            return
        try:
            recover_request_signer(request.to_request(), request.signature, domain)
        except InvalidSignatureError as error:
            logger.warning("%s: the request's caller signature does not recover (%s); skipping it", where, error)
            return

        request_hash = request.digest(domain)
        indexed = 0
        for receipt in item.receipts:
            signer = self._verified_signer(receipt, request_hash, request.deal_id, where)
            if signer is None:
                continue
            indexed += 1
            for earlier in self.index.add(receipt, receipt.digest(domain), signer):
                finding = equivocation_finding(receipt, earlier, domain)
                if finding is not None:
                    logger.warning("%s: %s", where, finding.describe())
                    actions.append(self.frauds.prove_equivocation(finding, request.deal_id))

        deal = self.chain.deal(item.deal_id)
        outcome = self.reexecutor.run(deal.app_cid, request, item.input_bytes)
        if isinstance(outcome, Inconclusive):
            logger.info("%s: cannot re-execute request 0x%s: %s", where, request_hash.hex(), outcome.reason)
            return
        self.index.record_outcome(request, request_hash, deal.app_cid, outcome.output_hash, outcome.fuel_used)
        logger.info(
            "%s: %d of %d receipts verify; re-execution gives output 0x%s and %d fuel",
            where,
            indexed,
            len(item.receipts),
            outcome.output_hash.hex(),
            outcome.fuel_used,
        )

    def _verified_signer(self, receipt: SignedReceipt, request_hash: bytes, deal_id: int, where: str) -> str | None:
        """Return the receipt's signer if it is the peer signer of a worker of the deal and the receipt is for the request."""
        if receipt.request_hash != request_hash:
            logger.warning("%s: receipt of worker %d names another request; skipping it", where, receipt.worker_id)
            return None
        if not 1 <= receipt.worker_id <= self.chain.worker_count():
            logger.warning("%s: worker %d does not exist; skipping its receipt", where, receipt.worker_id)
            return None
        worker = self.chain.worker(receipt.worker_id)
        if worker.deal_id != deal_id:
            logger.warning("%s: worker %d serves deal %d; skipping its receipt", where, receipt.worker_id, worker.deal_id)
            return None
        signer = self.chain.signer(worker.peer_id)
        try:
            recovered = recover_receipt_signer(receipt.to_receipt(), receipt.signature, self.chain.domain)
        except InvalidSignatureError:
            recovered = ""
        if recovered != signer:
            logger.warning("%s: receipt of worker %d is not signed by its peer signer %s; skipping it", where, receipt.worker_id, signer)
            return None
        return signer

    # ---------------------------------------------------------- disagreements

    def prove_disagreements(self, actions: list[ActionRecord]) -> None:
        """Prove each indexed receipt that differs from a re-execution, when two other providers agree with it."""
        for disagreement in self.index.disagreements():
            minority = disagreement.receipt
            key = disagreement_key(minority.worker_id, minority.request_hash)
            if self.frauds.known(key) or "0x" + key.hex() in self.state.data.unprovable:
                continue
            try:
                self._prove(disagreement, key, actions)
            except (ChainError, Web3Exception) as error:
                logger.warning("disagreement of worker %d: a chain read failed, retrying next pass: %s", minority.worker_id, error)

    def _prove(self, disagreement: Disagreement, key: bytes, actions: list[ActionRecord]) -> None:
        outcome = disagreement.outcome
        minority = disagreement.receipt
        deal_id = outcome.request.deal_id
        minority_worker = self.chain.worker(minority.worker_id)
        if minority_worker.deal_id != deal_id:
            logger.warning(
                "cannot be proven on chain: worker %d of deal %d signed a receipt for request 0x%s of deal %d",
                minority.worker_id,
                minority_worker.deal_id,
                minority.request_hash.hex(),
                deal_id,
            )
            self.state.data.unprovable.append("0x" + key.hex())
            self.state.save()
            return
        providers = {minority_worker.provider}
        majority: list[SignedReceipt] = []
        for receipt in self.index.receipts_for_request(minority.request_hash):
            agrees = receipt.output_hash == outcome.output_hash and receipt.fuel_used == outcome.fuel_used
            if not agrees or receipt.app_cid != outcome.app_cid:
                continue
            worker = self.chain.worker(receipt.worker_id)
            if worker.deal_id != deal_id or worker.provider in providers:
                continue
            providers.add(worker.provider)
            majority.append(receipt)
            if len(majority) == self.chain.max_replication:
                break

        detail = (
            f"deal {deal_id} request 0x{minority.request_hash.hex()}: worker {minority.worker_id} "
            f"(provider {minority_worker.provider}) committed output 0x{minority.output_hash.hex()} and "
            f"{minority.fuel_used} fuel; re-execution and {len(majority)} receipts of other providers give "
            f"0x{outcome.output_hash.hex()} and {outcome.fuel_used} fuel"
        )
        if len(majority) >= 2:
            actions.append(self.frauds.prove_disagreement(outcome.request, majority, minority, detail))
            return
        window = self.chain.challenge_window(minority.epoch)
        if self.chain.now() >= window.claims_at:
            # By then every replica of that epoch has been proven and checked, so no more receipts will come.
            logger.warning("cannot be proven on chain, giving up: %s; a disagreement proof needs 2", detail)
            self.state.data.unprovable.append("0x" + key.hex())
            self.state.save()
        else:
            logger.debug("waiting for receipts of other providers: %s", detail)
