"""The gateway's evidence log: numbering, pages, the JSONL file and recovery after a crash."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cloudless.chain.keys import anvil_account_key as account_key
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.exceptions import ConfigError
from cloudless.gateway.evidence import EvidenceLog
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
APP_CID = cid_to_bytes(compute_cid(b"package"))


def signed_request(nonce: int) -> SignedCallRequest:
    request = CallRequest.for_input(deal_id=3, function_name="reverse", input=b"{}", nonce=nonce, deadline=2_000_000_000)
    return SignedCallRequest.sign(request, account_key(8), DOMAIN)


def receipts_for(request: SignedCallRequest) -> list[SignedReceipt]:
    """Two receipts of different workers for `request` with different outputs."""
    return [
        SignedReceipt.sign(
            Receipt(
                worker_id=worker_id,
                request_hash=request.digest(DOMAIN),
                app_cid=APP_CID,
                output_hash=hash_output(output),
                fuel_used=100,
                epoch=4,
                sequence=0,
            ),
            account_key(9 + worker_id),
            DOMAIN,
        )
        for worker_id, output in ((1, b'{"a":1}'), (2, b'{"a":2}'))
    ]


def record(log: EvidenceLog, nonce: int) -> int:
    request = signed_request(nonce)
    return log.record_disagreement(
        deal_id=3, function="reverse", request=request, input_bytes=b"{}", receipts=receipts_for(request)
    )


def test_evidence_item_shape() -> None:
    log = EvidenceLog()
    request = signed_request(1)
    receipts = receipts_for(request)

    log.record_disagreement(deal_id=3, function="reverse", request=request, input_bytes=b'{"x":1}', receipts=receipts)
    page = log.page(0).model_dump(mode="json")

    assert set(page) == {"next", "items"}
    assert page["next"] == 1
    (item,) = page["items"]
    assert set(item) == {"id", "kind", "deal_id", "function", "request", "input", "receipts"}
    assert item["id"] == 0
    assert item["kind"] == "disagreement"
    assert item["deal_id"] == 3
    assert item["function"] == "reverse"
    assert item["request"] == request.to_dict()
    assert base64.b64decode(item["input"]) == b'{"x":1}'
    assert item["receipts"] == [receipt.to_dict() for receipt in receipts]


def test_evidence_ids_and_pages() -> None:
    log = EvidenceLog()
    ids = [record(log, nonce) for nonce in range(5)]

    assert ids == [0, 1, 2, 3, 4]
    assert [item.id for item in log.page(3).items] == [3, 4]
    assert log.page(3).next == 5
    assert [item.id for item in log.page(0, limit=2).items] == [0, 1]
    assert log.page(0, limit=2).next == 2
    assert log.page(5).items == []
    assert log.page(5).next == 5
    # A reader ahead of the log (the log was deleted) gets the current end.
    assert log.page(40).next == 5


def test_evidence_rejects_negative_since() -> None:
    with pytest.raises(ValueError, match="since must be 0 or more, got -1"):
        EvidenceLog().page(-1)


def test_evidence_file_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "gateway" / "evidence.jsonl"
    first = EvidenceLog(path)
    record(first, 1)
    record(first, 2)

    second = EvidenceLog(path)

    assert len(second) == 2
    assert second.page(0) == first.page(0)
    assert record(second, 3) == 2
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]


def test_evidence_partial_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    log = EvidenceLog(path)
    record(log, 1)
    with open(path, "ab") as handle:
        handle.write(b'{"id": 1, "kind": "disag')

    reopened = EvidenceLog(path)

    assert len(reopened) == 1
    assert record(reopened, 2) == 1
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [0, 1]


def test_evidence_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    log = EvidenceLog(path)
    record(log, 1)
    with open(path, "ab") as handle:
        handle.write(b"not json\n")

    with pytest.raises(ConfigError) as raised:
        EvidenceLog(path)

    assert f"evidence log {path} line 2 is not a valid evidence item" in str(raised.value)
    assert "move the file away" in str(raised.value)


def test_evidence_out_of_order_id_rejected(tmp_path: Path) -> None:
    source = EvidenceLog()
    record(source, 1)
    record(source, 2)
    path = tmp_path / "evidence.jsonl"
    path.write_text(source.page(1).items[0].model_dump_json() + "\n")

    with pytest.raises(ConfigError, match="line 1 has id 1, expected 0"):
        EvidenceLog(path)


def test_evidence_old_items_read_from_file(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path / "evidence.jsonl", memory_items=2)
    for nonce in range(5):
        record(log, nonce)

    page = log.page(0)

    assert [item.id for item in page.items] == [0, 1, 2, 3, 4]
    assert [item.request.nonce for item in page.items] == [0, 1, 2, 3, 4]


def test_evidence_without_file_keeps_latest(tmp_path: Path) -> None:
    log = EvidenceLog(memory_items=2)
    for nonce in range(5):
        record(log, nonce)

    page = log.page(0)

    assert [item.id for item in page.items] == [3, 4]
    assert page.next == 5
    assert [item.id for item in log.page(0, limit=1).items] == [3]
    assert log.page(0, limit=1).next == 4
