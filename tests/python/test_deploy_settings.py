"""Deployment settings are checked against the contracts' integer types before any transaction."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudless.chain.deploy import DeploySettings, challenge_parameters, check_settings
from cloudless.exceptions import ConfigError

UINT64_MAX = 2**64 - 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epoch_duration": 0}, "invalid epoch duration 0"),
        ({"epoch_duration": 10**20}, "invalid epoch duration"),
        ({"proof_window_epochs": 10**20}, "invalid proof window"),
        ({"challenge_window_epochs": -1}, "invalid challenge window -1"),
        ({"challenge_window_epochs": 10**20}, "invalid challenge window"),
        ({"unbonding_period": 2**64}, "invalid unbonding period"),
        ({"collateral_per_cu": 2**256}, "invalid collateral per CU"),
        ({"challenge_bond": 0}, "invalid challenge bond 0"),
        ({"slash_amount": 2**128}, "invalid slash amount"),
        ({"proof_window_epochs": UINT64_MAX - 1, "challenge_window_epochs": 1}, "plus challenge window"),
    ],
)
def test_out_of_range_setting_rejected(changes: dict[str, int], message: str) -> None:
    settings = dataclasses.replace(DeploySettings(), **changes)

    with pytest.raises(ConfigError, match=message):
        check_settings(settings)


def test_challenge_window_of_one_second_rejected() -> None:
    settings = DeploySettings(epoch_duration=1, challenge_window_epochs=1)

    with pytest.raises(ConfigError, match="leaves no time to answer"):
        challenge_parameters(settings)


@given(
    epoch_duration=st.integers(min_value=2, max_value=10**6),
    challenge_window=st.integers(min_value=1, max_value=100),
)
def test_default_answer_period_fits_window(epoch_duration: int, challenge_window: int) -> None:
    settings = DeploySettings(epoch_duration=epoch_duration, challenge_window_epochs=challenge_window)

    check_settings(settings)
    bond, slash, missed, answer_period = challenge_parameters(settings)

    assert 1 <= answer_period < challenge_window * epoch_duration
    assert (bond, slash, missed) == (settings.challenge_bond, settings.slash_amount, settings.missed_proof_slash_amount)


def test_no_challenge_window_takes_any_epoch() -> None:
    settings = DeploySettings(epoch_duration=1, challenge_window_epochs=0)

    check_settings(settings)

    assert challenge_parameters(settings)[3] == 1
