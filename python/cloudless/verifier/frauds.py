"""Fraud proofs and missed-proof reports: when to send them, and sending each one once.

`proveEquivocation` and `proveDisagreement` slash at once, but they forfeit
the epoch they name only when its proof window has closed, because inside
the window the peer could still prove the epoch again. The contract names:

- for an equivocation, `first.receipt.epoch` of `first`'s worker, and also
  `second.receipt.epoch` when `second` is of the same worker;
- for a disagreement, the minority receipt's epoch of its worker.

So a fraud proof found while one of those proof windows is open is held in
the state file (`held_frauds`). It is sent in the first pass of epoch
`max(forfeited epochs) + proofWindowEpochs + 1`. That epoch is in the named
epoch's challenge window, before its claims open in epoch
`epoch + proofWindowEpochs + challengeWindowEpochs + 1`. A fraud proof found
later is sent at once. After claims of the named epoch have opened, a fraud
proof still slashes, but the provider may have been paid for the epoch
already, and the verifier logs a warning.

For a replay (one request counted twice), the receipt that `first` names is
the copy: a receipt of a worker outside the request's deal, or else the
receipt of the later epoch. The original call was real and may be paid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from cloudless.chain.challenges import Fault
from cloudless.chain.session import Session
from cloudless.exceptions import ChainError, ContractRevertError
from cloudless.receipts.eip712 import recover_receipt_signer
from cloudless.receipts.models import SignedCallRequest, SignedReceipt
from cloudless.verifier.actions import ActionRecord, record_action
from cloudless.verifier.chain_view import VerifierChain
from cloudless.verifier.findings import Finding, Remedy
from cloudless.verifier.state import FraudRecord, HeldFraud, VerifierState

__all__ = [
    "FraudProver",
    "disagreement_key",
    "equivocation_forfeits",
    "equivocation_key",
    "missed_proof_key",
    "order_equivocation",
]

logger = logging.getLogger("cloudless.verifier")


def equivocation_key(signer: str, request_hash: bytes) -> bytes:
    """Compute the ChallengeManager's fraud key of an equivocation: keccak256(abi.encode(EQUIVOCATION, signer, requestHash))."""
    return keccak(abi_encode(["uint8", "address", "bytes32"], [int(Fault.EQUIVOCATION), signer, request_hash]))


def disagreement_key(worker_id: int, request_hash: bytes) -> bytes:
    return keccak(abi_encode(["uint8", "uint256", "bytes32"], [int(Fault.DISAGREEMENT), worker_id, request_hash]))


def missed_proof_key(worker_id: int, epoch: int) -> bytes:
    return keccak(abi_encode(["uint8", "uint256", "uint64"], [int(Fault.MISSED_PROOF), worker_id, epoch]))


def order_equivocation(
    a: SignedReceipt,
    b: SignedReceipt,
    *,
    request_deal_id: int | None = None,
    deal_of: Callable[[int], int] | None = None,
) -> tuple[SignedReceipt, SignedReceipt]:
    """Return two receipts of one signer for one request as (first, second), with the copy first.

    When the request's deal is known, a receipt of a worker outside it
    (`deal_of(worker_id)` gives a worker's deal) is the copy. Otherwise the
    receipt of the later epoch is. Receipts of one epoch and one deal keep
    their order.
    """
    if request_deal_id is not None and deal_of is not None and a.worker_id != b.worker_id:
        a_outside = deal_of(a.worker_id) != request_deal_id
        b_outside = deal_of(b.worker_id) != request_deal_id
        if a_outside != b_outside:
            return (a, b) if a_outside else (b, a)
    if b.epoch > a.epoch:
        return b, a
    return a, b


def equivocation_forfeits(first: SignedReceipt, second: SignedReceipt) -> list[int]:
    """Return the epochs of `first`'s worker that `proveEquivocation(first, second)` forfeits, ascending."""
    epochs = {first.epoch}
    if second.worker_id == first.worker_id:
        epochs.add(second.epoch)
    return sorted(epochs)


