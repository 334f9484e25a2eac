"""A chain with honest and cheating provider nodes, a gateway and deals that place workers on chosen providers.

`start_cheat_stack` deploys the contracts on a fresh anvil, starts the
gateway, uploads the `text` example package and starts one in-process
provider node per `ProviderSpec`. Each node has its own provider key, one
peer signer and the test-only `cheat:` modes of its config. Then it creates
one deal per `DealSpec`. Every deal allow-lists exactly its providers and is
matched onto their peers by id, so each worker lands on the provider that
the scenario needs.

Time: epochs last `EPOCH_SECONDS` and the whole setup fits in epoch 0.
Tests move chain time with `CheatStack.goto`, which jumps to a chosen second
of a chosen epoch, so a phase never starts near an epoch's end by accident.

Logs of every node, the gateway and the verifier go to one file. Inside
`failure_reports`, a failed test that uses the stack gets that file's tail
and a map of providers, workers and deals in its report.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from eth_account import Account
from local_chain import LocalChain, free_port, local_chain
from web3.logs import DISCARD

from cloudless.chain import DeploySettings
from cloudless.chain.challenges import Fault
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session
from cloudless.chain.tokens import TokenClient
from cloudless.chain.types import AccessMode, BillingMode, DealParams
from cloudless.cid import cid_to_bytes
from cloudless.gateway import Gateway, GatewayConfig
from cloudless.node import ProviderNode, load_node_config
from cloudless.node.models import CallReply
from cloudless.receipts.eip712 import CallRequest, Domain
from cloudless.receipts.models import SignedCallRequest
from cloudless.runtime.package import build_package_from_dir

__all__ = [
    "ANSWER_PERIOD",
    "CHALLENGER_INDEX",
    "CHALLENGE_WINDOW",
    "EPOCH_SECONDS",
    "PROOF_WINDOW",
    "VERIFIER_INDEX",
    "ChainLogs",
    "CheatStack",
    "DealSpec",
    "ProvenFraud",
    "ProviderSpec",
    "Slash",
    "UpheldChallenge",
    "WorkerClaim",
    "failure_reports",
    "start_cheat_stack",
    "wait_for",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]

# Long epochs: every phase of a scenario (calls, proofs, challenges and their
# answers) then has minutes of chain time, whatever the machine's speed, and
# jumps with `goto` are as cheap as short ones.
EPOCH_SECONDS = 600
PROOF_WINDOW = 1  # epoch e is proven in epoch e + 1
CHALLENGE_WINDOW = 1  # and challenged in epoch e + 2, claimed from epoch e + 3
ANSWER_PERIOD = EPOCH_SECONDS // 2  # the deployment default: half the challenge window

ADMIN_INDEX = 0
DEVELOPER_INDEX = 5
GATEWAY_CALLER_INDEX = 8
DIRECT_CALLER_INDEX = 7  # signs the calls that the tests send to nodes directly
VERIFIER_INDEX = 15
CHALLENGER_INDEX = 16  # the test's own challenger
# Provider i uses test account PROVIDER_INDEX_BASE + i, its peer signer
# SIGNER_INDEX_BASE + i. Anvil funds only the first 20 accounts, so the stack
# gives these ETH with `anvil_setBalance`.
PROVIDER_INDEX_BASE = 30
SIGNER_INDEX_BASE = 60
PROVIDER_ETH_WEI = 100 * 10**18
PROVIDER_STAKE_FLT = 400  # whole FLT: covers the CUs and several 100 FLT slashes
OFFER_PRICE_USDC = "0.5"  # per CU per epoch
DEAL_PRICE_CAP_USDC = "1"
DEAL_DEPOSIT_USDC = "100"
# USAGE deals: 0.01 USDC per 10**6 fuel, at most 10**9 fuel billed per worker epoch.
USAGE_PRICE_PER_MEGAFUEL = 10_000
MAX_USAGE_PER_WORKER_EPOCH = 10**9
# Ten nodes poll the chain in one process on two cores; faster polling starves the calls.
NODE_POLL_SECONDS = 1.0
LOG_TAIL_LINES = 200


@dataclass(frozen=True)
class ProviderSpec:
    """One provider node: its name, its cheat modes (empty for an honest node) and its peer's compute units."""

    name: str
    cheats: tuple[str, ...] = ()
    cus: int = 2


