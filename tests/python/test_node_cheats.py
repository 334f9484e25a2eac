"""Cheat modes: what a cheating node stores and proves.

Each test runs real calls through the node's call path (`node_rig` from
test_node_records.py) with one cheat on, and checks the receipts, requests
and proof totals on disk. The on-chain side of `skip_proofs` and
`ignore_challenges` is in test_node_answers.py; the slashing itself is tested
end to end elsewhere.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from eth_account import Account
from test_node_records import DOMAIN, SIGNER_KEYS, START_EPOCH, node_rig

from cloudless.exceptions import InvalidSignatureError
from cloudless.node.cheats import CHEAT_NAMES, NO_SIGNATURE, WRONG_OUTPUT, Cheats, check_cheat_names
from cloudless.receipts.eip712 import hash_output


def test_check_cheat_names_rejects_unknown() -> None:
    assert check_cheat_names(["skip_proofs", "equivocate", "skip_proofs"]) == ["skip_proofs", "equivocate"]
    with pytest.raises(ValueError, match="unknown cheat 'lie'; allowed values: fabricate_call, inflate_usage"):
        check_cheat_names(["lie"])


def test_active_cheats_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cloudless.node"):
        Cheats(["skip_proofs", "wrong_output"]).log_active()
        Cheats().log_active()

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "cheat 'skip_proofs' is active" in warnings[0]
    assert "cheat 'wrong_output' is active" in warnings[1]


def test_no_cheat_changes_nothing(tmp_path: Path) -> None:
    with node_rig(tmp_path) as rig:
        reply = rig.call(1, b'{"ok":{"n":1}}').reply

        assert rig.store.summary(1, START_EPOCH) == rig.records.summary(1, START_EPOCH)
        assert len(rig.store.receipts(1, START_EPOCH)) == 1
        assert rig.store.receipts(2, START_EPOCH) == []
    assert reply.ok
    assert reply.receipt.output_hash == hash_output(b'{"n":1}')


def test_fabricate_call_adds_unsigned_request_once_per_epoch(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("fabricate_call",)) as rig:
        rig.call(1, b'{"ok":{"n":1}}')
        rig.call(1, b'{"ok":{"n":2}}')
        first_epoch = rig.store.receipts(1, START_EPOCH)
        calls = rig.evidence.calls(1, START_EPOCH)
        summary = rig.records.summary(1, START_EPOCH)
        rig.clock.epoch += 1
        rig.call(1, b'{"ok":{"n":3}}')
        second_epoch = rig.store.receipts(1, START_EPOCH + 1)

    assert len(first_epoch) == 3, "two real receipts and one fabricated"
    assert summary.calls == 3, "the fabricated receipt is counted in the proof"
    fabricated = [receipt for receipt in first_epoch if calls[receipt.request_hash].request.signature == NO_SIGNATURE]
    assert len(fabricated) == 1
    request = calls[fabricated[0].request_hash].request
    assert request.deal_id == 1
    assert request.digest(DOMAIN) == fabricated[0].request_hash
    with pytest.raises(InvalidSignatureError):
        request.verify(DOMAIN, now=0)
    fabricated[0].verify(DOMAIN)  # the peer signed it like a real receipt
    assert len(second_epoch) == 2, "one more fabricated receipt in the next epoch"


def test_inflate_usage_changes_only_the_reported_usage(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("inflate_usage",)) as rig:
        rig.call(1, b'{"ok":{"n":1}}')
        rig.call(1, b'{"ok":{"n":2}}')
        real = rig.store.summary(1, START_EPOCH)
        proven = rig.records.summary(1, START_EPOCH)
        record = rig.records.record(1, START_EPOCH)

    assert proven.fuel_total == real.fuel_total * 2 + 1000
    assert (proven.root, proven.calls) == (real.root, real.calls)
    assert record.tree.total_fuel == real.fuel_total, "the leaves still carry the real fuel"
    assert record.summary == proven


def test_wrong_output_signs_the_wrong_output(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("wrong_output",)) as rig:
        reply = rig.call(1, b'{"ok":{"n":1}}').reply
        (stored,) = rig.store.receipts(1, START_EPOCH)

    assert reply.ok
    assert base64.b64decode(reply.output_b64) == WRONG_OUTPUT != b'{"n":1}'
    assert stored == reply.receipt
    assert stored.output_hash == hash_output(WRONG_OUTPUT)
    stored.verify(DOMAIN)


def test_equivocate_stores_second_receipt_per_call(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("equivocate",)) as rig:
        rig.call(1, b'{"ok":{"n":1}}')
        rig.call(1, b'{"ok":{"n":2}}')
        receipts = rig.store.receipts(1, START_EPOCH)
        calls = rig.evidence.calls(1, START_EPOCH)
        summary = rig.records.summary(1, START_EPOCH)

    assert len(receipts) == 4
    assert summary.calls == 4, "both receipts of each request are counted"
    for real, second in (receipts[0:2], receipts[2:4]):
        assert real.request_hash == second.request_hash
        assert real.output_hash != second.output_hash
        assert second.sequence == real.sequence + 1
        second.verify(DOMAIN)
        assert real.request_hash in calls


def test_replay_epoch_copies_previous_epoch(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("replay_epoch",)) as rig:
        rig.call(1, b'{"ok":{"n":1}}')
        rig.call(1, b'{"ok":{"n":2}}')
        previous = rig.store.receipts(1, START_EPOCH)
        rig.clock.epoch += 1
        tracked = rig.tracker.get(1)
        assert tracked is not None

        copied = rig.cheats.before_proofs(tracked)
        again = rig.cheats.before_proofs(tracked)
        # A restarted node finds its copies on disk and does not copy twice.
        after_restart = Cheats(["replay_epoch"], store=rig.store, evidence=rig.evidence, domain=DOMAIN,
                               signer_keys={Account.from_key(SIGNER_KEYS[1]).address: SIGNER_KEYS[1]},
                               tracker=rig.tracker, clock=rig.clock).before_proofs(tracked)  # type: ignore[arg-type]
        replayed = rig.store.receipts(1, START_EPOCH + 1)
        calls = rig.evidence.calls(1, START_EPOCH + 1)
        summary = rig.records.summary(1, START_EPOCH + 1)

    assert (copied, again, after_restart) == (2, 0, 0)
    assert [receipt.request_hash for receipt in replayed] == [receipt.request_hash for receipt in previous]
    assert [receipt.epoch for receipt in replayed] == [START_EPOCH + 1] * 2
    assert [receipt.sequence for receipt in replayed] == [2, 3]
    assert summary.calls == 2
    for receipt in replayed:
        receipt.verify(DOMAIN)
        assert receipt.request_hash in calls, "the copied receipt's request is stored with it"


def test_replay_deal_copies_receipt_into_other_deal(tmp_path: Path) -> None:
    with node_rig(tmp_path, cheats=("replay_deal",)) as rig:
        reply = rig.call(1, b'{"ok":{"n":1}}').reply
        rig.call(1, b'{"ok":{"n":2}}')
        (copy,) = rig.store.receipts(2, START_EPOCH)
        calls = rig.evidence.calls(2, START_EPOCH)

    assert copy.worker_id == 2
    assert copy.request_hash == reply.receipt.request_hash
    assert copy.signer == Account.from_key(SIGNER_KEYS[2]).address, "re-signed by the other worker's peer"
    copy.verify(DOMAIN)
    assert calls[copy.request_hash].request.deal_id == 1, "the request names the first deal"


def test_every_cheat_has_a_test() -> None:
    tested = {
        "fabricate_call",
        "inflate_usage",
        "wrong_output",
        "equivocate",
        "replay_epoch",
        "replay_deal",
        "skip_proofs",  # test_node_answers.py
        "ignore_challenges",  # test_node_answers.py
    }
    assert tested == set(CHEAT_NAMES)
