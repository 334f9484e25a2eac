"""Replicated calls against a real anvil, three providers each running a real node, and the real gateway.

One module stack places one worker of the `text` example on each provider.
The tests set the deal's replication, call through the gateway, and check
that the receipts are verified, agree and come from distinct providers. They
also run `cloudless deal replication` and `deal create --replication` as
processes, and stop one node to see the gateway replace its worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import CliResult, private_root, run_cli
from eth_utils import keccak
from replication_stack import DEVELOPER_INDEX, ReplicationStack, measure_replication_latency, replication_stack

from cloudless.chain.deployment import deployment_path
from cloudless.cli.deal import MAX_REPLICATION
from cloudless.receipts.eip712 import Domain
from cloudless.receipts.models import SignedReceipt


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicationStack]:
    with replication_stack(tmp_path_factory.mktemp("replication")) as started:
        yield started


@pytest.fixture(scope="module")
def root(stack: ReplicationStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = private_root(tmp_path_factory.mktemp("root"))
    deployment = stack.chain.deployment
    deployment.save(deployment_path(deployment.chain_id, directory=directory / "deployments"))
    return directory


def cli(stack: ReplicationStack, root: Path, *args: str) -> CliResult:
    return run_cli(root, stack.chain.rpc_url, *args)


def check_receipts(stack: ReplicationStack, body: dict, replication: int) -> list[SignedReceipt]:
    """Check that the reply lists `replication` verified, agreeing receipts of distinct providers."""
    receipts = [SignedReceipt.from_dict(receipt) for receipt in body["receipts"]]
    deployment = stack.chain.deployment
    domain = Domain(chain_id=deployment.chain_id, verifying_contract=deployment.address("ExecutionReceipts"))
    market = stack.chain.session(0).market
    deals = stack.chain.session(0).deals

    assert body["replication"] == replication
    assert len(receipts) == replication
    assert SignedReceipt.from_dict(body["receipt"]) == receipts[0]
    assert body["worker_id"] == receipts[0].worker_id
    assert body["outvoted_receipts"] == []
    assert len({receipt.worker_id for receipt in receipts}) == replication
    assert len({stack.provider_of(receipt.worker_id) for receipt in receipts}) == replication
    assert len({(receipt.output_hash, receipt.fuel_used, receipt.request_hash) for receipt in receipts}) == 1
    for receipt in receipts:
        receipt.verify(domain)
        assert receipt.signer == market.get_peer(deals.get_worker(receipt.worker_id).peer_id).signer
    return receipts


def test_replication_two_agrees(stack: ReplicationStack) -> None:
    stack.set_replication(2)

    response = stack.call("reverse", {"text": "two replicas"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == {"text": "sacilper owt"}
    receipts = check_receipts(stack, body, 2)
    assert receipts[0].output_hash == keccak(b'{"text":"sacilper owt"}')
    assert body["evidence_id"] is None


def test_replication_three_agrees(stack: ReplicationStack) -> None:
    stack.set_replication(3)

    response = stack.call("word_count", {"text": "one two three"})

    assert response.status_code == 200, response.text
    receipts = check_receipts(stack, response.json(), 3)
    assert {receipt.worker_id for receipt in receipts} == set(stack.worker_ids)


def test_replication_agrees_on_guest_error(stack: ReplicationStack) -> None:
    stack.set_replication(2)

    response = stack.call("fail", {})

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["kind"] == "guest_error"
    check_receipts(stack, body, 2)


def test_replication_above_providers_is_503(stack: ReplicationStack) -> None:
    stack.set_replication(4)
    try:
        response = stack.call("reverse", {"text": "four"})
    finally:
        stack.set_replication(1)

    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["kind"] == "replication_unavailable"
    assert f"deal {stack.deal_id} has replication 4" in error["message"]
    assert "on 3 providers" in error["message"]


def test_replication_one_keeps_single_receipt(stack: ReplicationStack) -> None:
    stack.set_replication(1)

    response = stack.call("reverse", {"text": "one"})

    assert response.status_code == 200, response.text
    check_receipts(stack, response.json(), 1)


def test_evidence_feed_starts_empty(stack: ReplicationStack) -> None:
    assert stack.evidence(0) == {"next": 0, "items": []}

    for since in ("-1", "abc", "1.5"):
        response = stack.http.get(f"{stack.gateway_url}/evidence", params={"since": since})
        assert response.status_code == 400, since
        assert response.json()["error"]["kind"] == "invalid_since"


def test_deal_replication_cli_round_trip(stack: ReplicationStack, root: Path) -> None:
    deal_id = str(stack.deal_id)

    set_result = cli(stack, root, "deal", "replication", deal_id, "3")
    show_result = cli(stack, root, "deal", "replication", deal_id)
    status_result = cli(stack, root, "deal", "status", deal_id)

    assert set_result.exit_code == 0, set_result.output
    assert f"deal {deal_id}: replication 3: each call runs on 3 workers of different providers" in set_result.output
    assert show_result.exit_code == 0, show_result.output
    assert f"deal {deal_id}: replication 3" in show_result.output
    assert status_result.exit_code == 0, status_result.output
    assert "  replication 3\n" in status_result.output
    assert stack.chain.session(0).challenges.replication_of(stack.deal_id) == 3
    stack.wait_for_replication(3)
    response = stack.call("reverse", {"text": "set by the CLI"})
    assert response.status_code == 200, response.text
    check_receipts(stack, response.json(), 3)


def test_deal_replication_cli_rejects_bad_k(stack: ReplicationStack, root: Path) -> None:
    before = stack.chain.session(0).challenges.replication_of(stack.deal_id)

    for value in ("0", str(MAX_REPLICATION + 1)):
        result = cli(stack, root, "deal", "replication", str(stack.deal_id), value)
        assert result.exit_code == 2, result.output
        assert f"invalid replication {value}" in result.output
        assert f"pass a number from 1 to {MAX_REPLICATION}" in result.output
    above_target = cli(stack, root, "deal", "replication", str(stack.deal_id), "4")
    assert above_target.exit_code == 1, above_target.output
    assert "has 3 target workers, but replication 4 needs 4 workers on different providers" in above_target.output
    stranger = cli(stack, root, "deal", "replication", str(stack.deal_id), "2", "--account-index", "6")

    assert stranger.exit_code == 1, stranger.output
    assert f"only the owner {stack.chain.session(DEVELOPER_INDEX).address} of deal {stack.deal_id}" in stranger.output
    assert stack.chain.session(0).challenges.replication_of(stack.deal_id) == before


def test_deal_create_sets_replication(stack: ReplicationStack, root: Path) -> None:
    result = cli(
        stack, root, "deal", "create", "--account-index", str(DEVELOPER_INDEX), "--app-cid", stack.package_cid,
        "--max-price", "1", "--deposit", "10", "--workers", "3", "--replication", "3",
    )

    assert result.exit_code == 0, result.output
    match = re.search(r"deal (\d+) created by .*replication 3", result.output)
    assert match, result.output
    assert stack.chain.session(0).challenges.replication_of(int(match.group(1))) == 3


def test_deal_create_rejects_bad_replication(stack: ReplicationStack, root: Path) -> None:
    count = stack.chain.session(0).deals.deal_count()
    base = ("deal", "create", "--account-index", str(DEVELOPER_INDEX), "--app-cid", stack.package_cid, "--max-price", "1", "--deposit", "10")

    too_high = cli(stack, root, *base, "--workers", "6", "--replication", str(MAX_REPLICATION + 1))
    too_few_workers = cli(stack, root, *base, "--workers", "2", "--replication", "3")

    assert too_high.exit_code == 2, too_high.output
    assert f"invalid replication {MAX_REPLICATION + 1}" in too_high.output
    assert too_few_workers.exit_code == 2, too_few_workers.output
    assert "--replication 3 needs 3 workers on different providers, but --workers is 2" in too_few_workers.output
    assert stack.chain.session(0).deals.deal_count() == count


def test_max_replication_matches_contract(stack: ReplicationStack) -> None:
    challenges = stack.chain.session(0).challenges

    assert challenges.client.call(challenges.contract.functions.MAX_REPLICATION()) == MAX_REPLICATION


def test_latency_helper_times_each_replication(stack: ReplicationStack) -> None:
    samples = measure_replication_latency(stack, (1, 2), calls=2, warmup=1)

    assert sorted(samples) == [1, 2]
    assert all(len(sample.times_ms) == 2 for sample in samples.values())
    assert all(sample.median_ms > 0 for sample in samples.values())


def test_replication_replaces_stopped_node(stack: ReplicationStack) -> None:
    stack.set_replication(2)
    stopped_provider = next(iter(stack.nodes))
    stopped_address = stack.chain.session(stopped_provider).address
    stack.stop_node(stopped_provider)
    try:
        bodies = [stack.call("reverse", {"text": f"failover {index}"}) for index in range(3)]
    finally:
        stack.start_node(stopped_provider)

    for response in bodies:
        assert response.status_code == 200, response.text
        receipts = check_receipts(stack, response.json(), 2)
        assert stopped_address not in {stack.provider_of(receipt.worker_id) for receipt in receipts}