@dataclass(frozen=True)
class DealSpec:
    """One deal: its key, the providers that get one worker each, its billing mode and replication."""

    key: str
    providers: tuple[str, ...]
    billing_mode: BillingMode = BillingMode.SUBSCRIPTION
    replication: int = 1


@dataclass
class RunningProvider:
    spec: ProviderSpec
    index: int
    node: ProviderNode
    config_path: Path
    address: str
    signer: str
    peer_id: int

    @property
    def url(self) -> str:
        return self.node.config.endpoint_url


@dataclass
class CheatStack:
    """A running chain, gateway and provider nodes, and the deals placed on them."""

    chain: LocalChain
    directory: Path
    log_path: Path
    gateway: Gateway
    providers: dict[str, RunningProvider]
    deals: dict[str, int]  # deal key -> deal id
    workers: dict[tuple[str, str], int]  # (deal key, provider name) -> worker id
    package_cid: str
    domain: Domain
    admin: Session
    developer: Session
    _nonces: Iterator[int] = field(default_factory=lambda: itertools.count(time.time_ns()))

    # ------------------------------------------------------------ chain time

    def chain_time(self) -> int:
        """Return the latest block's timestamp, in unix seconds."""
        return int(self.admin.client.w3.eth.get_block("latest")["timestamp"])

    def epoch_start(self, epoch: int) -> int:
        return self.chain.deployment.epoch.genesis + epoch * EPOCH_SECONDS

    def current_epoch(self) -> int:
        return self.admin.deals.current_epoch()

    def goto(self, epoch: int, offset_seconds: int = 1) -> None:
        """Mine a block `offset_seconds` into `epoch`; later blocks follow the wall clock from there."""
        target = self.epoch_start(epoch) + offset_seconds
        now = self.chain_time()
        if target <= now:
            raise AssertionError(
                f"cannot move chain time back: second {offset_seconds} of epoch {epoch} is unix {target}, "
                f"the chain is at {now} (epoch {self.current_epoch()})"
            )
        self.chain.rpc("evm_setNextBlockTimestamp", target)
        self.chain.rpc("evm_mine")
        logging.getLogger("cloudless.tests").info("chain time moved to second %d of epoch %d", offset_seconds, epoch)

    # ----------------------------------------------------------------- calls

    def worker(self, deal_key: str, provider: str) -> int:
        return self.workers[(deal_key, provider)]

    def signed_call(self, deal_key: str, function: str, payload: Any) -> dict[str, Any]:
        """Return a `POST /workers/{id}/call` body signed by the direct caller, valid for an hour of chain time."""
        input_bytes = json.dumps(payload).encode()
        # Chain time runs ahead of the wall clock after a jump. The node checks
        # the deadline against its clock and the contract against the epoch's start.
        deadline = max(self.chain_time(), int(time.time())) + 3600
        request = CallRequest.for_input(
            deal_id=self.deals[deal_key],
            function_name=function,
            input=input_bytes,
            nonce=next(self._nonces),
            deadline=deadline,
        )
        signed = SignedCallRequest.sign(request, anvil_account_key(DIRECT_CALLER_INDEX), self.domain)
        return {"request": signed.to_dict(), "input_b64": base64.b64encode(input_bytes).decode("ascii")}

    def call_worker(self, deal_key: str, provider: str, function: str, payload: Any) -> CallReply:
        """Send one signed call straight to a worker's node and return its reply; fail on any HTTP error."""
        worker_id = self.worker(deal_key, provider)
        url = f"{self.providers[provider].url}/workers/{worker_id}/call"
        response = httpx.post(url, json=self.signed_call(deal_key, function, payload), timeout=30)
        assert response.status_code == 200, (
            f"call {function} on worker {worker_id} ({deal_key}, provider {provider}) returned "
            f"{response.status_code}: {response.text[:500]}"
        )
        return CallReply.model_validate(response.json())

    def call_gateway(self, deal_key: str, function: str, payload: Any) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/deals/{self.deals[deal_key]}/functions/{function}",
            content=json.dumps(payload).encode(),
            timeout=60,
        )

    # ----------------------------------------------------------- diagnostics

    def describe(self) -> str:
        """Return who is who: every provider with its address, peer, node URL and cheats, and every deal's workers."""
        lines = ["providers:"]
        for running in self.providers.values():
            cheats = ", ".join(running.spec.cheats) or "honest"
            lines.append(
                f"  {running.spec.name}: {running.address} peer {running.peer_id} signer {running.signer} "
                f"{running.url} ({cheats})"
            )
        lines.append("deals:")
        for key, deal_id in self.deals.items():
            placed = ", ".join(
                f"worker {worker_id} on {provider}"
                for (deal_key, provider), worker_id in self.workers.items()
                if deal_key == key
            )
            lines.append(f"  {key}: deal {deal_id}: {placed}")
        lines.append(f"chain epoch {self.current_epoch()}, log file {self.log_path}")
        return "\n".join(lines)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(cannot read {self.log_path}: {error})"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- chain logs


