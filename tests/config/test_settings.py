"""MoA's settings: keywords or one mapping, each validated by the config, one source each."""

from __future__ import annotations

import pytest

from moa_local import MoA
from moa_local.backends.echo import EchoBackend
from moa_local.config import BUILTIN_DEFAULTS
from moa_local.errors import ConfigError


def test_settings_mapping_and_keywords_reach_the_plan() -> None:
    moa = MoA(
        proposers=["echo:a"],
        aggregator="echo:a",
        settings={"layers": 3, "router": "on", "temperature": 0.3},
        temperature=0.5,  # a keyword wins over the mapping
        backends={"echo": EchoBackend()},
    )
    plan = moa.prepare()
    assert (plan.layers, plan.router, plan.sampling.temperature) == (3, "on", 0.5)


def test_an_unknown_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'layres'"):
        MoA(proposers=["echo:a"], layres=2)


def test_a_bad_setting_names_the_keyword() -> None:
    with pytest.raises(ConfigError, match="router"):
        MoA(proposers=["echo:a"], settings={"router": "sometimes"})


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("aggregate", "select", "aggregate"),
        ("router", "on", "router"),
        ("layout", "references", "layout"),
        ("aggregate_window", 2, "aggregate_window"),
        ("verify_samples", 0, "verify_samples"),
    ],
)
def test_the_plan_takes_each_policy_from_the_config(
    key: str, value: object, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changing only the built-in default changes the plan: the plan has no
    # default of its own that could contradict it.
    monkeypatch.setitem(BUILTIN_DEFAULTS, key, value)
    plan = MoA(proposers=["echo:a"], backends={"echo": EchoBackend()}).prepare()
    assert getattr(plan, field) == value