class FraudProver:
    """Holds, sends and records fraud proofs and missed-proof reports from `session`'s account.

    The state file records each fraud key that this verifier sent, found
    settled or saw fail for good, and such a key is not sent again. Each send
    checks `fraudSettled` first, so a lost state file does not cost a
    reverted transaction either.
    """

    def __init__(self, session: Session, chain: VerifierChain, state: VerifierState) -> None:
        self.session = session
        self.chain = chain
        self.state = state

    # ---------------------------------------------------------------- queries

    def done(self, key: bytes) -> bool:
        """Return whether this verifier already proved the fraud with this key, saw it settled, or failed for good."""
        return "0x" + key.hex() in self.state.data.fraud

    def known(self, key: bytes) -> bool:
        """Return whether the fraud with this key is done or held for later."""
        return self.done(key) or "0x" + key.hex() in self.state.data.held_frauds

    # ------------------------------------------------------------- equivocation

    def prove_equivocation(self, finding: Finding, request_deal_id: int | None = None) -> ActionRecord:
        """Send or hold `proveEquivocation` for an EQUIVOCATION finding; `request_deal_id` is the request's deal if known."""
        assert finding.receipt is not None and finding.other_receipt is not None
        first, second = order_equivocation(
            finding.receipt,
            finding.other_receipt,
            request_deal_id=request_deal_id,
            deal_of=lambda worker_id: self.chain.worker(worker_id).deal_id,
        )
        signer = recover_receipt_signer(first.to_receipt(), first.signature, self.chain.domain)
        forfeits = equivocation_forfeits(first, second)
        held = HeldFraud(
            remedy=Remedy.PROVE_EQUIVOCATION.value,
            worker_id=first.worker_id,
            epoch=first.epoch,
            forfeits=forfeits,
            send_from_epoch=max(forfeits) + self.chain.proof_window_epochs + 1,
            detail=finding.message,
            receipts=[first.to_json(), second.to_json()],
        )
        return self._hold_or_send(equivocation_key(signer, first.request_hash), held)

    # ------------------------------------------------------------ disagreement

    def prove_disagreement(
        self, request: SignedCallRequest, majority: Sequence[SignedReceipt], minority: SignedReceipt, detail: str
    ) -> ActionRecord:
        """Send or hold `proveDisagreement` against `minority`, outvoted by `majority`."""
        held = HeldFraud(
            remedy=Remedy.PROVE_DISAGREEMENT.value,
            worker_id=minority.worker_id,
            epoch=minority.epoch,
            forfeits=[minority.epoch],
            send_from_epoch=minority.epoch + self.chain.proof_window_epochs + 1,
            detail=detail,
            receipts=[minority.to_json(), *(receipt.to_json() for receipt in majority)],
            request_json=request.to_json(),
        )
        return self._hold_or_send(disagreement_key(minority.worker_id, minority.request_hash), held)

    # ------------------------------------------------------------ missed proof

    def report_missed_proof(self, worker_id: int, epoch: int, detail: str) -> ActionRecord:
        """Send `reportMissedProof`; the caller checks that the epoch's challenge window is open."""
        return self._submit(
            Remedy.REPORT_MISSED_PROOF,
            missed_proof_key(worker_id, epoch),
            worker_id,
            epoch,
            detail,
            lambda: self.session.challenges.report_missed_proof(worker_id, epoch),
        )

    # ------------------------------------------------------------------ held

    def send_held(self) -> list[ActionRecord]:
        """Send every held fraud proof whose forfeited epochs' proof windows have closed."""
        current = self.chain.current_epoch()
        actions = []
        for key_hex, held in list(self.state.data.held_frauds.items()):
            if current < held.send_from_epoch:
                continue
            action = self._send(bytes.fromhex(key_hex[2:]), held)
            actions.append(action)
            # A transaction that did not go through is retried next pass; every other outcome is final.
            if action.outcome != "failed":
                del self.state.data.held_frauds[key_hex]
                self.state.save()
        return actions

    def _hold_or_send(self, key: bytes, held: HeldFraud) -> ActionRecord:
        key_hex = "0x" + key.hex()
        remedy = Remedy(held.remedy)
        earlier = self.state.data.held_frauds.get(key_hex)
        if earlier is not None:
            return record_action(
                remedy,
                earlier.worker_id,
                earlier.epoch,
                "skipped",
                f"already held until epoch {earlier.send_from_epoch}",
                fraud_key=key_hex,
                level=logging.DEBUG,
            )
        if self.done(key) or self.chain.current_epoch() >= held.send_from_epoch:
            return self._send(key, held)
        if self.session.challenges.fraud_settled(key):
            self._save_fraud(key_hex, FraudRecord(fault=remedy.value, worker_id=held.worker_id, epoch=held.epoch, status="settled"))
            return record_action(remedy, held.worker_id, held.epoch, "skipped", "already settled on chain", fraud_key=key_hex)

        self.state.data.held_frauds[key_hex] = held
        self.state.save()
        windows = (
            f"the proof window of epoch {held.forfeits[0]} has"
            if len(held.forfeits) == 1
            else f"the proof windows of epochs {' and '.join(map(str, held.forfeits))} have"
        )
        return record_action(
            remedy,
            held.worker_id,
            held.epoch,
            "held",
            f"held until epoch {held.send_from_epoch}, when {windows} closed, so that the proof also forfeits "
            f"epoch {held.epoch} (its claims open in epoch {self._claims_epoch(held.epoch)}): {held.detail}",
            fraud_key=key_hex,
        )

    def _send(self, key: bytes, held: HeldFraud) -> ActionRecord:
        remedy = Remedy(held.remedy)
        receipts = [SignedReceipt.from_json(text) for text in held.receipts]
        challenges = self.session.challenges
        request = SignedCallRequest.from_json(held.request_json) if held.request_json is not None else None

        def send() -> object:
            if remedy is Remedy.PROVE_EQUIVOCATION:
                first, second = receipts
                return challenges.prove_equivocation(first, second)
            assert request is not None
            return challenges.prove_disagreement(request, receipts[1:], receipts[0])

        claims_epoch = self._claims_epoch(held.epoch)
        current = self.chain.current_epoch()
        late = current >= claims_epoch
        detail = held.detail
        if late:
            detail += f"; sent after claims of epoch {held.epoch} opened, so the epoch may have been paid"
        action = self._submit(remedy, key, held.worker_id, held.epoch, detail, send)
        if late and action.outcome == "sent":
            logger.warning(
                "%s of worker %d: claims of epoch %d opened in epoch %d (now %d), so the proof may no longer "
                "forfeit that epoch; it still slashed the provider (fraud key 0x%s)",
                remedy.value,
                held.worker_id,
                held.epoch,
                claims_epoch,
                current,
                key.hex(),
            )
        return action

    def _claims_epoch(self, epoch: int) -> int:
        return epoch + self.chain.proof_window_epochs + self.chain.challenge_window_epochs + 1

    # ------------------------------------------------------------------ send

    def _submit(
        self, remedy: Remedy, key: bytes, worker_id: int, epoch: int, detail: str, send: Callable[[], object]
    ) -> ActionRecord:
        key_hex = "0x" + key.hex()
        fault = remedy.value
        known = self.state.data.fraud.get(key_hex)
        if known is not None:
            return record_action(remedy, worker_id, epoch, "skipped", f"already {known.status}", tx=known.tx, fraud_key=key_hex, level=logging.DEBUG)
        if self.session.challenges.fraud_settled(key):
            self._save_fraud(key_hex, FraudRecord(fault=fault, worker_id=worker_id, epoch=epoch, status="settled"))
            return record_action(remedy, worker_id, epoch, "skipped", "already settled on chain", fraud_key=key_hex)

        from_block = self.chain.latest_block()
        try:
            send()
        except ContractRevertError as error:
            status = "settled" if error.error_name == "FraudAlreadyProven" else "failed"
            self._save_fraud(key_hex, FraudRecord(fault=fault, worker_id=worker_id, epoch=epoch, status=status, detail=str(error)))
            return record_action(remedy, worker_id, epoch, "reverted", str(error), fraud_key=key_hex, level=logging.WARNING)
        except ChainError as error:
            return record_action(remedy, worker_id, epoch, "failed", f"{error}; retrying next pass", fraud_key=key_hex, level=logging.WARNING)

        tx = self.chain.event_tx("FraudProven", from_block, fraudKey=key)
        self._save_fraud(key_hex, FraudRecord(fault=fault, worker_id=worker_id, epoch=epoch, status="proven", tx=tx, detail=detail))
        return record_action(remedy, worker_id, epoch, "sent", detail, tx=tx, fraud_key=key_hex)

    def _save_fraud(self, key_hex: str, record: FraudRecord) -> None:
        self.state.data.fraud[key_hex] = record
        self.state.save()