@dataclass(frozen=True)
class UpheldChallenge:
    """A `ChallengeUpheld` log."""

    challenge_id: int
    worker_id: int
    epoch: int
    provider: str
    fault: Fault
    transaction: bytes


@dataclass(frozen=True)
class ProvenFraud:
    """A `FraudProven` log."""

    fraud_key: bytes
    provider: str
    worker_id: int
    epoch: int
    reporter: str
    fault: Fault
    slashed: int  # FLT wei
    transaction: bytes


@dataclass(frozen=True)
class Slash:
    """A `Market.ProviderSlashed` log. `reason` is the challenge id (as bytes32) or the fraud key."""

    provider: str
    reporter: str
    amount: int  # FLT wei taken from the provider
    reporter_share: int  # FLT wei credited to the reporter's slash rewards
    reason: bytes
    transaction: bytes


@dataclass(frozen=True)
class WorkerClaim:
    """A `WorkerClaimed` log: epochs [from_epoch, to_epoch) of one worker."""

    worker_id: int
    from_epoch: int
    to_epoch: int
    proven_epochs: int
    paid: int  # payment-token base units
    returned: int  # base units given back to the deal for unproven epochs

    def covers(self, epoch: int) -> bool:
        return self.from_epoch <= epoch < self.to_epoch


