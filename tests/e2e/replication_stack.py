"""A replicated deal on a real anvil: one provider node per provider, a gateway, and a latency measurement.

`replication_stack` deploys the contracts, starts a gateway and one node
per provider (in this process, or each in a process of its own), uploads
the `text` example package, creates a deal with one worker per provider
and places the workers. Tests call through `ReplicationStack.call` and
change the deal's replication with `set_replication`. `node_overrides`
adds keys to one provider's node YAML, for example a node that cheats.

`measure_replication_latency` times sequential gateway calls at several
replications on one stack. Run this file to print the medians:

    python tests/e2e/replication_stack.py [--calls 50] [--rounds 1] [--in-process]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from local_chain import LocalChain, free_port, local_chain
from node_stack import ROOT, health_ok, save_deployment, text_package, wait_for, write_node_config

from cloudless.chain import DeploySettings
from cloudless.chain.types import DealParams
from cloudless.cid import cid_to_bytes
from cloudless.gateway import Gateway, GatewayConfig
from cloudless.node import ProviderNode, load_node_config

__all__ = [
    "CALLER_INDEX",
    "DEVELOPER_INDEX",
    "PROVIDER_INDICES",
    "LatencySample",
    "ReplicationStack",
    "measure_replication_latency",
    "replication_stack",
]

# Local accounts: providers 1 to 4, peer signers 10 to 13 (one per provider), developer 5, gateway caller 7.
PROVIDER_INDICES = (1, 2, 3)
SIGNER_INDEX_OF_PROVIDER = {1: 10, 2: 11, 3: 12, 4: 13}
DEVELOPER_INDEX = 5
CALLER_INDEX = 7
EPOCH_SECONDS = 60


class _Node(Protocol):
    url: str

    def stop(self) -> None: ...


class _ThreadNode:
    """A ProviderNode in this process."""

    def __init__(self, config_path: Path) -> None:
        self.node = ProviderNode(load_node_config(config_path))
        self.node.start()
        self.url = self.node.config.endpoint_url

    def stop(self) -> None:
        self.node.stop()


class _ProcessNode:
    """A provider node in a Python process of its own, stopped with SIGTERM; its log goes to `node.log`."""

    def __init__(self, config_path: Path) -> None:
        config = load_node_config(config_path)
        self.url = config.endpoint_url
        script = (
            "import logging, sys\n"
            "logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')\n"
            "from cloudless.node import run_node\n"
            "run_node(sys.argv[1])\n"
        )
        self._log = open(config_path.parent / "node.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, str(config_path)], stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class ReplicationStack:
    chain: LocalChain
    gateway: Gateway
    directory: Path
    nodes: dict[int, _Node]  # provider account index -> node
    node_configs: dict[int, Path]
    deal_id: int
    worker_ids: tuple[int, ...]
    package_cid: str
    nodes_in_processes: bool = False
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    def stop_node(self, provider: int) -> None:
        self.nodes[provider].stop()

    def start_node(self, provider: int) -> None:
        """Start the provider's node again from its config and wait until it serves /health."""
        node = _start_node(self.node_configs[provider], self.nodes_in_processes)
        self.nodes[provider] = node
        wait_for(lambda: health_ok(node.url), f"the node of provider {provider} to serve /health", timeout_seconds=60)

    def provider_of(self, worker_id: int) -> str:
        return self.chain.session(0).deals.get_worker(worker_id).provider

    def call(self, function: str, payload: Any, *, deal_id: int | None = None) -> httpx.Response:
        return self.http.post(
            f"{self.gateway_url}/deals/{deal_id or self.deal_id}/functions/{function}",
            content=json.dumps(payload).encode(),
        )

    def evidence(self, since: int = 0) -> dict[str, Any]:
        response = self.http.get(f"{self.gateway_url}/evidence", params={"since": since})
        assert response.status_code == 200, response.text
        return response.json()

    def set_replication(self, replication: int, *, deal_id: int | None = None) -> None:
        """Set the deal's replication as its owner and wait until the gateway reads the new value."""
        deal_id = deal_id or self.deal_id
        self.chain.session(DEVELOPER_INDEX).challenges.set_replication(deal_id, replication)
        self.wait_for_replication(replication, deal_id=deal_id)

    def wait_for_replication(self, replication: int, *, deal_id: int | None = None) -> None:
        deal_id = deal_id or self.deal_id
        wait_for(
            lambda: self.http.get(f"{self.gateway_url}/deals/{deal_id}").json()["replication"] == replication,
            f"the gateway to read replication {replication} of deal {deal_id}",
        )


def _start_node(config_path: Path, own_process: bool) -> _Node:
    return _ProcessNode(config_path) if own_process else _ThreadNode(config_path)


def _start_gateway(chain: LocalChain, directory: Path, cache_ttl_seconds: float) -> Gateway:
    gateway = Gateway(
        GatewayConfig(
            rpc_url=chain.rpc_url,
            deployment_file=save_deployment(chain, directory, "gateway-deployment.json"),
            caller_account_index=CALLER_INDEX,
            port=free_port(),
            data_dir=directory / "gateway-data",
            request_timeout_seconds=20,
            cache_ttl_seconds=cache_ttl_seconds,
        )
    )
    gateway.start()
    return gateway


def _peer_ids(url: str) -> list[int]:
    return [peer["peer_id"] for peer in httpx.get(f"{url}/health", timeout=5).json()["peers"]]


def _workers_ready(urls: Sequence[str], count: int) -> bool:
    ready = 0
    for url in urls:
        health = httpx.get(f"{url}/health", timeout=5).json()
        ready += sum(1 for worker in health["workers"] if worker["package_loaded"] and worker["serving"])
    return ready >= count


