"""The verifier's state file, its receipt index across restarts, its settings and its command line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cloudless.cli import cli
from cloudless.exceptions import ConfigError
from cloudless.verifier import VerifierConfig
from cloudless.verifier.index import ReceiptIndex
from cloudless.verifier.state import HeldFraud, PendingChallenge, ProofRecord, VerifierState, lock_state_dir, worker_epoch_key
from verifier_support import APP_CID, DOMAIN, EPOCH, PEER, WORKER_ID, build_epoch, honest_calls, resign_receipt, sign_call

DEAL_MANAGER = "0x" + "ab" * 20


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = VerifierState.load(path, chain_id=31337, deal_manager=DEAL_MANAGER)
    entry, _ = build_epoch(honest_calls(2))
    state.add_batch("0x" + "01" * 32, 12, [entry])
    key = worker_epoch_key(WORKER_ID, EPOCH)
    state.data.proofs[key] = ProofRecord(
        worker_id=WORKER_ID,
        epoch=EPOCH,
        deal_id=2,
        batch_hash="0x" + "01" * 32,
        entry_index=0,
        status="checked",
        pending=PendingChallenge(remedy="challenge_sample", finding="not_served", message="down"),
    )
    state.data.evidence_cursors["http://127.0.0.1:8080"] = 5
    first, second = honest_calls(2)
    state.data.held_frauds["0x" + "02" * 32] = HeldFraud(
        remedy="prove_equivocation",
        worker_id=WORKER_ID,
        epoch=EPOCH,
        forfeits=[EPOCH],
        send_from_epoch=EPOCH + 2,
        detail="two receipts",
        receipts=[first.receipt.to_json(), second.receipt.to_json()],
    )
    state.save()

    loaded = VerifierState.load(path, chain_id=31337, deal_manager=DEAL_MANAGER.upper().replace("0X", "0x"))

    assert loaded.data == state.data
    assert loaded.entry(loaded.data.proofs[key]) == entry
    assert loaded.proof_batch(loaded.data.proofs[key]).entries == (entry,)
    assert sorted(child.name for child in tmp_path.iterdir()) == ["state.json"]


def test_state_of_other_deployment_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    VerifierState.load(path, chain_id=31337, deal_manager=DEAL_MANAGER).save()

    with pytest.raises(ConfigError, match="--state-dir"):
        VerifierState.load(path, chain_id=1, deal_manager=DEAL_MANAGER)


def test_invalid_state_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"chain_id": "x"}')

    with pytest.raises(ConfigError, match="move it away"):
        VerifierState.load(path, chain_id=31337, deal_manager=DEAL_MANAGER)


def test_prune_keeps_batches_of_open_proofs(tmp_path: Path) -> None:
    state = VerifierState.load(tmp_path / "state.json", chain_id=31337, deal_manager=DEAL_MANAGER)
    entry, _ = build_epoch(honest_calls(1))
    for number, status in ((1, "closed"), (2, "checked")):
        batch_hash = f"0x{number:064x}"
        state.add_batch(batch_hash, number, [entry])
        state.data.proofs[f"{number}:0"] = ProofRecord(
            worker_id=number, epoch=0, deal_id=1, batch_hash=batch_hash, entry_index=0, status=status
        )

    state.prune()

    assert list(state.data.proofs) == ["2:0"]
    assert list(state.data.batches) == [f"0x{2:064x}"]


# ------------------------------------------------------------------- index


def test_index_finds_equivocation_after_reopen(tmp_path: Path) -> None:
    first = sign_call(nonce=1, sequence=0)
    replay = resign_receipt(first, sequence=1, epoch=EPOCH + 1)
    index = ReceiptIndex(tmp_path / "index.sqlite3")
    assert index.add(first.receipt, first.receipt.digest(DOMAIN), PEER) == []
    index.close()

    reopened = ReceiptIndex(tmp_path / "index.sqlite3")
    conflicts = reopened.add(replay.receipt, replay.receipt.digest(DOMAIN), PEER)
    again = reopened.add(first.receipt, first.receipt.digest(DOMAIN), PEER)
    reopened.close()

    assert conflicts == [first.receipt]
    assert again == [replay.receipt]


def test_index_yields_receipts_that_differ_from_outcome(tmp_path: Path) -> None:
    index = ReceiptIndex(tmp_path / "index.sqlite3")
    agreeing = sign_call(nonce=1, sequence=0, output=b"right", fuel=2**64 - 1)
    request_hash = agreeing.receipt.request_hash
    differing = resign_receipt(agreeing, worker_id=WORKER_ID + 1, output_hash=b"\x09" * 32)
    other_package = resign_receipt(agreeing, worker_id=WORKER_ID + 2, output_hash=b"\x09" * 32, app_cid=APP_CID[:-1] + b"\xff")
    for call in (agreeing, differing, other_package):
        index.add(call.receipt, call.receipt.digest(DOMAIN), PEER)

    index.record_outcome(agreeing.request, request_hash, APP_CID, agreeing.receipt.output_hash, 2**64 - 1)
    found = list(index.disagreements())
    stored = index.outcome(request_hash)
    index.close()

    assert [item.receipt for item in found] == [differing.receipt]
    assert stored is not None
    assert stored.fuel_used == 2**64 - 1
    assert stored.request == agreeing.request


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 1.5}, "sample rate"),
        ({"fetch_attempts": 0}, "fetch attempts"),
        ({"gateways": ("127.0.0.1:8080",)}, "invalid URL"),
        ({"deal_ids": frozenset({0})}, "deal ids start at 1"),
    ],
    ids=["rate", "attempts", "url", "deal"],
)
def test_config_rejects_bad_values(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VerifierConfig(state_dir=tmp_path, **options)  # type: ignore[arg-type]


def test_package_sources_default_to_gateways(tmp_path: Path) -> None:
    config = VerifierConfig(state_dir=tmp_path, gateways=("http://127.0.0.1:8080/",))

    assert config.sources == ["http://127.0.0.1:8080"]


# --------------------------------------------------------------------- CLI


def run_cli(*arguments: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    environment: dict[str, str | None] = {"CLOUDLESS_PRIVATE_KEY": None}
    environment.update(env or {})
    result = CliRunner().invoke(cli, ["verifier", "run", *arguments], env=environment)
    return result.exit_code, result.output


def test_cli_without_key_fails(tmp_path: Path) -> None:
    code, output = run_cli("--state-dir", str(tmp_path), "--once")

    assert code == 1
    assert "no signing key" in output
    assert "--account-index" in output


def test_cli_unset_key_env_fails(tmp_path: Path) -> None:
    code, output = run_cli("--state-dir", str(tmp_path), "--key-env", "VERIFIER_TEST_KEY", env={"VERIFIER_TEST_KEY": None})

    assert code == 1
    assert "$VERIFIER_TEST_KEY" in output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--gateway", "localhost:8080"), "invalid URL"),
        (("--sample-rate", "2"), "--sample-rate"),
        (("--deal", "0"), "--deal"),
    ],
    ids=["gateway", "sample-rate", "deal"],
)
def test_cli_rejects_bad_options(arguments: tuple[str, ...], message: str) -> None:
    code, output = run_cli(*arguments)

    assert code == 2
    assert message in output


def test_cli_rejects_state_file_as_dir(tmp_path: Path) -> None:
    state_file = tmp_path / "state"
    state_file.write_text("")

    code, output = run_cli("--state-dir", str(state_file), "--account-index", "15")

    assert code == 2
    assert "is a file" in output


def test_state_dir_takes_one_verifier(tmp_path: Path) -> None:
    lock = lock_state_dir(tmp_path)

    with pytest.raises(ConfigError, match="another verifier"):
        lock_state_dir(tmp_path)
    lock.close()
    lock_state_dir(tmp_path).close()
