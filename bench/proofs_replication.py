"""Latency of replicated calls through the real gateway and three real provider nodes on 127.0.0.1.

`measure_replication()` starts anvil, deploys the contracts, starts the
gateway in this process and three provider nodes, each in its own
`cloudless provider up` process as a provider with one peer. It uploads the
`limits` example package and places one deal's three workers, one on each
provider. It then times `POST /deals/{id}/functions/echo` through the
gateway with the deal's replication (`ChallengeManager.setReplication`) at 1,
2 and 3, round by round, and checks that every reply carries k agreeing
receipts from k different workers.

The nodes run in their own processes because nodes in the gateway's process
share one interpreter lock, so k node calls run one after another. On this
project's 2-core machine, k = 3 took three times as long as k = 1 that way. Separate processes still share the machine's cores with each other,
with the gateway and with anvil, so the extra latency of k = 3 is higher
than on separate machines.
"""

from __future__ import annotations

import functools
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import httpx
import yaml
from gas_market import BenchError, check

from cloudless.chain import DeploySettings
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, free_port, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams
from cloudless.cid import cid_to_bytes
from cloudless.gateway import Gateway, GatewayConfig
from cloudless.runtime.package import build_package_from_dir

__all__ = ["REPLICATIONS", "ReplicationResults", "measure_replication"]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
REPLICATIONS = (1, 2, 3)
# Long epochs, so that no epoch ends during the benchmark and no node submits
# proofs while calls are timed.
EPOCH_SECONDS = 3600
ECHO_INPUT = {"value": 1}

ADMIN_ACCOUNT = 0
PROVIDER_ACCOUNTS = (1, 2, 3)
DEVELOPER_ACCOUNT = 5
GATEWAY_CALLER_ACCOUNT = 7
SIGNER_ACCOUNTS = (10, 11, 12)
PROVIDER_STAKE_FLT = "100"
NODE_POLL_SECONDS = 0.5
GATEWAY_CACHE_SECONDS = 0.5  # how long the gateway may serve a deal's old replication
SETUP_TIMEOUT_SECONDS = 60.0
NODE_STOP_SECONDS = 30.0
LOG_TAIL_CHARACTERS = 2000


@dataclass(frozen=True)
class ReplicationResults:
    latency_ms: dict[int, float]  # replication k -> median gateway call latency in ms
    calls: int  # timed calls per k

    def extra_ms(self, replication: int) -> float:
        """Median latency added by replication k over replication 1, in ms."""
        return self.latency_ms[replication] - self.latency_ms[1]


