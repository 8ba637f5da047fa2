"""Merging: defaults, the config file, ``MOA_LOCAL_*`` and flags into one :class:`Config`.

:func:`load_config` is the one place the sources meet: it finds the file
(:func:`find_config_file`), reads its tables, lays the environment on top, and
hands flags to :func:`apply_overrides`, which the CLI and :class:`moa_local.MoA`
also call to lay a preset (:func:`preset_overrides`) or keyword arguments on
an already loaded config. Every value passes :func:`.validate.validate` on the
way in, whichever source it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from ..errors import ConfigError
from .defaults import TABLES
from .tables import HostConfig, ModelConfig, read_hosts, read_models, read_presets
from .validate import from_env, validate


@dataclass(frozen=True)
class Config:
    """The fully merged configuration of one run."""

    proposers: tuple[str, ...]
    aggregator: str
    layers: int
    strategy: str
    num_proposers: int
    role_model: str
    final_agent: str
    final_agent_prompt: str
    temperature: float
    temperature_range: tuple[float, float]
    top_p: float
    max_tokens: int
    min_proposers: int
    timeout: float
    trace_dir: str
    seed: int
    aggregator_temperature: float
    aggregate_window: int
    task: str
    verify: bool
    verify_samples: int
    router: str
    layout: str
    aggregate: str
    show_proposals: bool
    budget_mb: float
    reserve_mb: float
    budget_fraction: float
    keep_alive: float
    cpu_slots: int
    models: Mapping[str, ModelConfig] = field(default_factory=dict)
    source: Path | None = None
    hosts: Mapping[str, HostConfig] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def source_label(self) -> str:
        """Where the file part of this config came from, for messages."""
        return str(self.source) if self.source else "the built-in defaults"

    def as_dict(self) -> dict[str, Any]:
        """The resolved values, as recorded in a trace's ``run.start`` event."""
        values = {key: getattr(self, key) for table in TABLES.values() for key in table}
        values["proposers"] = list(self.proposers)
        values["temperature_range"] = list(self.temperature_range)
        values["config_file"] = str(self.source) if self.source else None
        return values


def moa_home(env: Mapping[str, str] | None = None) -> Path:
    """``$MOA_LOCAL_HOME``, or the platform's user cache directory for moa-local."""
    env = os.environ if env is None else env
    home = env.get("MOA_LOCAL_HOME")
    return Path(home).expanduser() if home else Path(user_cache_dir("moa-local"))


def find_config_file(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to read, following the documented search order."""
    env = os.environ if env is None else env
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from --config)")
        return path
    from_env = env.get("MOA_LOCAL_CONFIG")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from MOA_LOCAL_CONFIG)")
        return path
    for candidate in (Path("models.toml"), moa_home(env) / "models.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Merge defaults, the config file, ``MOA_LOCAL_*`` and ``overrides`` into a Config.

    ``overrides`` holds flag or keyword values keyed as in ``[defaults]``;
    ``None`` means "not given". ``labels`` names where each override came from
    (e.g. ``{"layers": "--layers"}``) so that errors point at the flag.
    """
    env = os.environ if env is None else env
    file_path = find_config_file(path, env)
    document = _read_toml(file_path) if file_path else {}
    label = str(file_path) if file_path else "the built-in defaults"

    unknown_tables = set(document) - {*TABLES, "models", "hosts", "presets"}
    if unknown_tables:
        table = sorted(unknown_tables)[0]
        raise ConfigError(
            f"{label}: unknown table [{table}] "
            "(known tables: [defaults], [resources], [models.NAME], [hosts.NAME], "
            "[presets.NAME])"
        )

    values: dict[str, Any] = {}
    for table_name, builtin in TABLES.items():
        values.update(builtin)
        table = document.get(table_name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: `{table_name}` must be a table")
        for key, raw in table.items():
            if key not in builtin:
                raise ConfigError(
                    f"{label}: [{table_name}] unknown key {key!r} "
                    f"(known keys: {', '.join(builtin)})"
                )
            values[key] = validate(key, raw, f"{label}: [{table_name}] {key}")
    for key in values:
        var = f"MOA_LOCAL_{key.upper()}"
        if var in env:
            values[key] = validate(key, from_env(key, env[var]), var)
    hosts = read_hosts(document.get("hosts", {}), label)
    models = read_models(document.get("models", {}), label, hosts)
    presets = read_presets(document.get("presets", {}), label)
    config = _build(values, models, file_path, hosts, presets)
    return apply_overrides(config, overrides or {}, labels)


def preset_overrides(config: Config, name: str) -> dict[str, Any]:
    """The ``[presets.NAME]`` values of ``config``, ready for :func:`apply_overrides`."""
    if name not in config.presets:
        known = ", ".join(config.presets) or "none defined"
        raise ConfigError(
            f"unknown preset {name!r} ({known} in {config.source_label}); "
            "define it as a [presets.NAME] table in models.toml"
        )
    return dict(config.presets[name])


def apply_overrides(
    config: Config, overrides: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> Config:
    """``config`` with flag or keyword values on top; ``None`` values are skipped."""
    labels = labels or {}
    values = config.as_dict()
    del values["config_file"]
    changed = False
    for key, value in overrides.items():
        if value is None:
            continue
        values[key] = validate(key, value, labels.get(key, key))
        changed = True
    if not changed:
        return config
    return _build(values, config.models, config.source, config.hosts, config.presets)


def _build(
    values: dict[str, Any],
    models: Mapping[str, ModelConfig],
    source: Path | None,
    hosts: Mapping[str, HostConfig] | None = None,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    low, high = values["temperature_range"]
    if low > high:
        raise ConfigError(
            f"temperature_range must be [low, high] with low <= high, got {[low, high]}"
        )
    return Config(
        proposers=tuple(values["proposers"]),
        aggregator=values["aggregator"],
        layers=values["layers"],
        strategy=values["strategy"],
        num_proposers=values["num_proposers"],
        role_model=values["role_model"],
        final_agent=values["final_agent"],
        final_agent_prompt=values["final_agent_prompt"],
        temperature=values["temperature"],
        temperature_range=(low, high),
        top_p=values["top_p"],
        max_tokens=values["max_tokens"],
        min_proposers=values["min_proposers"],
        timeout=values["timeout"],
        trace_dir=values["trace_dir"],
        seed=values["seed"],
        aggregator_temperature=values["aggregator_temperature"],
        aggregate_window=values["aggregate_window"],
        task=values["task"],
        verify=values["verify"],
        verify_samples=values["verify_samples"],
        router=values["router"],
        layout=values["layout"],
        aggregate=values["aggregate"],
        show_proposals=values["show_proposals"],
        budget_mb=values["budget_mb"],
        reserve_mb=values["reserve_mb"],
        budget_fraction=values["budget_fraction"],
        keep_alive=values["keep_alive"],
        cpu_slots=values["cpu_slots"],
        models=models,
        source=source,
        hosts=dict(hosts or {}),
        presets=dict(presets or {}),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
