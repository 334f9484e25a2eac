"""A verifier's state directory belongs to one chain instance, even when a restarted chain reuses its id and addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudless.chain import DeploySettings
from cloudless.chain.local_anvil import local_chain
from cloudless.exceptions import ConfigError
from cloudless.verifier import Verifier, VerifierConfig

VERIFIER = 15


def test_state_dir_of_redeployed_chain_rejected(tmp_path: Path) -> None:
    config = VerifierConfig(state_dir=tmp_path / "verifier", sample_rate=0)
    with local_chain(DeploySettings(epoch_duration=60)) as first:
        with Verifier(first.session(VERIFIER), config) as verifier:
            verifier.run_once()
        first_address = first.deployment.address("DealManager")

    with local_chain(DeploySettings(epoch_duration=60)) as second:
        # A fresh anvil with the same deployer gives the same chain id and addresses.
        assert second.deployment.address("DealManager") == first_address
        with pytest.raises(ConfigError, match="--state-dir .* contains verifier state of another chain instance"):
            Verifier(second.session(VERIFIER), config)
