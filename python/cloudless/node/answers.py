"""Automatic answers to challenges of the node's epoch proofs.

Every loop round, `ChallengeAnswerer.run_once` reads the `ChallengeOpened`
logs since its last round (from the deployment block on its first round, so
a restarted node finds the challenges opened while it was down), and answers
each open challenge of one of the node's workers before its deadline. The
answer comes from the peer signer's key and opens one leaf of the records on
disk: the leaf at `leaf_index` for a SAMPLE challenge, the leaf of
`receipt_digest` for a RECEIPT challenge, and the next leaf for the fuel check.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address

from cloudless.chain.challenges import Challenge, ChallengeKind, ChallengeStatus, Fault
from cloudless.chain.session import Session
from cloudless.exceptions import ContractRevertError, MerkleProofError
from cloudless.node.cheats import Cheats
from cloudless.node.epoch_records import EpochPrunedError, EpochRecords
from cloudless.node.workers import WorkerTracker
from cloudless.receipts.merkle import NO_OPENING

__all__ = ["AnswerOutcome", "AnswerResult", "ChallengeAnswerer", "UnanswerableChallengeError"]

logger = logging.getLogger("cloudless.node")

# Blocks per eth_getLogs request when scanning for challenges.
_LOG_BLOCK_RANGE = 5_000


class AnswerResult(enum.Enum):
    ANSWERED = "answered"  # the proof remains valid and the provider got the bond
    UPHELD = "upheld"  # the answer showed a bad receipt; the provider was slashed
    FAILED = "failed"  # the answer could not be built or its transaction reverted
    IGNORED = "ignored"  # the ignore_challenges cheat is active


@dataclass(frozen=True)
class AnswerOutcome:
    """Result of one attempt to answer a challenge."""

    challenge_id: int
    result: AnswerResult
    fault: Fault | None = None
    error: str | None = None


class UnanswerableChallengeError(Exception):
    """The node's records cannot answer the challenge: the receipt, its request or the epoch is missing."""


