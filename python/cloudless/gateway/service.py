"""The gateway service: connect to the chain, serve the HTTP API, shut down cleanly."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from cloudless.chain.deployment import Deployment
from cloudless.chain.session import Session, connect
from cloudless.gateway.api import create_gateway_app
from cloudless.gateway.chain_view import ChainView
from cloudless.gateway.config import GatewayConfig
from cloudless.gateway.dispatch import CallDispatcher
from cloudless.gateway.evidence import EvidenceLog
from cloudless.gateway.models import GatewayHealth
from cloudless.gateway.packages import PackageStore
from cloudless.node.http_server import ServerThread
from cloudless.receipts.eip712 import Domain
from cloudless.signals import run_until_signal

__all__ = ["EVIDENCE_FILE_NAME", "Gateway", "run_gateway"]

logger = logging.getLogger("cloudless.gateway")

# The evidence feed's JSONL file, under the gateway's data directory.
EVIDENCE_FILE_NAME = "evidence.jsonl"


class Gateway:
    """One gateway built from a `GatewayConfig`. Call `start`, then `stop`, which is safe to call twice."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._server: ServerThread | None = None
        self._http: httpx.Client | None = None
        self._stopped = False
        self.session: Session | None = None
        self.dispatcher: CallDispatcher | None = None
        self.evidence: EvidenceLog | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> None:
        config = self.config
        deployment = (
            Deployment.model_validate_json(config.deployment_file.read_text())
            if config.deployment_file is not None
            else None
        )
        session = connect(config.rpc_url, deployment=deployment)
        self.session = session
        domain = Domain(
            chain_id=session.deployment.chain_id,
            verifying_contract=session.deployment.address("ExecutionReceipts"),
        )
        view = ChainView(session, ttl_seconds=config.cache_ttl_seconds, endpoints=config.endpoints)
        evidence = EvidenceLog(config.data_dir / EVIDENCE_FILE_NAME)
        self.evidence = evidence
        self._http = httpx.Client(timeout=config.request_timeout_seconds)
        self.dispatcher = CallDispatcher(
            view,
            domain,
            config.resolve_caller_key(),
            self._http,
            deadline_seconds=config.call_deadline_seconds,
            evidence=evidence,
        )
        packages = PackageStore(config.data_dir / "packages")
        dispatcher = self.dispatcher

        def health() -> GatewayHealth:
            return GatewayHealth(
                status="ok",
                chain_id=session.deployment.chain_id,
                deal_manager=session.deals.address,
                caller=dispatcher.caller,
                epoch=view.current_epoch(),
            )

        app = create_gateway_app(self.dispatcher, packages, health, evidence)
        self._server = ServerThread(app, config.host, config.port, logger_name="cloudless.gateway")
        self._server.start()
        logger.info(
            "gateway is up on %s for chain %d, signing calls as %s",
            self._server.url,
            session.deployment.chain_id,
            self.dispatcher.caller,
        )

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        logger.info("stopping gateway")
        if self._server is not None:
            self._server.stop()
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self._http is not None:
            self._http.close()
        logger.info("gateway stopped")


def run_gateway(config: GatewayConfig | None = None, **options: Any) -> None:
    """Run a gateway until SIGTERM or SIGINT. This is the entry point of `cloudless gateway up`.

    Pass a GatewayConfig, or the CLI's keyword options, which
    `GatewayConfig.from_options` turns into one.
    """
    if config is None:
        config = GatewayConfig.from_options(**options)
    elif options:
        raise TypeError(f"run_gateway takes a GatewayConfig or keyword options, not both (got {sorted(options)})")
    gateway = Gateway(config)
    run_until_signal(gateway.start, gateway.stop, logger)