@contextmanager
def replication_stack(
    directory: Path,
    *,
    providers: Sequence[int] = PROVIDER_INDICES,
    node_overrides: Mapping[int, dict[str, Any]] | None = None,
    nodes_in_processes: bool = False,
    cache_ttl_seconds: float = 0.5,
) -> Iterator[ReplicationStack]:
    """Start the chain, the gateway and one node per provider; yield the stack with one worker per provider placed.

    `node_overrides` maps a provider account index to top-level keys added
    to that provider's node YAML. The deal starts with replication 1.
    """
    settings = DeploySettings(epoch_duration=EPOCH_SECONDS, proof_window_epochs=2, min_deposited_epochs=2)
    with local_chain(settings) as chain, ExitStack() as cleanup:
        admin = chain.session(0)
        developer = chain.session(DEVELOPER_INDEX)
        for provider in providers:
            admin.fund(chain.session(provider).address, flt=10 * chain.deployment.collateral_per_cu)
        admin.fund(developer.address, usdc=admin.usdc.parse("1000"))

        gateway = _start_gateway(chain, directory, cache_ttl_seconds)
        cleanup.callback(gateway.stop)
        uploaded = httpx.post(f"{gateway.url}/packages", content=text_package(), timeout=30)
        assert uploaded.status_code == 200, uploaded.text
        cid = uploaded.json()["cid"]
        deal_id = developer.create_deal(
            DealParams(
                app_cid=cid_to_bytes(cid),
                payment_token=developer.usdc.address,
                max_price_per_cu_per_epoch=developer.usdc.parse("1"),
                deposit=developer.usdc.parse("100"),
                min_workers=len(providers),
                target_workers=len(providers),
                max_workers_per_provider=1,
            )
        )

        configs: dict[int, Path] = {}
        nodes: dict[int, _Node] = {}

        def stop_nodes() -> None:
            # Tests may have replaced a node, so stop whatever runs at the end.
            for node in nodes.values():
                node.stop()

        cleanup.callback(stop_nodes)
        for provider in providers:
            configs[provider] = write_node_config(
                directory / f"provider-{provider}",
                chain,
                gateway.url,
                free_port(),
                provider_index=provider,
                signer_indices=(SIGNER_INDEX_OF_PROVIDER[provider],),
                name=f"replica-provider-{provider}",
                poll_interval_seconds=0.5,
                extra=(node_overrides or {}).get(provider),
            )
            nodes[provider] = _start_node(configs[provider], nodes_in_processes)
        urls = [node.url for node in nodes.values()]
        for url in urls:
            wait_for(lambda url=url: health_ok(url), f"the node at {url} to serve /health", timeout_seconds=60)

        peer_ids = sorted(peer_id for url in urls for peer_id in _peer_ids(url))
        match = developer.deals.match_deal(deal_id, peer_ids)
        assert len(match.worker_ids) == len(providers), match
        wait_for(lambda: _workers_ready(urls, len(providers)), "every node to load the package", timeout_seconds=60)
        yield ReplicationStack(chain, gateway, directory, nodes, configs, deal_id, match.worker_ids, cid, nodes_in_processes)


# ------------------------------------------------------------- measurement


@dataclass(frozen=True)
class LatencySample:
    """Wall-clock times of sequential gateway calls at one replication, in milliseconds."""

    replication: int
    times_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90_ms(self) -> float:
        return statistics.quantiles(self.times_ms, n=10)[-1] if len(self.times_ms) >= 2 else self.times_ms[0]


def measure_replication_latency(
    stack: ReplicationStack,
    replications: Sequence[int] = (1, 2, 3),
    *,
    calls: int = 50,
    rounds: int = 1,
    warmup: int = 3,
    function: str = "reverse",
    payload: Any = None,
) -> dict[int, LatencySample]:
    """Time `calls` sequential gateway calls per replication and round, after `warmup` untimed ones.

    Each round runs every replication in turn, so a change in machine load
    between rounds affects all of them. Every timed call must return 200
    with one receipt per replica, so a failure does not pass as a fast call.
    """
    payload = {"text": "replicated call latency"} if payload is None else payload
    times: dict[int, list[float]] = {replication: [] for replication in replications}
    for _ in range(rounds):
        for replication in replications:
            stack.set_replication(replication)
            for _ in range(warmup):
                response = stack.call(function, payload)
                assert response.status_code == 200, response.text
            for _ in range(calls):
                started = time.perf_counter()
                response = stack.call(function, payload)
                times[replication].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
                assert len(response.json()["receipts"]) == replication
    return {replication: LatencySample(replication, tuple(values)) for replication, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Median latency of gateway calls at replication 1, 2 and 3.")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per replication and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over replications 1, 2 and 3")
    parser.add_argument("--in-process", action="store_true", help="run the nodes in this process, not one process each")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cloudless-replication-") as temporary:
        with replication_stack(Path(temporary), nodes_in_processes=not options.in_process) as stack:
            samples = measure_replication_latency(stack, calls=options.calls, rounds=options.rounds)
    base = samples[1].median_ms
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    nodes = "in the gateway process" if options.in_process else "one process each"
    print(f"nodes: {nodes}; cpus: {os.cpu_count()}; load average after the run: {load}")
    for replication, sample in samples.items():
        print(
            f"replication {replication}: median {sample.median_ms:.1f} ms, p90 {sample.p90_ms:.1f} ms, "
            f"extra over replication 1: {sample.median_ms - base:+.1f} ms ({len(sample.times_ms)} calls)"
        )


if __name__ == "__main__":
    main()
