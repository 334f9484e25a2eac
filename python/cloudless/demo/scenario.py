"""The end-to-end demo: a local chain, two providers, one deal, real calls, proofs and claims.

Every service runs as a real child process (anvil, gateway, two provider
nodes, matcher); this module drives them through the chain and HTTP only.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml
from eth_account import Account

from cloudless.chain import ChainClient, DeploySettings, deploy_all, deployment_path
from cloudless.chain.artifacts import project_root
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session, connect
from cloudless.chain.types import DealParams, DealStatus
from cloudless.cid import compute_cid, cid_to_bytes
from cloudless.demo.processes import ProcessGroup, check_port_free
from cloudless.demo.summary import CallRecord, DemoSummary, PlacementRecord, ProviderRecord
from cloudless.demo.verifying import DemoVerifier
from cloudless.exceptions import ServiceError
from cloudless.formatting import format_count
from cloudless.receipts.eip712 import Domain, verify_receipt
from cloudless.receipts.models import SignedReceipt
from cloudless.runtime.package import build_package_from_dir

__all__ = ["DemoSettings", "run_demo"]

logger = logging.getLogger("cloudless.demo")

# Local test accounts (Anvil's default mnemonic) and what each one plays.
DEPLOYER, DEVELOPER, GATEWAY_CALLER, MATCHER, VERIFIER = 0, 5, 7, 9, 15


@dataclass(frozen=True)
class ProviderPlan:
    name: str
    account: int
    price_usdc: str  # per CU per epoch
    region: int
    peer_accounts: tuple[int, ...]  # local test accounts used as peer signers
    peer_cus: int


PROVIDERS = (
    ProviderPlan(name="alpha", account=1, price_usdc="0.20", region=276, peer_accounts=(10, 11), peer_cus=2),
    ProviderPlan(name="beta", account=2, price_usdc="0.35", region=250, peer_accounts=(12,), peer_cus=4),
)


@dataclass(frozen=True)
class DemoSettings:
    """Ports, timing and where the demo keeps its files."""

    work_dir: Path
    anvil_port: int = 8545
    gateway_port: int = 8080
    node_ports: tuple[int, int] = (8701, 8702)
    epoch_duration: int = 10  # seconds
    proof_window_epochs: int = 1
    challenge_window_epochs: int = 1
    deposit_usdc: str = "10"
    max_price_usdc: str = "0.50"  # cap per CU per epoch, above both offers
    calls_per_function: int = 1


@dataclass
class DemoContext:
    settings: DemoSettings
    processes: ProcessGroup
    rpc_url: str
    gateway_url: str
    session: Session | None = None
    progress: Callable[[str], None] = field(default=lambda message: None)


def _cloudless(*args: str) -> list[str]:
    return [sys.executable, "-m", "cloudless", *args]


def _preflight(settings: DemoSettings) -> None:
    """Check tools, built functions and ports before starting anything."""
    if shutil.which("anvil") is None:
        raise ServiceError("anvil not found on PATH: run `make setup`, or add node_modules/.bin to PATH")
    dist = project_root() / "functions" / "dist"
    for name in ("penguins", "text"):
        if not (dist / f"{name}.wasm").is_file():
            raise ServiceError(f"{dist / (name + '.wasm')} is missing: run `make setup` (or `bash functions/build.sh`)")

    check_port_free(settings.anvil_port, "local chain (anvil)", "--anvil-port")
    check_port_free(settings.gateway_port, "gateway", "--gateway-port")
    for port in settings.node_ports:
        check_port_free(port, "provider node", "--node-ports")


def _start_chain(context: DemoContext) -> Session:
    settings = context.settings
    anvil = context.processes.start(
        "anvil",
        [
            "anvil",
            "--host", "127.0.0.1",
            "--port", str(settings.anvil_port),
            "--block-time", "1",
            "--accounts", "20",
        ],
    )

    def rpc_ready() -> bool:
        try:
            response = httpx.post(context.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    context.processes.wait_until(anvil, rpc_ready, f"JSON-RPC at {context.rpc_url}", timeout=30)

    deployer = ChainClient.connect(context.rpc_url, private_key=anvil_account_key(DEPLOYER))
    deploy_settings = DeploySettings(
        epoch_duration=settings.epoch_duration,
        proof_window_epochs=settings.proof_window_epochs,
        challenge_window_epochs=settings.challenge_window_epochs,
        min_deposited_epochs=2,
    )
    deployment = deploy_all(deployer, deploy_settings, rpc_url=context.rpc_url)
    deployment.save(deployment_path(deployment.chain_id))
    context.progress(f"deployed contracts to chain {deployment.chain_id}, epochs of {settings.epoch_duration} s")

    session = connect(context.rpc_url, anvil_account_key(DEPLOYER), deployment=deployment)
    for plan in PROVIDERS:
        address = Account.from_key(anvil_account_key(plan.account)).address
        stake = len(plan.peer_accounts) * plan.peer_cus * deployment.collateral_per_cu
        session.fund(address, flt=stake)
    session.fund(Account.from_key(anvil_account_key(DEVELOPER)).address, usdc=session.usdc.parse("100"))
    return session


def _start_gateway(context: DemoContext) -> dict[str, bytes]:
    """Start the gateway and upload the example packages; return packages by CID."""
    settings = context.settings
    gateway = context.processes.start(
        "gateway",
        _cloudless(
            "gateway", "up",
            "--rpc-url", context.rpc_url,
            "--port", str(settings.gateway_port),
            "--data-dir", str(settings.work_dir / "gateway"),
            "--account-index", str(GATEWAY_CALLER),
        ),
    )
    context.processes.wait_http(gateway, f"{context.gateway_url}/health")

    root = project_root() / "functions"
    packages: dict[str, bytes] = {}
    for name in ("penguins", "text"):
        data = build_package_from_dir(root / "examples" / name, root / "dist")
        response = httpx.post(f"{context.gateway_url}/packages", content=data, timeout=30)
        if response.status_code != 200:
            raise ServiceError(f"the gateway rejected the {name} package: HTTP {response.status_code} {response.text[:200]}")
        packages[name] = data
        context.progress(f"uploaded package {name}: {compute_cid(data)} ({len(data)} bytes)")
    return packages


def _start_nodes(context: DemoContext) -> None:
    settings = context.settings
    for plan, port in zip(PROVIDERS, settings.node_ports):
        node_dir = settings.work_dir / f"node-{plan.name}"
        # Every demo run starts a new chain, so receipts of an earlier run are void.
        shutil.rmtree(node_dir / "data", ignore_errors=True)
        node_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "rpc_url": context.rpc_url,
            "name": plan.name,
            "provider_key": anvil_account_key(plan.account),
            "listen": {"host": "127.0.0.1", "port": port},
            "data_dir": str(node_dir / "data"),
            "package_sources": [context.gateway_url],
            "offer": {"price_usdc": plan.price_usdc, "region": plan.region, "tier": 3, "sla_bps": 9990},
            "peers": [{"signer_key": anvil_account_key(index), "cus": plan.peer_cus} for index in plan.peer_accounts],
            "poll_interval_seconds": 1.0,
        }
        config_path = node_dir / "node.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        config_path.chmod(0o600)  # it contains private keys
        # --rpc-url keeps a $CLOUDLESS_RPC_URL of the user's shell from pointing the node at another chain.
        node = context.processes.start(
            f"node-{plan.name}",
            _cloudless("provider", "up", "--config", str(config_path), "--rpc-url", context.rpc_url),
        )
        context.processes.wait_http(node, f"http://127.0.0.1:{port}/health", timeout=90)
        context.progress(
            f"provider {plan.name}: {format_count(len(plan.peer_accounts), 'peer')} x "
            f"{format_count(plan.peer_cus, 'CU')} at {plan.price_usdc} USDC/CU/epoch"
        )


def _wait_for(context: DemoContext, check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        context.processes.check_all_alive()
        if check():
            return
        time.sleep(0.5)
    raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}; logs are in {context.processes.log_dir}")


def _call(context: DemoContext, deal_id: int, function: str, payload: dict[str, Any], *, expect_ok: bool = True) -> httpx.Response:
    """POST a call through the gateway; retry while nodes are still fetching the package."""
    url = f"{context.gateway_url}/deals/{deal_id}/functions/{function}"
    deadline = time.monotonic() + 60
    while True:
        response = httpx.post(url, json=payload, timeout=60)
        retryable = response.status_code in (502, 503, 504)
        if not retryable or time.monotonic() > deadline or not expect_ok:
            return response
        logger.info("gateway returned HTTP %d for %s; retrying", response.status_code, function)
        time.sleep(1)


def _verify_receipt(session: Session, payload: dict[str, Any]) -> bool:
    """Check the receipt's signature against the worker's peer signer on chain, independently of the gateway."""
    signed = SignedReceipt.from_dict(payload["receipt"])
    worker = session.deals.get_worker(signed.worker_id)
    signer = session.market.get_peer(worker.peer_id).signer
    domain = Domain(chain_id=session.deployment.chain_id, verifying_contract=session.deployment.address("ExecutionReceipts"))
    verify_receipt(signed.to_receipt(), signed.signature, domain, expected_signer=signer)
    return True


def run_demo(settings: DemoSettings, progress: Callable[[str], None]) -> DemoSummary:
    """Run the whole demo and return its summary; every child process is stopped on return or error."""
    _preflight(settings)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    processes = ProcessGroup(settings.work_dir / "logs")
    context = DemoContext(
        settings=settings,
        processes=processes,
        rpc_url=f"http://127.0.0.1:{settings.anvil_port}",
        gateway_url=f"http://127.0.0.1:{settings.gateway_port}",
        progress=progress,
    )
    try:
        return _run(context)
    finally:
        processes.stop_all()


def _run(context: DemoContext) -> DemoSummary:
    settings = context.settings
    admin = _start_chain(context)
    packages = _start_gateway(context)
    _start_nodes(context)

    # The developer creates the deal from Python through the binding layer.
    developer = admin.with_key(anvil_account_key(DEVELOPER))
    app_cid = compute_cid(packages["penguins"])
    deposit = developer.usdc.parse(settings.deposit_usdc)
    params = DealParams(
        app_cid=cid_to_bytes(app_cid),
        payment_token=developer.usdc.address,
        max_price_per_cu_per_epoch=developer.usdc.parse(settings.max_price_usdc),
        deposit=deposit,
        cu_per_worker=1,
        min_workers=2,
        target_workers=2,
        max_workers_per_provider=1,
    )
    deal_id = developer.create_deal(params)
    context.progress(
        f"deal {deal_id} created for 2 workers (at most 1 per provider), cap {settings.max_price_usdc} USDC/CU/epoch, "
        f"deposit {settings.deposit_usdc} USDC"
    )

    matcher = context.processes.start(
        "matcher",
        _cloudless("matcher", "run", "--rpc-url", context.rpc_url, "--interval", "1", "--account-index", str(MATCHER)),
    )
    _wait_for(context, lambda: developer.deals.get_deal(deal_id).active_workers == 2, "the matcher to place 2 workers", 60)
    matcher.check_alive()
    status = developer.deals.deal_status(deal_id)
    context.progress(f"matcher placed 2 workers; deal status {status.name}")

    placements = []
    for worker_id in developer.deals.deal_worker_ids(deal_id):
        worker = developer.deals.get_worker(worker_id)
        provider_name = next(plan.name for plan in PROVIDERS if Account.from_key(anvil_account_key(plan.account)).address == worker.provider)
        placements.append(
            PlacementRecord(
                worker_id=worker_id,
                peer_id=worker.peer_id,
                provider=provider_name,
                price_usdc=developer.usdc.format(worker.price_per_cu_per_epoch),
                joined_epoch=worker.joined_epoch,
            )
        )

    csv_text = (resources.files("palmerpenguins") / "data" / "penguins.csv").read_text()
    call_plan: list[tuple[str, dict[str, Any]]] = [
        ("summarize", {"csv": csv_text, "group_by": "species"}),
        ("summarize", {"csv": csv_text, "group_by": "island"}),
        ("heaviest", {"csv": csv_text, "top": 3}),
    ]
    calls: list[CallRecord] = []
    for function, payload in call_plan * settings.calls_per_function:
        response = _call(context, deal_id, function, payload)
        if response.status_code != 200:
            raise ServiceError(f"call {function} failed with HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        verified = bool(body.get("receipt_verified")) and _verify_receipt(developer, body)
        calls.append(
            CallRecord(
                function=function,
                worker_id=int(body["worker_id"]),
                http_status=200,
                output=json.dumps(body["output"], separators=(",", ":")),
                fuel_used=int(body["receipt"]["fuel_used"]),
                receipt_verified=verified,
            )
        )
        context.progress(f"{function} on worker {body['worker_id']}: receipt verified, {body['receipt']['fuel_used']} fuel")

    # A call of a function the package does not export: a clear 404, with a receipt.
    missing = _call(context, deal_id, "predict", {}, expect_ok=False)
    missing_body = missing.json()
    missing_error = missing_body.get("error") or {}
    calls.append(
        CallRecord(
            function="predict",
            worker_id=int(missing_body.get("worker_id") or 0),
            http_status=missing.status_code,
            output=str(missing_error.get("message", missing_body)),
            fuel_used=0,
            receipt_verified="receipt" in missing_body
            and bool(missing_body.get("receipt_verified"))
            and _verify_receipt(developer, missing_body),
        )
    )
    context.progress(f"predict (not exported) returned HTTP {missing.status_code}: {missing_error.get('kind')}")

    # Stop the deal: the current epoch is the last one billed. Nodes prove the
    # remaining epochs, wait out the proof window and claim.
    developer.deals.stop_deal(deal_id)
    deal = developer.deals.get_deal(deal_id)
    context.progress(f"deal stopped; last billed epoch {deal.end_epoch - 1}; waiting for proofs and claims")

    def all_claimed() -> bool:
        for worker_id in developer.deals.deal_worker_ids(deal_id):
            worker = developer.deals.get_worker(worker_id)
            if worker.claimed_until_epoch < worker.left_epoch:
                return False
            if developer.deals.earnings(worker.provider, developer.usdc.address) != 0:
                return False
        return True

    # A verifier reads the receipts behind every proof of the deal, re-runs
    # each call and compares, while the nodes prove, wait out the proof and
    # challenge windows and claim.
    verifier = DemoVerifier(
        admin, VERIFIER, settings.work_dir / "verifier", deal_id=deal_id, gateway_url=context.gateway_url
    )

    def verified_and_claimed() -> bool:
        verifier.run_pass()
        return all_claimed()

    claim_timeout = (settings.proof_window_epochs + settings.challenge_window_epochs + 4) * settings.epoch_duration + 60
    try:
        _wait_for(context, verified_and_claimed, "every worker's epochs to be proven, claimed and withdrawn", claim_timeout)
    finally:
        verifier.close()
    verification = verifier.record()
    context.progress(
        f"verifier checked {format_count(verification.proofs_checked, 'epoch proof')} and re-executed "
        f"{format_count(verification.calls_reexecuted, 'call')}: {format_count(verification.findings, 'fault')} found"
    )

    leftover = developer.deals.withdrawable(deal_id)
    if leftover:
        developer.deals.withdraw(deal_id, leftover)
    context.progress(f"developer withdrew the remaining {developer.usdc.format(leftover)} USDC")

    summary = _collect_summary(developer, deal_id, deposit, leftover, placements, calls)
    summary.verifier = verification
    return summary


def _collect_summary(
    session: Session,
    deal_id: int,
    deposit: int,
    withdrawn: int,
    placements: list[PlacementRecord],
    calls: list[CallRecord],
) -> DemoSummary:
    deals = session.deals
    usdc = session.usdc
    contract = deals.contract
    deployment = session.deployment

    claimed_events = session.client.get_logs(contract.events.WorkerClaimed, deployment.start_block)
    worker_ids = set(deals.deal_worker_ids(deal_id))
    paid_by_worker: dict[int, int] = {}
    returned_total = 0
    for event in claimed_events:
        worker_id = int(event.args.workerId)
        if worker_id in worker_ids:
            paid_by_worker[worker_id] = paid_by_worker.get(worker_id, 0) + int(event.args.paid)
            returned_total += int(event.args.returned)

    providers: dict[str, ProviderRecord] = {}
    for placement in placements:
        worker = deals.get_worker(placement.worker_id)
        proven = sum(
            1 for epoch in range(worker.joined_epoch, worker.left_epoch) if deals.get_epoch_proof(placement.worker_id, epoch).proven
        )
        placement.epochs_in_deal = worker.left_epoch - worker.joined_epoch
        placement.epochs_proven = proven
        placement.paid_usdc = usdc.format(paid_by_worker.get(placement.worker_id, 0))
        record = providers.setdefault(placement.provider, ProviderRecord(name=placement.provider, address=worker.provider))
        record.claimed += paid_by_worker.get(placement.worker_id, 0)
        record.wallet_usdc = usdc.balance_of(worker.provider)

    final = deals.get_deal(deal_id)
    claimed_total = sum(paid_by_worker.values())
    books_balance = claimed_total + withdrawn + final.balance + final.pending == deposit
    return DemoSummary(
        deal_id=deal_id,
        status=deals.deal_status(deal_id).name,
        deposit_usdc=usdc.format(deposit),
        claimed_usdc=usdc.format(claimed_total),
        returned_usdc=usdc.format(returned_total),
        withdrawn_usdc=usdc.format(withdrawn),
        left_in_deal_usdc=usdc.format(final.balance + final.pending),
        contract_usdc=usdc.format(usdc.balance_of(deals.address)),
        amounts_add_up=books_balance and final.pending == 0,
        placements=placements,
        calls=calls,
        providers=list(providers.values()),
        ended=deals.deal_status(deal_id) == DealStatus.ENDED,
    )
