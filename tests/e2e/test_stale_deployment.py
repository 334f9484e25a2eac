"""A deployment record whose contracts are not on the connected chain is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_chain import local_chain, running_anvil

from cloudless.chain.deployment import deployment_path
from cloudless.chain.session import connect
from cloudless.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_connect_rejects_reset_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".build").symlink_to(ROOT / ".build")
    monkeypatch.setenv("CLOUDLESS_ROOT", str(tmp_path))
    with local_chain() as old_chain:
        old_chain.deployment.save(deployment_path(old_chain.deployment.chain_id))

    # A new anvil with the same chain id: the record points at addresses with no code.
    with running_anvil() as rpc_url:
        with pytest.raises(ConfigError) as raised:
            connect(rpc_url)

    message = str(raised.value)
    assert old_chain.deployment.address("DealManager") in message
    assert "ape run deploy" in message