class ChainLogs:
    """Reads the logs that the scenarios assert on, from the deployment block on."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._start = session.deployment.start_block

    def _logs(self, contract: Any, event: str, **filters: Any) -> list[Any]:
        return self._session.client.get_logs(getattr(contract.events, event), self._start, **filters)

    def upheld(self, worker_id: int | None = None) -> list[UpheldChallenge]:
        filters = {} if worker_id is None else {"workerId": worker_id}
        return [
            UpheldChallenge(
                challenge_id=int(log.args.challengeId),
                worker_id=int(log.args.workerId),
                epoch=int(log.args.epoch),
                provider=str(log.args.provider),
                fault=Fault(log.args.fault),
                transaction=bytes(log.transactionHash),
            )
            for log in self._logs(self._session.challenges.contract, "ChallengeUpheld", **filters)
        ]

    def frauds(self, worker_id: int | None = None) -> list[ProvenFraud]:
        filters = {} if worker_id is None else {"workerId": worker_id}
        return [
            ProvenFraud(
                fraud_key=bytes(log.args.fraudKey),
                provider=str(log.args.provider),
                worker_id=int(log.args.workerId),
                epoch=int(log.args.epoch),
                reporter=str(log.args.reporter),
                fault=Fault(log.args.fault),
                slashed=int(log.args.slashed),
                transaction=bytes(log.transactionHash),
            )
            for log in self._logs(self._session.challenges.contract, "FraudProven", **filters)
        ]

    def slashes(self, provider: str | None = None) -> list[Slash]:
        filters = {} if provider is None else {"provider": provider}
        return [
            Slash(
                provider=str(log.args.provider),
                reporter=str(log.args.reporter),
                amount=int(log.args.amount),
                reporter_share=int(log.args.reporterShare),
                reason=bytes(log.args.reason),
                transaction=bytes(log.transactionHash),
            )
            for log in self._logs(self._session.market.contract, "ProviderSlashed", **filters)
        ]

    def claims(self, worker_id: int) -> list[WorkerClaim]:
        return [
            WorkerClaim(
                worker_id=int(log.args.workerId),
                from_epoch=int(log.args.fromEpoch),
                to_epoch=int(log.args.toEpoch),
                proven_epochs=int(log.args.provenEpochs),
                paid=int(log.args.paid),
                returned=int(log.args.returned),
            )
            for log in self._logs(self._session.deals.contract, "WorkerClaimed", workerId=worker_id)
        ]

    def claim_of(self, worker_id: int, epoch: int) -> WorkerClaim | None:
        """Return the claim that covers `epoch` of the worker, or None if it was not claimed yet."""
        covering = [claim for claim in self.claims(worker_id) if claim.covers(epoch)]
        return covering[0] if covering else None

    def flt_transfers(self, transaction: bytes, sender: str) -> list[tuple[str, int]]:
        """Return (recipient, FLT wei) of every FLT transfer from `sender` in one transaction."""
        receipt = self._session.client.w3.eth.get_transaction_receipt(transaction)
        events = self._session.flt.contract.events.Transfer().process_receipt(receipt, errors=DISCARD)
        return [(str(event.args.to), int(event.args.value)) for event in events if event.args["from"] == sender]


T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    description: str | Callable[[], str],
    timeout_seconds: float = 30.0,
    interval_seconds: float = 0.2,
) -> T:
    """Poll `condition` until it returns a truthy value; on timeout fail naming `description`.

    A callable description is evaluated at the timeout, so it can say what is still missing.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = description() if callable(description) else description
            raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {text}")
        time.sleep(interval_seconds)


