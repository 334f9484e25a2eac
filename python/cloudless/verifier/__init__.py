"""The verifier: follows epoch proofs, checks served receipts, re-executes a sample and challenges what it proved wrong.

`Verifier(session, VerifierConfig(...)).run_once()` runs one pass and
returns a `PassReport`; `cloudless verifier run` loops over passes.
"""

from __future__ import annotations

from cloudless.verifier.actions import ActionRecord
from cloudless.verifier.findings import Finding, FindingKind, Remedy
from cloudless.verifier.proofs import ProofReport
from cloudless.verifier.service import PassReport, Verifier, VerifierConfig

__all__ = [
    "ActionRecord",
    "Finding",
    "FindingKind",
    "PassReport",
    "ProofReport",
    "Remedy",
    "Verifier",
    "VerifierConfig",
]
