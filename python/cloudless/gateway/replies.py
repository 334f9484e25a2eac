"""Gateway replies to calls: the reply built from verified receipts, and the errors of replicated calls."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloudless.exceptions import CallRejectedError
from cloudless.formatting import format_count
from cloudless.gateway.chain_view import WorkerRoute
from cloudless.gateway.evidence import EvidenceLog
from cloudless.gateway.models import CallFailure, ReplicasDisagree
from cloudless.gateway.replication import Replica, Verdict, VerdictKind
from cloudless.gateway.worker_calls import SignedCall, WorkerResult
from cloudless.node.models import ErrorInfo

__all__ = [
    "GatewayReply",
    "describe_replicas",
    "disagreement_reply",
    "replication_unavailable",
    "result_reply",
    "settle_verdict",
    "short_of_replicas",
]

logger = logging.getLogger("cloudless.gateway")


@dataclass(frozen=True)
class GatewayReply:
    status: int
    body: dict[str, Any]


def result_reply(
    backing: Sequence[Replica[WorkerResult]],
    *,
    replication: int,
    outvoted: Sequence[Replica[WorkerResult]] = (),
    evidence_id: int | None = None,
) -> GatewayReply:
    """Build the reply of the first backing replica, listing every backing and outvoted receipt."""
    first = backing[0].result
    payload = first.payload.model_copy(
        update={
            "replication": replication,
            "receipts": [replica.receipt for replica in backing],
            "outvoted_receipts": [replica.receipt for replica in outvoted],
            "evidence_id": evidence_id,
        }
    )
    body = payload.model_dump(mode="json", exclude_none=isinstance(payload, CallFailure))
    return GatewayReply(first.status, body)


def describe_replicas(replicas: Sequence[Replica[Any]]) -> str:
    """Describe each replica's worker, provider, output hash and fuel, for error messages and logs."""
    return "; ".join(
        f"worker {replica.route.worker_id} of provider {replica.route.worker.provider}: output hash "
        f"0x{replica.receipt.output_hash.hex()}, fuel {replica.receipt.fuel_used}"
        for replica in replicas
    )


def disagreement_reply(
    deal_id: int, function: str, verdict: Verdict[WorkerResult], evidence_id: int | None
) -> GatewayReply:
    """Build the 502 `replicas_disagree` reply: no output has the agreement or majority it needs."""
    tie_breaker = " even with a tie-breaker" if verdict.tie_breaker_sent else " and no other provider was left for a tie-breaker"
    message = (
        f"the {len(verdict.replicas)} verified receipts of deal {deal_id} (replication {verdict.replication}) "
        f"disagree{tie_breaker}, and no output is backed by a strict majority of at least 2 providers: "
        f"{describe_replicas(verdict.replicas)}"
    )
    body = ReplicasDisagree(
        error=ErrorInfo(kind="replicas_disagree", message=message),
        deal_id=deal_id,
        function=function,
        replication=verdict.replication,
        receipts=[replica.receipt for replica in verdict.replicas],
        evidence_id=evidence_id,
    )
    return GatewayReply(502, body.model_dump(mode="json"))


def short_of_replicas(deal_id: int, verdict: Verdict[WorkerResult]) -> CallRejectedError:
    """Build the error of a call that got verified receipts from fewer than k providers."""
    failures = verdict.failures
    summary = (
        f"deal {deal_id} has replication {verdict.replication}, but only "
        f"{format_count(len(verdict.replicas), 'provider')} returned a verified receipt"
    )
    details = [f"worker {failure.route.worker_id}: {failure.message}" for failure in failures]
    if verdict.replicas:
        details.append(f"verified: {describe_replicas(verdict.replicas)}")
    message = f"{summary}: " + "; ".join(details)
    if failures and all(failure.busy for failure in failures):
        return CallRejectedError(message, status=503, kind="busy")
    kind = "invalid_receipt" if any(failure.bad_receipt for failure in failures) else "workers_unavailable"
    return CallRejectedError(message, status=502, kind=kind)


def replication_unavailable(
    deal_id: int, replication: int, providers: dict[str, list[WorkerRoute]]
) -> CallRejectedError:
    """Build the 503 error of a deal whose serving workers are on fewer than k providers."""
    available = "; ".join(
        f"{routes[0].worker.provider}: {'workers' if len(routes) > 1 else 'worker'} "
        + ", ".join(str(route.worker_id) for route in routes)
        for routes in providers.values()
    )
    fix = (
        f"wait for the matcher to place workers on more providers, or lower it with "
        f"`cloudless deal replication {deal_id} {max(1, len(providers))}`"
    )
    message = (
        f"deal {deal_id} has replication {replication}, so each call needs workers on {replication} different "
        f"providers, but its serving workers are on {format_count(len(providers), 'provider')} ({available}): {fix}"
    )
    return CallRejectedError(message, status=503, kind="replication_unavailable")


def settle_verdict(call: SignedCall, verdict: Verdict[WorkerResult], evidence: EvidenceLog) -> GatewayReply:
    """Turn the verdict of a replicated call into its reply, and record a disagreement in `evidence` first.

    Raises CallRejectedError when fewer than k providers returned a verified receipt.
    """
    deal_id = call.deal_id
    evidence_id = _record_disagreement(call, verdict, evidence) if verdict.disagreement else None
    workers = ", ".join(str(replica.route.worker_id) for replica in verdict.replicas) or "none"
    if not verdict.has_result:
        logger.warning(
            "call deal %d request %s function %s: %s with replication %d (verified workers %s)",
            deal_id,
            call.short_digest,
            call.function,
            verdict.kind.value,
            verdict.replication,
            workers,
        )
        if verdict.kind is VerdictKind.DISAGREED:
            return disagreement_reply(deal_id, call.function, verdict, evidence_id)
        raise short_of_replicas(deal_id, verdict)

    reply = result_reply(
        verdict.backing, replication=verdict.replication, outvoted=verdict.outvoted, evidence_id=evidence_id
    )
    logger.info(
        "call deal %d workers %s request %s function %s: status %d, %s with replication %d",
        deal_id,
        workers,
        call.short_digest,
        call.function,
        reply.status,
        verdict.kind.value,
        verdict.replication,
    )
    return reply


def _record_disagreement(call: SignedCall, verdict: Verdict[WorkerResult], evidence: EvidenceLog) -> int | None:
    try:
        evidence_id = evidence.record_disagreement(
            deal_id=call.deal_id,
            function=call.function,
            request=call.request,
            input_bytes=call.input_bytes,
            receipts=[replica.receipt for replica in verdict.replicas],
        )
    except OSError as error:
        logger.error(
            "recording the disagreement of deal %d request %s in %s failed: %s",
            call.deal_id,
            call.short_digest,
            evidence.path,
            error,
        )
        return None
    logger.warning(
        "replicas of deal %d disagree on request %s (evidence %d): %s",
        call.deal_id,
        call.short_digest,
        evidence_id,
        describe_replicas(verdict.replicas),
    )
    return evidence_id
