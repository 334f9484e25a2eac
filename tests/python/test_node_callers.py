"""Allowed callers of a deal: the node's cached lookup and the 403 for other callers, on a real anvil deployment."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from web3 import Web3
from test_node_admission import spin_package

from cloudless.chain import DeploySettings
from cloudless.chain.challenges import ChallengeClient
from cloudless.chain.client import ChainClient
from cloudless.chain.deployment import Deployment
from cloudless.chain.keys import anvil_account_key
from cloudless.chain.local_anvil import LocalChain, free_port, local_chain
from cloudless.chain.session import Session
from cloudless.chain.types import DealParams
from cloudless.exceptions import ChainError
from cloudless.node.callers import CallerPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from node_harness import CALLER_KEY, local_node  # noqa: E402

DEVELOPER = 5
OTHER_CALLER = Account.from_key(anvil_account_key(13)).address
HARNESS_CALLER = Account.from_key(CALLER_KEY).address
APP_CID = b"\x01\x55\x12\x20" + keccak(b"callers app")
# ChallengeManager.CALLER_CHANGE_DELAY_EPOCHS: the first allowed caller restricts a deal this many epochs later.
CALLER_CHANGE_DELAY_EPOCHS = 2


@dataclass
class World:
    chain: LocalChain
    developer: Session
    deployment: Deployment
    deal_ids: list[int]

    def epoch(self) -> int:
        return self.developer.deals.current_epoch()

    def new_deal(self) -> int:
        """Create a deal without workers: allowed callers need only the deal and its owner."""
        usdc = self.developer.usdc
        deal_id = self.developer.create_deal(
            DealParams(
                app_cid=APP_CID,
                payment_token=usdc.address,
                max_price_per_cu_per_epoch=usdc.parse("1"),
                deposit=usdc.parse("10"),
            )
        )
        self.deal_ids.append(deal_id)
        return deal_id


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with local_chain(DeploySettings(epoch_duration=60)) as chain:
        admin, developer = chain.session(0), chain.session(DEVELOPER)
        admin.fund(developer.address, usdc=admin.usdc.parse("1000"))
        yield World(chain, developer, chain.deployment, [])


def test_every_caller_allowed_without_list(world: World) -> None:
    deal_id = world.new_deal()
    policy = CallerPolicy(world.developer.challenges)
    epoch = world.epoch()

    assert world.developer.challenges.allowed_caller_count(deal_id) == 0
    assert policy.allows(deal_id, OTHER_CALLER, epoch)
    assert policy.allows(deal_id, HARNESS_CALLER, epoch)


def test_only_listed_callers_allowed(world: World) -> None:
    deal_id = world.new_deal()
    world.developer.challenges.set_caller_allowed(deal_id, HARNESS_CALLER, True)
    restricted_from = world.epoch() + CALLER_CHANGE_DELAY_EPOCHS
    policy = CallerPolicy(world.developer.challenges)

    assert policy.allows(deal_id, OTHER_CALLER, restricted_from - 1), "a restriction applies only two epochs later"
    assert world.developer.challenges.allowed_caller_count(deal_id) == 1
    assert policy.allows(deal_id, HARNESS_CALLER, restricted_from)
    assert policy.allows(deal_id, HARNESS_CALLER.lower(), restricted_from)
    assert not policy.allows(deal_id, OTHER_CALLER, restricted_from)


def test_policy_caches_until_ttl(world: World) -> None:
    deal_id = world.new_deal()
    world.developer.challenges.set_caller_allowed(deal_id, HARNESS_CALLER, True)
    restricted_from = world.epoch() + CALLER_CHANGE_DELAY_EPOCHS
    now = [100.0]
    policy = CallerPolicy(world.developer.challenges, ttl_seconds=10.0, clock=lambda: now[0])
    assert not policy.allows(deal_id, OTHER_CALLER, restricted_from)

    # A further caller counts at once on chain; the policy sees it once its lookup expires.
    world.developer.challenges.set_caller_allowed(deal_id, OTHER_CALLER, True)
    now[0] += 9.0
    cached = policy.allows(deal_id, OTHER_CALLER, restricted_from)
    now[0] += 2.0
    refreshed = policy.allows(deal_id, OTHER_CALLER, restricted_from)

    assert not cached
    assert refreshed


def test_unreachable_chain_raises_chain_error(world: World) -> None:
    # No node listens on this port, so every call fails to connect.
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", request_kwargs={"timeout": 5}))
    client = ChainClient(w3, world.deployment)
    policy = CallerPolicy(ChallengeClient(client))

    with pytest.raises(ChainError, match="allowed callers of deal 1"):
        policy.allows(1, OTHER_CALLER, 0)


def test_node_rejects_caller_outside_list(world: World, tmp_path: Path) -> None:
    # The harness's worker N serves deal N, so deal 1 is the first deal of this module.
    first_deal = world.deal_ids[0] if world.deal_ids else world.new_deal()
    assert first_deal == 1
    policy = CallerPolicy(world.developer.challenges, ttl_seconds=0.0)
    # The node's clock stays in an epoch past any restriction this test sets.
    node_epoch = world.epoch() + 100

    with local_node(tmp_path, [spin_package()], max_concurrent_calls=2, callers=policy, epoch=node_epoch) as node:
        with httpx.Client(timeout=30) as http:
            served = node.post(http, 1, node.call_body(1, "one", b"{}"))
            world.developer.challenges.set_caller_allowed(1, OTHER_CALLER, True)
            rejected = node.post(http, 1, node.call_body(1, "one", b"{}"))
            world.developer.challenges.set_caller_allowed(1, HARNESS_CALLER, True)
            allowed_again = node.post(http, 1, node.call_body(1, "one", b"{}"))

    assert served.status_code == 200, served.text
    assert rejected.status_code == 403
    assert rejected.json()["error"]["kind"] == "caller_not_allowed"
    assert HARNESS_CALLER in rejected.json()["error"]["message"]
    assert allowed_again.status_code == 200, allowed_again.text