def wait_until(condition: Callable[[], object], timeout_seconds: float, interval_seconds: float = 0.2) -> bool:
    """Poll `condition` until it is truthy or `timeout_seconds` pass; return whether it became truthy."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_seconds)
    return True


# --------------------------------------------------------------------- setup


def text_package() -> bytes:
    dist = ROOT / "functions" / "dist"
    if not (dist / "text.wasm").is_file():
        subprocess.run(["bash", str(ROOT / "functions" / "build.sh")], check=True, cwd=ROOT)
    return build_package_from_dir(ROOT / "functions" / "examples" / "text", dist)


def _write_node_config(
    directory: Path, chain: LocalChain, deployment_file: Path, gateway_url: str, spec: ProviderSpec, index: int
) -> Path:
    config: dict[str, Any] = {
        "rpc_url": chain.rpc_url,
        "deployment_file": str(deployment_file),
        "provider_key": anvil_account_key(PROVIDER_INDEX_BASE + index),
        "name": spec.name,
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "data_dir": str(directory / spec.name),
        "package_sources": [gateway_url],
        "offer": {
            "price_usdc": OFFER_PRICE_USDC,
            "region": 276,
            "tier": 3,
            "sla_bps": 9990,
            "stake_flt": str(PROVIDER_STAKE_FLT),
        },
        "peers": [{"signer_key": anvil_account_key(SIGNER_INDEX_BASE + index), "cus": spec.cus}],
        "poll_interval_seconds": NODE_POLL_SECONDS,
        "claim": {"enabled": True},
        "max_concurrent_calls": 4,
    }
    if spec.cheats:
        config["cheat"] = list(spec.cheats)
    path = directory / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _deal_params(spec: DealSpec, addresses: dict[str, str], cid: str, usdc: TokenClient) -> DealParams:
    usage = spec.billing_mode == BillingMode.USAGE
    return DealParams(
        app_cid=cid_to_bytes(cid),
        payment_token=usdc.address,
        max_price_per_cu_per_epoch=usdc.parse(DEAL_PRICE_CAP_USDC),
        deposit=usdc.parse(DEAL_DEPOSIT_USDC),
        min_workers=len(spec.providers),
        target_workers=len(spec.providers),
        max_workers_per_provider=1,
        access_mode=AccessMode.ALLOW_LIST,
        providers=tuple(addresses[name] for name in spec.providers),
        billing_mode=spec.billing_mode,
        usage_price_per_megafuel=USAGE_PRICE_PER_MEGAFUEL if usage else 0,
        max_usage_per_worker_epoch=MAX_USAGE_PER_WORKER_EPOCH if usage else 0,
    )


def _attach_log_file(path: Path) -> tuple[logging.Handler, int]:
    """Send INFO and above of every "cloudless" logger (services and this module) to `path`; return the handler and the old level."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("cloudless")
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler, old_level


@contextmanager
def start_cheat_stack(
    directory: Path, providers: list[ProviderSpec], deals: list[DealSpec]
) -> Iterator[CheatStack]:
    """Start the chain, gateway and nodes, create and place the deals, and stop everything on exit."""
    log_path = directory / "stack.log"
    handler, old_level = _attach_log_file(log_path)
    settings = DeploySettings(
        epoch_duration=EPOCH_SECONDS,
        proof_window_epochs=PROOF_WINDOW,
        challenge_window_epochs=CHALLENGE_WINDOW,
        min_deposited_epochs=2,
        answer_period=ANSWER_PERIOD,
    )
    services: list[ProviderNode | Gateway] = []
    try:
        with local_chain(settings) as chain:
            try:
                yield _start_services(chain, directory, log_path, providers, deals, services)
            finally:
                # Nodes and the gateway stop before anvil, so that their last cycles do not fail on RPC.
                for service in reversed(services):
                    service.stop()
    finally:
        logger = logging.getLogger("cloudless")
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


