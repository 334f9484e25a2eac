"""The verifier's action records, and its transactions for challenges, resolutions and reward withdrawals.

Each challenge first checks that it has not been done: by this verifier (the
state file, and its own `ChallengeOpened` logs read at start) or by anyone
(the proof's proven bit). Each successful action is saved to the state file
before the next one starts. A revert is logged and recorded, and it never
stops the verifier. Fraud proofs and missed-proof reports are in `frauds`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cloudless.chain.challenges import ChallengeKind, ChallengeStatus
from cloudless.chain.session import Session
from cloudless.exceptions import ChainError, ContractRevertError
from cloudless.receipts.models import SignedReceipt
from cloudless.verifier.chain_view import VerifierChain
from cloudless.verifier.findings import Remedy
from cloudless.verifier.state import ChallengeRecord, ProofRecord, VerifierState, worker_epoch_key

__all__ = ["ActionRecord", "Actor", "record_action"]

logger = logging.getLogger("cloudless.verifier")


@dataclass(frozen=True)
class ActionRecord:
    """One action the verifier took or passed over.

    `action` names the contract call: a `Remedy` value, "resolve_unanswered"
    or "withdraw_slash_reward". `outcome` is "sent" when the transaction was
    mined and "skipped" when the action was done before or is no longer
    possible. It is "held" when a fraud proof waits in the state file until
    it can also forfeit the epoch it names (see `frauds`). It is "reverted"
    when the contract rejected it, which is recorded and not retried, and
    "failed" when the transaction did not go through, which is retried next
    pass.
    """

    action: str
    worker_id: int
    epoch: int
    outcome: str
    detail: str
    challenge_id: int | None = None
    tx: str = ""
    fraud_key: str = ""

    def describe(self) -> str:
        ids = f"worker {self.worker_id} epoch {self.epoch}"
        if self.challenge_id is not None:
            ids += f" challenge {self.challenge_id}"
        if self.fraud_key:
            ids += f" fraud key {self.fraud_key}"
        if self.tx:
            ids += f" tx {self.tx}"
        return f"{self.action} {self.outcome}: {ids}: {self.detail}"


def record_action(
    action: Remedy | str,
    worker_id: int,
    epoch: int,
    outcome: str,
    detail: str,
    *,
    challenge_id: int | None = None,
    tx: str = "",
    fraud_key: str = "",
    level: int = logging.INFO,
) -> ActionRecord:
    """Log an action at `level` and return its record."""
    name = action.value if isinstance(action, Remedy) else action
    record = ActionRecord(name, worker_id, epoch, outcome, detail, challenge_id, tx, fraud_key)
    logger.log(level, "%s", record.describe())
    return record


class Actor:
    """Sends the verifier's transactions from `session`'s account and records them in `state`."""

    def __init__(self, session: Session, chain: VerifierChain, state: VerifierState) -> None:
        self.session = session
        self.chain = chain
        self.state = state
        self.address = session.address

    # ---------------------------------------------------------------- start

    def prepare(self) -> None:
        """Approve the ChallengeManager to pull FLT bonds, and read back this verifier's challenges from the chain."""
        self.session.challenges.approve_bonds(self.session.flt.contract)
        self.load_own_challenges()

    def load_own_challenges(self) -> int:
        """Record every challenge this account opened, from `ChallengeOpened` logs; return how many were new to the state."""
        added = 0
        for challenge_id, worker_id, epoch, kind, tx in self.chain.opened_challenges_by(self.address):
            key = worker_epoch_key(worker_id, epoch)
            if key in self.state.data.challenges:
                continue
            self.state.data.challenges[key] = ChallengeRecord(challenge_id=challenge_id, kind=kind, tx=tx)
            added += 1
            logger.info(
                "found own challenge %d of worker %d epoch %d on chain (tx %s); it will not be opened again",
                challenge_id,
                worker_id,
                epoch,
                tx,
            )
        if added:
            self.state.save()
        return added

    # ----------------------------------------------------------- challenges

    def challenge(self, record: ProofRecord) -> ActionRecord | None:
        """Open the proof's pending challenge if its window is open; return None while the window has not opened."""
        pending = record.pending
        assert pending is not None
        remedy = Remedy(pending.remedy)
        key = worker_epoch_key(record.worker_id, record.epoch)
        window = self.chain.challenge_window(record.epoch)
        now = self.chain.now()

        def give_up(detail: str) -> ActionRecord:
            record.pending = None
            self.state.save()
            return record_action(remedy, record.worker_id, record.epoch, "skipped", detail)

        if self.chain.challenge_window_epochs == 0:
            return give_up("the DealManager has no challenge window, so challenges are off")
        own = self.state.data.challenges.get(key)
        if own is not None:
            return give_up(f"this verifier already challenged this proof (challenge {own.challenge_id}, tx {own.tx})")
        if key in self.state.data.failed_challenges:
            return give_up(f"an earlier challenge failed for good: {self.state.data.failed_challenges[key]}")
        if now < window.opens_at:
            return None
        if now >= window.closes_at:
            return give_up(f"the challenge window closed at {window.closes_at} (now {now}); the finding was: {pending.message}")
        if not self.chain.epoch_proven(record.worker_id, record.epoch):
            return give_up("the proof no longer stands: it is forfeited or under another challenge")

        bond = self.session.challenges.parameters().challenge_bond
        balance = self.session.flt.balance_of(self.address)
        if balance < bond:
            return record_action(
                remedy,
                record.worker_id,
                record.epoch,
                "failed",
                f"{self.address} has {balance} FLT wei, less than the {bond} FLT wei bond; fund it to challenge",
                level=logging.ERROR,
            )

        batch = self.state.proof_batch(record)
        from_block = self.chain.latest_block()
        try:
            if remedy is Remedy.CHALLENGE_SAMPLE:
                challenge_id = self.session.challenges.challenge_sample(batch)
            else:
                assert pending.receipt_json is not None
                receipt = SignedReceipt.from_json(pending.receipt_json)
                challenge_id = self.session.challenges.challenge_receipt(batch, receipt)
        except ContractRevertError as error:
            self.state.data.failed_challenges[key] = str(error)
            record.pending = None
            self.state.save()
            return record_action(remedy, record.worker_id, record.epoch, "reverted", str(error), level=logging.WARNING)
        except ChainError as error:
            return record_action(remedy, record.worker_id, record.epoch, "failed", f"{error}; retrying next pass", level=logging.WARNING)

        tx = self.chain.event_tx("ChallengeOpened", from_block, challengeId=challenge_id)
        kind = ChallengeKind.SAMPLE if remedy is Remedy.CHALLENGE_SAMPLE else ChallengeKind.RECEIPT
        self.state.data.challenges[key] = ChallengeRecord(challenge_id=challenge_id, kind=kind.name, tx=tx)
        self.state.data.open_challenges.append(challenge_id)
        record.pending = None
        self.state.save()
        return record_action(
            remedy,
            record.worker_id,
            record.epoch,
            "sent",
            f"deal {record.deal_id}: {pending.finding}: {pending.message}",
            challenge_id=challenge_id,
            tx=tx,
        )

    def resolve_expired(self) -> list[ActionRecord]:
        """Resolve every open challenge, by anyone, whose answer deadline has passed."""
        challenges = self.session.challenges
        data = self.state.data
        count = challenges.challenge_count()
        known = set(data.open_challenges)
        data.open_challenges.extend(cid for cid in range(data.challenge_scan_next, count + 1) if cid not in known)
        data.challenge_scan_next = count + 1

        actions = []
        still_open = []
        now = self.chain.now()
        for challenge_id in data.open_challenges:
            challenge = challenges.get_challenge(challenge_id)
            if challenge.status != ChallengeStatus.OPEN:
                continue
            if now <= challenge.deadline:
                still_open.append(challenge_id)
                continue
            try:
                tx = challenges.resolve_unanswered(challenge_id)
            except ContractRevertError as error:
                if error.error_name == "ChallengeDeadlineNotReached":
                    still_open.append(challenge_id)
                outcome, detail, tx_hash = "reverted", str(error), ""
            except ChainError as error:
                still_open.append(challenge_id)
                outcome, detail, tx_hash = "failed", f"{error}; retrying next pass", ""
            else:
                outcome, tx_hash = "sent", "0x" + bytes(tx["transactionHash"]).hex()
                status = challenges.get_challenge(challenge_id).status
                detail = f"deal {challenge.deal_id}: unanswered by deadline {challenge.deadline}, now {status.name}"
            actions.append(
                record_action(
                    "resolve_unanswered",
                    challenge.worker_id,
                    challenge.epoch,
                    outcome,
                    detail,
                    challenge_id=challenge_id,
                    tx=tx_hash,
                )
            )
        data.open_challenges = still_open
        self.state.save()
        return actions

    # -------------------------------------------------------------- rewards

    def withdraw_rewards(self) -> ActionRecord | None:
        """Withdraw this account's share of slashed stake from the Market, if there is any."""
        market = self.session.market
        reward = market.slash_rewards(self.address)
        if reward == 0:
            return None
        try:
            tx = market.withdraw_slash_reward()
        except ChainError as error:
            return record_action(
                "withdraw_slash_reward", 0, 0, "failed", f"withdrawing {reward} FLT wei failed: {error}", level=logging.WARNING
            )
        return record_action(
            "withdraw_slash_reward",
            0,
            0,
            "sent",
            f"withdrew {reward} FLT wei of slash rewards",
            tx="0x" + bytes(tx["transactionHash"]).hex(),
        )