class ChallengeAnswerer:
    """Answers the open challenges of the workers in `tracker` from `records`.

    `signers` maps each peer signer's checksum address to a session that
    signs with its key. Challenges whose signer is not among them belong to
    another node and are skipped.
    """

    def __init__(
        self,
        *,
        session: Session,
        signers: Mapping[str, Session],
        tracker: WorkerTracker,
        records: EpochRecords,
        start_block: int,
        cheats: Cheats | None = None,
    ) -> None:
        self._session = session
        self._signers = {to_checksum_address(address): signer for address, signer in signers.items()}
        self._tracker = tracker
        self._records = records
        self._cheats = cheats or Cheats()
        self._next_block = start_block
        self._chain_time = 0  # timestamp of the latest block in the last round
        self._challenges: dict[int, Challenge] = {}  # challenge id -> last state read
        self._unanswerable: set[int] = set()
        self._failures: dict[int, int] = {}  # challenge id -> failed attempts in a row
        self._reported: set[tuple[int, ChallengeStatus | str]] = set()

    # Queries for the rest of the node

    def has_open_challenge(self, worker_id: int) -> bool:
        """Return whether the worker has an open challenge whose deadline had not passed in the last round.

        After its deadline an open challenge can only be upheld, so it no
        longer decides whether the worker's epoch is paid.
        """
        return any(
            challenge.worker_id == worker_id
            and challenge.status == ChallengeStatus.OPEN
            and self._chain_time <= challenge.deadline
            for challenge in self._challenges.values()
        )

    def open_epochs(self) -> set[tuple[int, int]]:
        """Return the (worker id, epoch) pairs with a challenge that is still open on chain."""
        return {
            (challenge.worker_id, challenge.epoch)
            for challenge in self._challenges.values()
            if challenge.status == ChallengeStatus.OPEN
        }

    def challenge(self, challenge_id: int) -> Challenge | None:
        """Return the last state read of a challenge of this node, or None."""
        return self._challenges.get(challenge_id)

    # The round

    def run_once(self) -> list[AnswerOutcome]:
        """Find new challenges, then answer every open one before its deadline; return the attempts."""
        self._scan()
        now = int(self._session.client.w3.eth.get_block("latest")["timestamp"])
        self._chain_time = now
        outcomes = []
        for challenge_id in sorted(self._challenges):
            if self._challenges[challenge_id].status != ChallengeStatus.OPEN:
                continue
            challenge = self._session.challenges.get_challenge(challenge_id)
            self._challenges[challenge_id] = challenge
            if challenge.status != ChallengeStatus.OPEN:
                self._report_settled(challenge)
                continue
            if now > challenge.deadline:
                self._report_once(
                    challenge,
                    "deadline",
                    logging.ERROR,
                    "challenge %d of deal %d worker %d epoch %d passed its deadline %d unanswered; "
                    "anyone may now resolve it, which slashes the provider",
                    challenge.challenge_id,
                    challenge.deal_id,
                    challenge.worker_id,
                    challenge.epoch,
                    challenge.deadline,
                )
                continue
            outcome = self._attempt(challenge)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _scan(self) -> None:
        """Read the ChallengeOpened logs of new blocks and remember the challenges of this node's workers."""
        client = self._session.client
        latest = client.w3.eth.block_number
        if latest < self._next_block:
            return
        challenges = self._session.challenges
        event = challenges.contract.events.ChallengeOpened
        logs = []
        # Many RPC providers cap the block range of one eth_getLogs request.
        for first in range(self._next_block, latest + 1, _LOG_BLOCK_RANGE):
            logs += client.get_logs(event, first, min(first + _LOG_BLOCK_RANGE - 1, latest))
        for log in logs:
            challenge_id = int(log.args.challengeId)
            if challenge_id in self._challenges or self._tracker.get(int(log.args.workerId)) is None:
                continue
            challenge = challenges.get_challenge(challenge_id)
            if to_checksum_address(challenge.signer) not in self._signers:
                continue
            self._challenges[challenge_id] = challenge
            target = (
                f"leaf {challenge.leaf_index}"
                if challenge.kind == ChallengeKind.SAMPLE
                else f"receipt 0x{challenge.receipt_digest.hex()}"
            )
            logger.info(
                "challenge %d of deal %d worker %d epoch %d: %s of %s by %s, answer deadline %d, status %s",
                challenge_id,
                challenge.deal_id,
                challenge.worker_id,
                challenge.epoch,
                challenge.kind.name,
                target,
                challenge.challenger,
                challenge.deadline,
                challenge.status.name,
            )
            if challenge.status != ChallengeStatus.OPEN:
                self._report_settled(challenge)
        self._next_block = latest + 1

    # Answering one challenge

    def _attempt(self, challenge: Challenge) -> AnswerOutcome | None:
        challenge_id = challenge.challenge_id
        if self._cheats.ignore_challenges:
            self._report_once(
                challenge,
                "ignored",
                logging.WARNING,
                "cheat ignore_challenges: not answering challenge %d of worker %d epoch %d",
                challenge_id,
                challenge.worker_id,
                challenge.epoch,
            )
            return AnswerOutcome(challenge_id, AnswerResult.IGNORED)
        if challenge_id in self._unanswerable:
            return None
        try:
            return self._answer(challenge)
        except UnanswerableChallengeError as error:
            self._unanswerable.add(challenge_id)
            logger.error(
                "cannot answer challenge %d of deal %d worker %d epoch %d: %s",
                challenge_id,
                challenge.deal_id,
                challenge.worker_id,
                challenge.epoch,
                error,
            )
            return AnswerOutcome(challenge_id, AnswerResult.FAILED, error=str(error))
        except Exception as error:  # noqa: BLE001 - RPC and revert errors are retried next round
            count = self._failures.get(challenge_id, 0) + 1
            self._failures[challenge_id] = count
            # A failure that repeats every round is logged on its 1st, 2nd, 4th, 8th ... occurrence.
            if count & (count - 1) == 0:
                logger.error(
                    "answer to challenge %d of deal %d worker %d epoch %d failed (%d attempts), retrying next round: %s",
                    challenge_id,
                    challenge.deal_id,
                    challenge.worker_id,
                    challenge.epoch,
                    count,
                    error,
                )
            return AnswerOutcome(challenge_id, AnswerResult.FAILED, error=str(error))

    def _answer(self, challenge: Challenge) -> AnswerOutcome:
        signer = self._signers[to_checksum_address(challenge.signer)]
        try:
            record = self._records.record(challenge.worker_id, challenge.epoch)
        except EpochPrunedError as error:
            raise UnanswerableChallengeError(str(error)) from error
        if record.tree.root != challenge.receipts_root:
            raise UnanswerableChallengeError(
                f"the stored receipts have root 0x{record.tree.root.hex()} ({len(record.tree)} leaves) but the "
                f"challenged proof has root 0x{challenge.receipts_root.hex()} ({challenge.calls} calls)"
            )
        try:
            if challenge.kind == ChallengeKind.SAMPLE:
                index = challenge.leaf_index
                record.tree.opening(index)
            else:
                index = record.tree.index(challenge.receipt_digest)
        except MerkleProofError as error:
            raise UnanswerableChallengeError(f"the named receipt is not stored: {error}") from error
        leaf = record.calls[index]
        if leaf.call is None:
            raise UnanswerableChallengeError(
                f"leaf {index} (receipt sequence {leaf.receipt.sequence}, request "
                f"0x{leaf.receipt.request_hash.hex()}) has no stored request and input"
            )
        next_leaf = record.calls[index + 1].opening if index + 1 < len(record.calls) else NO_OPENING

        from_block = self._session.client.w3.eth.block_number
        try:
            status = signer.challenges.answer(
                challenge.challenge_id, leaf.call.request, leaf.receipt, leaf.opening, next_leaf
            )
        except ContractRevertError as error:
            if error.error_name == "ChallengeNotOpen":
                # Settled by another answer, for example from the provider's key.
                status = self._session.challenges.get_challenge(challenge.challenge_id).status
            else:
                raise
        settled = self._session.challenges.get_challenge(challenge.challenge_id)
        self._challenges[challenge.challenge_id] = settled
        self._failures.pop(challenge.challenge_id, None)
        if status == ChallengeStatus.ANSWERED:
            self._reported.add((challenge.challenge_id, ChallengeStatus.ANSWERED))
            logger.info(
                "answered challenge %d of deal %d worker %d epoch %d with leaf %d: ANSWERED, the bond of %d FLT wei "
                "went to the provider",
                challenge.challenge_id,
                challenge.deal_id,
                challenge.worker_id,
                challenge.epoch,
                index,
                challenge.bond,
            )
            return AnswerOutcome(challenge.challenge_id, AnswerResult.ANSWERED)
        fault = self._upheld_fault(challenge.challenge_id, from_block)
        self._reported.add((challenge.challenge_id, ChallengeStatus.UPHELD))
        logger.warning(
            "answered challenge %d of deal %d worker %d epoch %d with leaf %d: UPHELD with fault %s; "
            "the provider was slashed and the epoch forfeited",
            challenge.challenge_id,
            challenge.deal_id,
            challenge.worker_id,
            challenge.epoch,
            index,
            fault.name if fault is not None else "unknown",
        )
        return AnswerOutcome(challenge.challenge_id, AnswerResult.UPHELD, fault=fault)

    def _upheld_fault(self, challenge_id: int, from_block: int) -> Fault | None:
        challenges = self._session.challenges
        logs = self._session.client.get_logs(
            challenges.contract.events.ChallengeUpheld, from_block, challengeId=challenge_id
        )
        return Fault(int(logs[-1].args.fault)) if logs else None

    # Logging

    def _report_settled(self, challenge: Challenge) -> None:
        if challenge.status == ChallengeStatus.ANSWERED:
            self._report_once(
                challenge,
                challenge.status,
                logging.INFO,
                "challenge %d of worker %d epoch %d is ANSWERED: the proof remains valid",
                challenge.challenge_id,
                challenge.worker_id,
                challenge.epoch,
            )
        elif challenge.status == ChallengeStatus.UPHELD:
            self._report_once(
                challenge,
                challenge.status,
                logging.WARNING,
                "challenge %d of worker %d epoch %d is UPHELD: the provider was slashed and the epoch forfeited",
                challenge.challenge_id,
                challenge.worker_id,
                challenge.epoch,
            )

    def _report_once(self, challenge: Challenge, key: ChallengeStatus | str, level: int, message: str, *args: object) -> None:
        if (challenge.challenge_id, key) in self._reported:
            return
        self._reported.add((challenge.challenge_id, key))
        logger.log(level, message, *args)
