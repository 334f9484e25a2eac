"""The demo's verifier: checks every epoch proof of the deal while the demo waits for claims."""

from __future__ import annotations

import logging
from pathlib import Path

from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session
from cloudless.demo.summary import VerifierRecord
from cloudless.verifier import Verifier, VerifierConfig

__all__ = ["DemoVerifier"]

logger = logging.getLogger("cloudless.demo")

# FLT the verifier holds for challenge bonds; an honest demo never spends it.
BOND_FUNDS = 100 * 10**18


class DemoVerifier:
    """A verifier that re-executes every call of one deal and keeps a tally of what it checked."""

    def __init__(self, admin: Session, account: int, state_dir: Path, *, deal_id: int, gateway_url: str) -> None:
        session = admin.with_key(anvil_account_key(account))
        admin.fund(session.address, flt=BOND_FUNDS)
        config = VerifierConfig(
            state_dir=state_dir,
            deal_ids=frozenset({deal_id}),
            sample_rate=1.0,
            gateways=(gateway_url,),
        )
        self._verifier = Verifier(session, config)
        self._statuses: dict[tuple[int, int], str] = {}
        self._reexecuted = 0
        self._findings = 0
        self._actions = 0

    def run_pass(self) -> None:
        """Check the proofs that appeared since the last pass."""
        report = self._verifier.run_once()
        for proof in report.proofs:
            self._statuses[(proof.worker_id, proof.epoch)] = proof.status
            self._reexecuted += proof.reexecuted
        self._findings += len(report.findings)
        self._actions += len(report.actions)

    def close(self) -> None:
        self._verifier.close()

    def record(self) -> VerifierRecord:
        checked = sum(1 for status in self._statuses.values() if status != "not_served")
        return VerifierRecord(
            proofs_checked=checked,
            calls_reexecuted=self._reexecuted,
            findings=self._findings,
            actions=self._actions,
        )
