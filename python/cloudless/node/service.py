"""The provider node service: start-up sync, the background loop, the HTTP API and clean shutdown."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from eth_account import Account

from cloudless.chain.challenges import ChallengeClient
from cloudless.chain.deployment import Deployment
from cloudless.chain.session import Session, connect
from cloudless.exceptions import ConfigError
from cloudless.node.answers import ChallengeAnswerer
from cloudless.node.api import create_node_app
from cloudless.node.callers import CallerPolicy
from cloudless.node.chain_identity import check_chain_identity
from cloudless.node.calls import CallService, ReplayGuard
from cloudless.node.cheats import Cheats
from cloudless.node.config import NodeConfig, load_node_config
from cloudless.node.epoch_records import EpochRecords
from cloudless.node.evidence_store import EvidenceStore
from cloudless.node.http_server import ServerThread
from cloudless.node.loop import NodeLoop
from cloudless.node.models import NodeHealth, PeerHealth, WorkerHealth
from cloudless.node.packages import PackageCache
from cloudless.node.prover import EpochClock, EpochProver
from cloudless.node.registration import ProviderRegistration, ensure_signer_gas, sync_endpoint, sync_provider
from cloudless.node.workers import WorkerTracker
from cloudless.receipts.eip712 import Domain
from cloudless.receipts.store import ReceiptStore
from cloudless.runtime.engine import WasmRuntime
from cloudless.signals import run_until_signal

__all__ = ["ProviderNode", "run_node"]

logger = logging.getLogger("cloudless.node")


class ProviderNode:
    """One provider node built from a `NodeConfig`. Call `start`, then `stop`, which is safe to call twice."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._stopped = threading.Event()
        self._server: ServerThread | None = None
        self._loop: NodeLoop | None = None
        self._runtime: WasmRuntime | None = None
        self._store: ReceiptStore | None = None
        self._evidence: EvidenceStore | None = None
        self._peer_cus: dict[str, int] = {}
        self.session: Session | None = None
        self.registration: ProviderRegistration | None = None
        self.tracker: WorkerTracker | None = None
        self.store: ReceiptStore | None = None
        self.evidence: EvidenceStore | None = None
        self.records: EpochRecords | None = None
        self.answerer: ChallengeAnswerer | None = None

    def start(self) -> None:
        """Sync with the chain, open the receipt store and runtime, then start the loop and the HTTP API."""
        config = self.config
        deployment = (
            Deployment.model_validate_json(config.deployment_file.read_text())
            if config.deployment_file is not None
            else None
        )
        session = connect(config.rpc_url, config.resolve_provider_key(), deployment=deployment)
        self.session = session
        peer_keys = config.resolve_peer_keys()
        signer_keys = {Account.from_key(key).address: key for key in peer_keys}
        self._peer_cus = {Account.from_key(key).address: peer.cus for key, peer in zip(peer_keys, config.peers)}
        logger.info(
            "starting provider node %r for %s on chain %d with peers %s",
            config.name,
            session.address,
            session.deployment.chain_id,
            sorted(signer_keys),
        )

        # Before any transaction: a data directory of another chain is an operator error.
        check_chain_identity(config.data_dir, session)
        registration = sync_provider(session, config, list(signer_keys))
        self.registration = registration
        sync_endpoint(session, config.endpoint_url)
        ensure_signer_gas(session, list(signer_keys))

        domain = Domain(
            chain_id=session.deployment.chain_id,
            verifying_contract=session.deployment.address("ExecutionReceipts"),
        )
        data_dir = config.data_dir
        self.store = self._store = ReceiptStore(data_dir / "receipts", domain)
        self.evidence = self._evidence = EvidenceStore(data_dir / "evidence")
        replay = ReplayGuard.from_store(self._store, self._evidence.live_request_hashes(now=int(time.time())))
        logger.info("loaded %d stored receipts from %s", len(replay), data_dir / "receipts")
        self._runtime = WasmRuntime(data_dir / "compiled")
        packages = PackageCache(self._runtime, data_dir / "packages", config.package_sources)

        peer_signers = {peer_id: signer for signer, peer_id in registration.peer_ids.items()}
        self.tracker = WorkerTracker(session, peer_signers, session.deployment.start_block)
        clock = EpochClock(session)
        cheats = Cheats(
            config.cheat,
            store=self._store,
            evidence=self._evidence,
            domain=domain,
            signer_keys=signer_keys,
            tracker=self.tracker,
            clock=clock,
        )
        cheats.log_active()
        self.records = EpochRecords(self._store, self._evidence, clock, cheats)
        signer_sessions = {address: session.with_key(key) for address, key in signer_keys.items()}
        self.answerer = self._make_answerer(session, signer_sessions, cheats)
        proof_window = session.deals.proof_window_epochs()
        prover = EpochProver(
            session,
            signer_sessions,
            self.records,
            clock,
            proof_window_epochs=proof_window,
            has_open_challenge=self.answerer.has_open_challenge if self.answerer is not None else lambda _: False,
            skip_proofs=cheats.skip_proofs,
        )
        self._loop = NodeLoop(
            tracker=self.tracker,
            packages=packages,
            prover=prover,
            clock=clock,
            interval_seconds=config.poll_interval_seconds,
            claim_enabled=config.claim.enabled,
            answerer=self.answerer,
            records=self.records,
            kept_epochs=proof_window + session.deals.challenge_window_epochs(),
            cheats=cheats,
        )
        # One cycle before the API opens, so known workers and their packages are ready.
        self._loop.run_once()

        calls = CallService(
            tracker=self.tracker,
            packages=packages,
            runtime=self._runtime,
            store=self._store,
            clock=clock,
            domain=domain,
            signer_keys=signer_keys,
            replay=replay,
            deal_data_root=data_dir / "deal-data",
            evidence=self._evidence,
            cheats=cheats,
            callers=CallerPolicy(self._challenge_client(session)),
        )
        app = create_node_app(
            calls,
            lambda: self._health(packages),
            max_concurrent_calls=config.max_concurrent_calls,
            records=self.records,
            workers=self.tracker,
        )
        self._server = ServerThread(app, config.listen.host, config.listen.port, logger_name="cloudless.node")
        self._server.start()
        self._loop.start()
        logger.info(
            "provider node %r is up: offer %d, endpoint %s, at most %d concurrent calls",
            config.name,
            registration.offer_id,
            config.endpoint_url,
            config.max_concurrent_calls,
        )

    @staticmethod
    def _challenge_client(session: Session) -> ChallengeClient | None:
        """The deployment's ChallengeManager, or None for a deployment recorded before it existed."""
        try:
            return session.challenges
        except ConfigError as error:
            logger.warning("serving every caller: %s", error)
            return None

    def _make_answerer(
        self, session: Session, signer_sessions: dict[str, Session], cheats: Cheats
    ) -> ChallengeAnswerer | None:
        assert self.tracker is not None and self.records is not None
        try:
            session.challenges.address
        except ConfigError as error:
            logger.warning("not answering challenges: %s", error)
            return None
        return ChallengeAnswerer(
            session=session,
            signers=signer_sessions,
            tracker=self.tracker,
            records=self.records,
            start_block=session.deployment.start_block,
            cheats=cheats,
        )

    def _health(self, packages: PackageCache) -> NodeHealth:
        assert self.session is not None
        assert self.registration is not None
        assert self.tracker is not None
        assert self._loop is not None
        assert self.store is not None
        peers = [
            PeerHealth(peer_id=peer_id, signer=signer, cus=self._peer_cus.get(signer, 0))
            for signer, peer_id in sorted(self.registration.peer_ids.items(), key=lambda item: item[1])
        ]
        epoch = self._loop.last_epoch
        workers = [
            WorkerHealth(
                worker_id=tracked.worker_id,
                deal_id=tracked.deal_id,
                peer_id=tracked.worker.peer_id,
                app_cid=tracked.app_cid,
                serving=epoch is not None and tracked.serves_calls(epoch),
                package_loaded=packages.is_loaded(tracked.app_cid),
                next_sequence=self.store.next_sequence(tracked.worker_id),
            )
            for tracked in self.tracker.all()
        ]
        return NodeHealth(
            status="ok",
            provider=self.session.address,
            offer_id=self.registration.offer_id,
            chain_id=self.session.deployment.chain_id,
            epoch=epoch,
            peers=peers,
            workers=workers,
        )

    def stop(self) -> None:
        """Stop the loop, the HTTP API and the runtime, and close the receipt store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        logger.info("stopping provider node %r", self.config.name)
        if self._loop is not None:
            self._loop.stop()
        if self._server is not None:
            self._server.stop()
        if self._runtime is not None:
            self._runtime.close()
        if self._store is not None:
            self._store.close()
        if self._evidence is not None:
            self._evidence.close()
        logger.info("provider node %r stopped", self.config.name)


def run_node(config_path: str | Path) -> None:
    """Run a provider node from a YAML config until SIGTERM or SIGINT. This is the entry point of `cloudless provider up`."""
    config = load_node_config(config_path)
    node = ProviderNode(config)
    run_until_signal(node.start, node.stop, logger)
