"""A node data directory stays bound to the chain instance it was created for."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from local_chain import local_chain

from cloudless.exceptions import ConfigError
from cloudless.node.chain_identity import check_chain_identity


def test_chain_identity_rejects_reset_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "node-data"

    with local_chain() as first:
        check_chain_identity(data_dir, first.session(1))
        check_chain_identity(data_dir, first.session(1))  # same chain: accepted again
        stored = json.loads((data_dir / "chain.json").read_text())
        assert stored["chain_id"] == first.deployment.chain_id
        assert stored["deal_manager"] == first.deployment.address("DealManager")

    # A restarted anvil with the same deployment: same chain id and addresses, new blocks.
    # Block hashes cover the block timestamp in whole seconds, so two chains
    # deployed within the same second would get equal hashes: wait that out.
    time.sleep(1.1)
    with local_chain() as second:
        assert second.deployment.address("DealManager") == stored["deal_manager"]
        with pytest.raises(ConfigError) as raised:
            check_chain_identity(data_dir, second.session(1))
    assert "another chain instance" in str(raised.value)
    assert str(data_dir) in str(raised.value)
