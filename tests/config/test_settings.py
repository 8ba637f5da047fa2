"""Every setting is declared once (a field of Config); the rest is derived from it.

These tests prove the derived parts follow the declaration: the built-in
defaults, one rule per setting whatever the source, MoA's keywords, the
defaults a test overrides without changing module state, and a plan that has
no defaults of its own.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytest

from moa_local import MoA
from moa_local.backends.echo import EchoBackend
from moa_local.config import SETTINGS, TABLES, Config, load_config, override_defaults
from moa_local.engine import Plan, Sampling
from moa_local.errors import ConfigError
from moa_local.planning import proposers_per_layer


def settings_of(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in SETTINGS}


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


def test_an_unknown_setting_is_a_config_error_that_names_it() -> None:
    with pytest.raises(
        ConfigError, match="unknown setting 'layres' \\(did you mean 'layers'\\?\\)"
    ):
        MoA(proposers=["echo:a"], layres=2)
    with pytest.raises(ConfigError, match="unknown setting 'labels'") as caught:
        MoA(proposers=["echo:a"], labels={"layers": "--layers"})  # the CLI's, no longer taken
    assert caught.value.setting == "labels"


def test_a_bad_setting_names_the_keyword() -> None:
    with pytest.raises(ConfigError, match="^router must be one of off, agree, on") as caught:
        MoA(proposers=["echo:a"], settings={"router": "sometimes"})
    assert (caught.value.setting, caught.value.where) == ("router", "router")


def test_n_is_num_proposers_of_at_least_one() -> None:
    with pytest.raises(ConfigError, match="^n must be >= 1, got 0") as caught:
        MoA(proposers=["echo:a"], n=0)
    assert (caught.value.setting, caught.value.where) == ("num_proposers", "n")
    assert MoA(proposers=["echo:a"], n=4).config.num_proposers == 4


def test_every_setting_is_a_keyword_of_moa_with_its_declared_type() -> None:
    parameters = inspect.signature(MoA).parameters
    for name, declared in SETTINGS.items():
        assert name in parameters, name
        if name not in ("proposers", "aggregator", "layers", "final_agent"):  # MoA's own
            assert parameters[name].annotation == declared.type | None
    # Each setting's declared default passes its own rule as a keyword.
    defaults = {name: declared.default for name, declared in SETTINGS.items()}
    assert settings_of(MoA(**defaults).config) == defaults


def test_verify_is_typed_as_what_it_holds() -> None:
    assert get_type_hints(Config)["verify"] == bool | Literal["auto"]
    assert SETTINGS["verify"].default == "auto"


@pytest.mark.shipped_defaults
def test_config_defaults_are_the_builtin_values_a_load_starts_from() -> None:
    assert settings_of(load_config()) == settings_of(Config())
    assert dict(TABLES["defaults"]) == {
        name: list(s.default) if isinstance(s.default, tuple) else s.default
        for name, s in SETTINGS.items()
        if s.table == "defaults"
    }


@pytest.mark.parametrize(
    ("key", "file_value", "env_value", "keyword_value", "reason"),
    [
        ("layers", "0", "0", 0, "must be >= 1, got 0"),
        ("top_p", "1.5", "1.5", 1.5, "must be between 0.0 and 1.0, got 1.5"),
        ("router", '"sometimes"', "sometimes", "sometimes", "must be one of off, agree, on"),
        ("verify", "1", "maybe", "maybe", 'must be true, false or "auto"'),
        ("temperature_range", "[0.9, 0.1]", "0.9,0.1", [0.9, 0.1], "with low <= high"),
    ],
)
def test_one_rule_checks_a_setting_from_the_file_the_environment_and_keywords(
    key: str,
    file_value: str,
    env_value: str,
    keyword_value: Any,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors = []
    Path("models.toml").write_text(f"[defaults]\n{key} = {file_value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config()
    errors.append(caught.value)
    Path("models.toml").unlink()
    monkeypatch.setenv(f"MOA_LOCAL_{key.upper()}", env_value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    errors.append(caught.value)
    monkeypatch.delenv(f"MOA_LOCAL_{key.upper()}")
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={key: keyword_value})
    errors.append(caught.value)
    assert [e.where for e in errors] == [
        f"models.toml: [defaults] {key}",
        f"MOA_LOCAL_{key.upper()}",
        key,
    ]
    for error in errors:
        assert error.setting == key
        assert reason in str(error.reason)
        assert str(error) == f"{error.where} {error.reason}"


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("verify", "true", True),
        ("verify", "off", False),
        ("verify", "auto", "auto"),
        ("show_proposals", "yes", True),
        ("proposers", "echo:a, echo:b", ("echo:a", "echo:b")),
        ("temperature_range", "0.1,0.5", (0.1, 0.5)),
        ("final_agent", "12", "12"),  # text settings keep digits as text
        ("budget_mb", "1024", 1024.0),
    ],
)
def test_environment_strings_read_as_their_settings_type(
    key: str, text: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"MOA_LOCAL_{key.upper()}", text)
    assert getattr(load_config(), key) == value


def test_override_defaults_changes_the_start_and_no_module_state() -> None:
    tables_before = {table: dict(values) for table, values in TABLES.items()}
    with override_defaults({"layers": 4, "router": "on"}):
        assert (load_config().layers, load_config().router) == (4, "on")
        with override_defaults({"layers": 5}):  # blocks nest; the inner one wins
            assert (load_config().layers, load_config().router) == (5, "on")
        # The file and the environment still apply on top, as on the built-ins.
        Path("models.toml").write_text("[defaults]\nlayers = 6\n", encoding="utf-8")
        assert load_config().layers == 6
    Path("models.toml").unlink()
    assert load_config().layers == 2  # the engine tests' shape (conftest) again
    assert {table: dict(values) for table, values in TABLES.items()} == tables_before
    with pytest.raises(TypeError):
        TABLES["defaults"]["layers"] = 9  # type: ignore[index]


def test_override_defaults_checks_its_values() -> None:
    with pytest.raises(ConfigError, match="override_defaults: layers must be >= 1"):
        override_defaults({"layers": 0}).__enter__()


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
def test_the_plan_takes_each_policy_from_the_config(key: str, value: object, field: str) -> None:
    # Changing only the defaults a config starts from changes the plan: the
    # plan has no default of its own that could contradict it.
    with override_defaults({key: value}):
        plan = MoA(proposers=["echo:a"], backends={"echo": EchoBackend()}).prepare()
    assert getattr(plan, field) == value


def test_plan_and_sampling_have_no_defaults() -> None:
    for record in (Plan, Sampling):
        with_default = [
            f.name
            for f in fields(record)
            if f.default is not MISSING or f.default_factory is not MISSING
        ]
        assert with_default == [], f"{record.__name__} has defaults: {with_default}"


@pytest.mark.parametrize(
    ("proposers", "strategy", "num_proposers", "expected"),
    [
        (("echo:a",), "temperature", 0, "default"),
        (("echo:a",), "role", 0, "default"),
        (("echo:a",), "model", 0, 1),
        (("echo:a", "echo:b"), "temperature", 0, 2),
        (("echo:a",), "temperature", 5, 5),
    ],
)
def test_proposers_per_layer_comes_from_the_setting(
    proposers: tuple[str, ...], strategy: str, num_proposers: int, expected: object
) -> None:
    config = Config(proposers=proposers, strategy=strategy, num_proposers=num_proposers)
    want = SETTINGS["num_proposers"].default if expected == "default" else expected
    assert proposers_per_layer(config, strategy) == want
