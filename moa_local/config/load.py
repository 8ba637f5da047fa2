"""Merging: defaults, the config file, ``MOA_LOCAL_*`` and flags into one :class:`Config`.

:func:`load_config` is the one place the sources meet: it starts from
:func:`.settings.starting_values`, finds the file (:func:`find_config_file`),
reads its tables, lays the environment on top, and hands flags to
:func:`apply_overrides`, which the CLI and :class:`moa_local.MoA` also call to
lay a preset (:func:`preset_overrides`) or keyword arguments on an already
loaded config. Every value passes its setting's one rule on the way in,
whichever source it came from, and an error names that source.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from ..errors import ConfigError
from .defaults import BUILTIN_PRESETS
from .settings import SETTINGS, TABLE_NAMES, Config, starting_values, validate
from .tables import HostConfig, ModelConfig, read_hosts, read_models
from .validate import read_table


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
    env: Mapping[str, str] | None = None,
) -> Config:
    """Merge defaults, the config file, ``MOA_LOCAL_*`` and ``overrides`` into a Config.

    ``overrides`` holds flag or keyword values keyed by setting name; ``None``
    means "not given". An error about one of them names the setting, as the
    keyword (:attr:`ConfigError.where`); the CLI puts the flag in its place.
    """
    env = os.environ if env is None else env
    file_path = find_config_file(path, env)
    document = _read_toml(file_path) if file_path else {}
    label = str(file_path) if file_path else "the built-in defaults"

    unknown_tables = set(document) - {*TABLE_NAMES, "models", "hosts", "presets"}
    if unknown_tables:
        table = sorted(unknown_tables)[0]
        raise ConfigError(
            f"{label}: unknown table [{table}] "
            "(known tables: [defaults], [resources], [models.NAME], [hosts.NAME], "
            "[presets.NAME])"
        )

    values = starting_values()
    for table_name in TABLE_NAMES:
        table = document.get(table_name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: `{table_name}` must be a table")
        known = [name for name, s in SETTINGS.items() if s.table == table_name]
        for key, raw in table.items():
            if key not in known:
                raise ConfigError(
                    f"{label}: [{table_name}] unknown key {key!r} (known keys: {', '.join(known)})",
                    setting=key,
                )
            values[key] = SETTINGS[key].check(raw, f"{label}: [{table_name}] {key}")
    for name, declared in SETTINGS.items():
        if declared.env_var in env:
            values[name] = declared.from_env(env[declared.env_var])
    hosts = read_hosts(document.get("hosts", {}), label)
    models = read_models(document.get("models", {}), label, hosts)
    presets = read_presets(document.get("presets", {}), label)
    config = _build(values, models, file_path, hosts, presets)
    return apply_overrides(config, overrides or {})


def read_presets(tables: Any, label: str) -> dict[str, dict[str, Any]]:
    """``[presets.NAME]`` tables: named sets of [defaults] values, each checked.

    The built-in presets come first, so that a file adds a preset or replaces one.
    """
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `presets` must be a set of [presets.NAME] tables")
    rules = {name: s.rule for name, s in SETTINGS.items() if s.table == "defaults"}
    presets = {name: dict(values) for name, values in BUILTIN_PRESETS.items()}
    for name, table in tables.items():
        presets[name] = read_table(table, rules, f"{label}: [presets.{name}]")
    return presets


def preset_overrides(config: Config, name: str) -> dict[str, Any]:
    """The ``[presets.NAME]`` values of ``config``, ready for :func:`apply_overrides`."""
    if name not in config.presets:
        known = ", ".join(config.presets) or "none defined"
        raise ConfigError(
            f"unknown preset {name!r} ({known} in {config.source_label}); "
            "define it as a [presets.NAME] table in models.toml"
        )
    return dict(config.presets[name])


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """``config`` with flag or keyword values on top; ``None`` values are skipped.

    An error names the setting as the keyword (the CLI puts the flag in its place).
    """
    values = config.as_dict()
    changed = False
    for key, value in overrides.items():
        if value is None:
            continue
        values[key] = validate(key, value)
        changed = True
    if not changed:
        return config
    return _build(values, config.models, config.source, config.hosts, config.presets)


def _build(
    values: Mapping[str, Any],
    models: Mapping[str, ModelConfig],
    source: Path | None,
    hosts: Mapping[str, HostConfig],
    presets: Mapping[str, Mapping[str, Any]],
) -> Config:
    """The Config of checked ``values`` (lists become the tuples Config holds)."""
    held: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in values.items()
        if name in SETTINGS
    }
    return Config(**held, models=models, source=source, hosts=dict(hosts), presets=dict(presets))


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