def _start_services(
    chain: LocalChain,
    directory: Path,
    log_path: Path,
    providers: list[ProviderSpec],
    deals: list[DealSpec],
    services: list[ProviderNode | Gateway],
) -> CheatStack:
    """Start the gateway and the nodes (appending each to `services` once started) and place the deals."""
    log = logging.getLogger("cloudless.tests")
    deployment_file = directory / "deployment.json"
    chain.deployment.save(deployment_file)
    admin = chain.session(ADMIN_INDEX)
    developer = chain.session(DEVELOPER_INDEX)
    admin.fund(developer.address, usdc=admin.usdc.parse("10000"))

    gateway = Gateway(
        GatewayConfig(
            rpc_url=chain.rpc_url,
            deployment_file=deployment_file,
            caller_account_index=GATEWAY_CALLER_INDEX,
            port=free_port(),
            data_dir=directory / "gateway",
            request_timeout_seconds=20,
            cache_ttl_seconds=0.5,
            endpoints={},
        )
    )
    services.append(gateway)
    gateway.start()
    uploaded = httpx.post(f"{gateway.url}/packages", content=text_package(), timeout=60)
    assert uploaded.status_code == 200, f"package upload failed: {uploaded.text}"
    cid = uploaded.json()["cid"]

    running: dict[str, RunningProvider] = {}
    for index, spec in enumerate(providers):
        address = Account.from_key(anvil_account_key(PROVIDER_INDEX_BASE + index)).address
        chain.rpc("anvil_setBalance", address, hex(PROVIDER_ETH_WEI))
        admin.fund(address, flt=admin.flt.parse(str(PROVIDER_STAKE_FLT)))
        config_path = _write_node_config(directory, chain, deployment_file, gateway.url, spec, index)
        node = ProviderNode(load_node_config(config_path))
        services.append(node)
        node.start()
        assert node.registration is not None
        ((signer, peer_id),) = node.registration.peer_ids.items()
        running[spec.name] = RunningProvider(spec, index, node, config_path, address, signer, peer_id)
        log.info("started provider %s (%s) with cheats %s", spec.name, address, list(spec.cheats))

    addresses = {name: provider.address for name, provider in running.items()}
    deal_ids: dict[str, int] = {}
    workers: dict[tuple[str, str], int] = {}
    for deal in deals:
        deal_id = developer.create_deal(_deal_params(deal, addresses, cid, developer.usdc))
        match = developer.deals.match_deal(deal_id, [running[name].peer_id for name in deal.providers])
        assert len(match.worker_ids) == len(deal.providers), f"deal {deal.key} placed {match}"
        if deal.replication > 1:
            developer.challenges.set_replication(deal_id, deal.replication)
        deal_ids[deal.key] = deal_id
        for worker_id in match.worker_ids:
            provider = developer.deals.get_worker(worker_id).provider
            (name,) = [name for name, address in addresses.items() if address == provider]
            workers[(deal.key, name)] = worker_id
        log.info("deal %s is %d with workers %s", deal.key, deal_id, match.worker_ids)

    stack = CheatStack(
        chain=chain,
        directory=directory,
        log_path=log_path,
        gateway=gateway,
        providers=running,
        deals=deal_ids,
        workers=workers,
        package_cid=cid,
        domain=Domain(
            chain_id=chain.deployment.chain_id,
            verifying_contract=chain.deployment.address("ExecutionReceipts"),
        ),
        admin=admin,
        developer=developer,
    )
    _wait_for_serving_workers(stack)
    return stack


def _wait_for_serving_workers(stack: CheatStack) -> None:
    expected: dict[str, set[int]] = {}
    for (_, provider), worker_id in stack.workers.items():
        expected.setdefault(provider, set()).add(worker_id)

    def ready(provider: str) -> bool:
        health = httpx.get(f"{stack.providers[provider].url}/health", timeout=5).json()
        serving = {worker["worker_id"] for worker in health["workers"] if worker["serving"] and worker["package_loaded"]}
        return expected[provider] <= serving

    for provider, worker_ids in expected.items():
        wait_for(lambda: ready(provider), f"node {provider} to serve workers {sorted(worker_ids)} with the package loaded")


# ------------------------------------------------------- failure reports


class _FailureReport:
    """A pytest plugin that adds the stack's map and log tail to the report of a failed test that uses the stack."""

    def __init__(self, stack: CheatStack, fixture_name: str) -> None:
        self._stack = stack
        self._fixture_name = fixture_name

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        if not report.failed or self._fixture_name not in getattr(item, "fixturenames", ()):
            return
        report.sections.append(("cheat stack", self._stack.describe()))
        report.sections.append((f"cheat stack log (last {LOG_TAIL_LINES} lines)", self._stack.log_tail()))


@contextmanager
def failure_reports(config: pytest.Config, stack: CheatStack, fixture_name: str) -> Iterator[None]:
    """While open, failed tests that use the fixture `fixture_name` report `stack`'s map and log tail."""
    plugin = _FailureReport(stack, fixture_name)
    config.pluginmanager.register(plugin)
    try:
        yield
    finally:
        config.pluginmanager.unregister(plugin)
