"""A real anvil on a free loopback port with the contracts deployed, for end-to-end tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from cloudless.chain import ChainClient, DeploySettings, Deployment, deploy_all
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.session import Session, connect

__all__ = ["LocalChain", "free_port", "local_chain", "running_anvil"]


@dataclass(frozen=True)
class LocalChain:
    rpc_url: str
    deployment: Deployment

    def session(self, account_index: int) -> Session:
        return connect(self.rpc_url, anvil_account_key(account_index), deployment=self.deployment)

    def rpc(self, method: str, *params: object) -> object:
        response = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        return response.json().get("result")

    def advance_epochs(self, epochs: int) -> None:
        """Move chain time forward by whole epochs and mine a block."""
        self.rpc("evm_increaseTime", epochs * self.deployment.epoch.duration)
        self.rpc("evm_mine")


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


@contextmanager
def running_anvil(*, block_time: int | None = None) -> Iterator[str]:
    """Start anvil on a free loopback port (instant mining unless `block_time`), yield its URL, stop it on exit."""
    anvil = shutil.which("anvil")
    assert anvil, "anvil not on PATH: run `make setup` and add node_modules/.bin to PATH"
    port = free_port()
    argv = [anvil, "--host", "127.0.0.1", "--port", str(port), "--accounts", "20", "--silent"]
    if block_time:
        argv += ["--block-time", str(block_time)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rpc_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"anvil did not start on port {port}")
                time.sleep(0.1)
        yield rpc_url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def local_chain(settings: DeploySettings | None = None, *, block_time: int | None = None) -> Iterator[LocalChain]:
    """Start anvil, deploy, and stop anvil on exit."""
    with running_anvil(block_time=block_time) as rpc_url:
        client = ChainClient.connect(rpc_url, private_key=anvil_account_key(0))
        deployment = deploy_all(client, settings or DeploySettings(epoch_duration=60), rpc_url=rpc_url)
        yield LocalChain(rpc_url=rpc_url, deployment=deployment)