@dataclass
class NodeProcess:
    """A `cloudless provider up` process started by this benchmark, with its log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: TextIO

    def log_tail(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]

    def health(self) -> dict[str, Any] | None:
        """Return the node's `GET /health` body, or None while it does not serve one yet."""
        if self.process.poll() is not None:
            raise BenchError(
                f"provider node {self.name} exited with code {self.process.returncode}. Its log ends with:\n{self.log_tail()}"
            )
        try:
            response = httpx.get(f"{self.url}/health", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def stop(self) -> None:
        """Stop the node with SIGTERM as an operator would, and kill it if it has not exited in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=NODE_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


@dataclass
class ReplicationStack:
    chain: LocalChain
    gateway: Gateway
    nodes: list[NodeProcess]
    developer: Session
    deal_id: int
    worker_ids: tuple[int, ...]

    def call(self, client: httpx.Client) -> httpx.Response:
        return client.post(
            f"{self.gateway.url}/deals/{self.deal_id}/functions/echo", content=json.dumps(ECHO_INPUT).encode()
        )

    def set_replication(self, client: httpx.Client, replication: int) -> None:
        """Set the deal's replication on chain and wait until the gateway reports it."""
        self.developer.challenges.set_replication(self.deal_id, replication)

        def gateway_sees_it() -> bool:
            response = client.get(f"{self.gateway.url}/deals/{self.deal_id}")
            check(response.status_code == 200, f"GET /deals/{self.deal_id} returned {response.status_code}: {response.text[:300]}")
            body = response.json()
            check(
                "replication" in body,
                "the gateway's GET /deals/{id} reply has no `replication` field: this gateway does not replicate calls",
            )
            return bool(body["replication"] == replication)

        wait_for(gateway_sees_it, f"the gateway to report replication {replication} for deal {self.deal_id}")


def wait_for(condition: Callable[[], T | None], description: str, timeout_seconds: float = SETUP_TIMEOUT_SECONDS) -> T:
    """Poll `condition` until it returns a truthy value and return that value. Raises BenchError on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_seconds:.0f} s waiting for {description}")
        time.sleep(0.1)


def _limits_package() -> bytes:
    dist = ROOT / "functions" / "dist"
    if not (dist / "limits.wasm").is_file():
        raise BenchError("missing functions/dist/limits.wasm; run `make setup` first")
    return build_package_from_dir(ROOT / "functions" / "examples" / "limits", dist)


def _node_config(directory: Path, chain: LocalChain, deployment_file: Path, gateway_url: str, index: int) -> Path:
    config: dict[str, Any] = {
        "rpc_url": chain.rpc_url,
        "deployment_file": str(deployment_file),
        "provider_key": anvil_account_key(PROVIDER_ACCOUNTS[index]),
        "name": f"bench-provider-{index + 1}",
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "data_dir": str(directory / f"node-{index + 1}"),
        "package_sources": [gateway_url],
        "offer": {"price_usdc": "0.2", "region": 276, "tier": 3, "sla_bps": 9990, "stake_flt": PROVIDER_STAKE_FLT},
        "peers": [{"signer_key": anvil_account_key(SIGNER_ACCOUNTS[index]), "cus": 2}],
        "poll_interval_seconds": NODE_POLL_SECONDS,
        "claim": {"enabled": False},
    }
    path = directory / f"node-{index + 1}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_node(directory: Path, config_path: Path, index: int) -> NodeProcess:
    """Start `cloudless provider up` for one node config, logging to a file in `directory`."""
    config = yaml.safe_load(config_path.read_text())
    log_path = directory / f"node-{index + 1}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudless", "provider", "up", "--config", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{config['listen']['host']}:{config['listen']['port']}"
    return NodeProcess(config["name"], url, process, log_path, log_file)


def _registered_peer(node: NodeProcess) -> int | None:
    """Return the peer id that the node registered on chain, or None until its health shows one."""
    health = node.health()
    if not health or not health["peers"]:
        return None
    (peer,) = health["peers"]
    return int(peer["peer_id"])


@contextmanager
def replication_stack(directory: Path, report: Callable[[str], None]) -> Iterator[ReplicationStack]:
    """Start the chain, the gateway and three node processes, place a 3-worker deal, and stop everything on exit."""
    settings = DeploySettings(epoch_duration=EPOCH_SECONDS, proof_window_epochs=1, challenge_window_epochs=1)
    with local_chain(settings) as chain, ExitStack() as cleanup:
        deployment_file = directory / "deployment.json"
        chain.deployment.save(deployment_file)
        admin = chain.session(ADMIN_ACCOUNT)
        developer = chain.session(DEVELOPER_ACCOUNT)
        admin.fund(developer.address, usdc=admin.usdc.parse("1000"))

        report("replication: starting the gateway and uploading the package")
        gateway = Gateway(
            GatewayConfig(
                rpc_url=chain.rpc_url,
                deployment_file=deployment_file,
                caller_account_index=GATEWAY_CALLER_ACCOUNT,
                port=free_port(),
                data_dir=directory / "gateway",
                request_timeout_seconds=20,
                cache_ttl_seconds=GATEWAY_CACHE_SECONDS,
                endpoints={},
            )
        )
        gateway.start()
        cleanup.callback(gateway.stop)
        uploaded = httpx.post(f"{gateway.url}/packages", content=_limits_package(), timeout=60)
        check(uploaded.status_code == 200, f"package upload failed: {uploaded.status_code} {uploaded.text[:300]}")
        cid = uploaded.json()["cid"]

        report(f"replication: starting {len(PROVIDER_ACCOUNTS)} provider node processes")
        nodes: list[NodeProcess] = []
        for index, account in enumerate(PROVIDER_ACCOUNTS):
            admin.fund(chain.session(account).address, flt=admin.flt.parse(PROVIDER_STAKE_FLT))
            node = _start_node(directory, _node_config(directory, chain, deployment_file, gateway.url, index), index)
            cleanup.callback(node.stop)
            nodes.append(node)
        peer_ids = [
            wait_for(functools.partial(_registered_peer, node), f"provider node {node.name} to register its peer")
            for node in nodes
        ]

        report("replication: placing a deal with one worker on each provider")
        deal_id = developer.create_deal(
            DealParams(
                app_cid=cid_to_bytes(cid),
                payment_token=developer.usdc.address,
                max_price_per_cu_per_epoch=developer.usdc.parse("0.3"),
                deposit=developer.usdc.parse("100"),
                min_workers=len(peer_ids),
                target_workers=len(peer_ids),
                max_workers_per_provider=1,
            )
        )
        match = developer.deals.match_deal(deal_id, peer_ids)
        check(len(match.worker_ids) == len(peer_ids), f"matchDeal placed {len(match.worker_ids)} of {len(peer_ids)} workers")

        def serving(node: NodeProcess) -> bool:
            health = node.health()
            return bool(health) and any(worker["package_loaded"] and worker["serving"] for worker in health["workers"])

        report("replication: waiting for the nodes to load the package")
        for node in nodes:
            wait_for(functools.partial(serving, node), f"provider node {node.name} to load the package and serve its worker")
        yield ReplicationStack(chain, gateway, nodes, developer, deal_id, tuple(match.worker_ids))


def _timed_calls(stack: ReplicationStack, client: httpx.Client, replication: int, calls: int) -> list[float]:
    """Time `calls` gateway calls at `replication` and check each reply's receipts; return seconds per call."""
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        response = stack.call(client)
        samples.append(time.perf_counter() - started)
        check(response.status_code == 200, f"call with replication {replication} returned {response.status_code}: {response.text[:300]}")
        body = response.json()
        check(body.get("replication") == replication, f"reply names replication {body.get('replication')}, expected {replication}")
        receipts = body.get("receipts") or []
        workers = {receipt["worker_id"] for receipt in receipts}
        check(
            len(receipts) == replication and len(workers) == replication,
            f"reply with replication {replication} has {len(receipts)} receipts from workers {sorted(workers)}",
        )
        outcomes = {(receipt["output_hash"], receipt["fuel_used"]) for receipt in receipts}
        check(len(outcomes) == 1, f"the receipts of one replicated call disagree: {outcomes}")
    return samples


def measure_replication(calls: int, rounds: int, report: Callable[[str], None] = lambda _: None) -> ReplicationResults:
    """Time `calls` gateway calls per replication k and round, alternating k round by round; return medians."""
    samples: dict[int, list[float]] = {replication: [] for replication in REPLICATIONS}
    with tempfile.TemporaryDirectory(prefix="cloudless-bench-") as directory:
        report("replication: starting anvil and deploying")
        with replication_stack(Path(directory), report) as stack, httpx.Client(timeout=60) as client:
            for round_number in range(rounds):
                for replication in REPLICATIONS:
                    report(f"replication: {calls} calls with k = {replication}, round {round_number + 1} of {rounds}")
                    stack.set_replication(client, replication)
                    _timed_calls(stack, client, replication, 2)  # warm-up: connections, caches
                    samples[replication] += _timed_calls(stack, client, replication, calls)
    return ReplicationResults(
        latency_ms={replication: statistics.median(values) * 1000 for replication, values in samples.items()},
        calls=calls * rounds,
    )
