"""models.toml, environment and flags, merged in one place into a :class:`Config`.

Precedence, lowest to highest: built-in defaults < the config file <
``MOA_LOCAL_*`` environment variables < flags (or keyword arguments of
:class:`moa_local.MoA`). Exactly one file is read, the first that exists of:
``--config``, ``$MOA_LOCAL_CONFIG``, ``./models.toml``,
``$MOA_LOCAL_HOME/models.toml``. Without any, the built-in defaults below
apply, so an installed ``moa-local`` works from any directory.

Every value goes through one validator, and every error names where the bad
value came from: the file and line for TOML syntax, the file, table and key
for a wrong value, the variable for the environment, the flag for flags.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from .errors import ConfigError

STRATEGIES = ("model", "temperature", "role")
TASKS = ("auto", "text", "code")
ROUTERS = ("off", "agree", "on")
# How a refinement layer shows an agent the previous layer: "references" puts every
# answer in the system message; "continue" continues the agent's own chat (its
# answer stays an assistant turn, so its KV cache is reused) and adds the others'.
LAYOUTS = ("references", "continue")
AGGREGATIONS = ("synthesize", "select", "auto")
BACKENDS = ("llamacpp", "echo", "ollama", "openai")
HOST_KINDS = ("ollama", "openai")

# The MoA shape `moa-local ask` uses without flags. The repository's
# models.toml repeats these values with comments (a test keeps them equal).
BUILTIN_DEFAULTS: dict[str, Any] = {
    # Self-MoA on the strongest starter model, chosen by `moa-local eval` (README,
    # "Does the mixture help?"): the two-layer mix of the 0.5B and SmolLM2 that
    # shipped first scored 65 where the 1.5B alone scores 95 (HumanEval dev, first 17).
    "proposers": ["qwen2.5-coder-1.5b"],
    "aggregator": "qwen2.5-coder-1.5b",
    "layers": 1,
    "strategy": "temperature",
    "num_proposers": 3,
    "role_model": "",
    "final_agent": "",
    "final_agent_prompt": "",
    "temperature": 0.7,
    "temperature_range": [0.0, 0.8],
    "top_p": 0.95,
    "max_tokens": 384,
    "min_proposers": 1,
    "timeout": 0.0,
    "trace_dir": "logs/moa",
    "seed": -1,
    "aggregator_temperature": 0.0,
    "aggregate_window": 0,
    "task": "auto",
    "verify": False,
    "router": "agree",
    # Measured by `moa-local eval` (README): a two-layer Self-MoA scored 95 in the
    # continue layout against 75 with every answer listed (HumanEval dev, first 20).
    "layout": "continue",
    # How the aggregator ends the mixture: "synthesize" writes a new answer from
    # the last layer's; "select" picks one of them (Universal Self-Consistency);
    # "auto" selects for questions that do not ask for code. Measured (README):
    # on IFBench dev a pick kept the single model's level, a rewrite fell below it.
    "aggregate": "auto",
    # `moa-local serve`: stream the proposals before the answer, in the channel
    # chat clients fold away as reasoning.
    "show_proposals": False,
}

# [resources]: how much of the machine moa-local may use (see resources.py).
BUILTIN_RESOURCES: dict[str, Any] = {
    "budget_mb": 0,
    "reserve_mb": 512,
    "budget_fraction": 0.9,
    "keep_alive": -1.0,
    "cpu_slots": 0,
}

# Named configurations shipped with moa-local (`--configs NAME` in eval, `--preset NAME`
# in ask). The repository's models.toml repeats them with comments (a test keeps them
# equal); a [presets.NAME] table in a config file adds one or replaces one of these.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "classic": {
        "proposers": ["qwen2.5-coder-0.5b", "smollm2-135m"],
        "aggregator": "auto",
        "layers": 2,
        "strategy": "model",
        "num_proposers": 0,
        "aggregator_temperature": -1.0,
        "router": "off",
        "layout": "references",
    },
    "self-moa": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "self-moa-verify": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "verify": True,
        "router": "agree",
    },
    "self-moa-seq": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 6,
        "temperature_range": [0.2, 1.0],
        "layers": 1,
        "aggregate_window": 2,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "self-moa-select": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "agree",
        "aggregate": "auto",
    },
    "qwen-mix": {
        "proposers": ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "model",
        "num_proposers": 0,
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "qwen-mix-smol": {
        "proposers": ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "model",
        "num_proposers": 0,
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
}

TABLES: dict[str, dict[str, Any]] = {"defaults": BUILTIN_DEFAULTS, "resources": BUILTIN_RESOURCES}


@dataclass(frozen=True)
class HostConfig:
    """One ``[hosts.NAME]`` table: a server on this or another machine."""

    name: str
    url: str
    kind: str = "ollama"
    budget_mb: float | None = None  # memory the host may fill with our models
    total_mb: float | None = None  # Ollama: its memory, from which what it holds is taken
    api_key: str | None = None
    timeout: float = 600.0  # seconds a generation may take on this host
    slots: int = 0  # concurrent generations (0: Ollama decides; OpenAI servers: 1)
    keep_alive: str | float | None = None  # Ollama: how long it keeps a model after a chat


@dataclass(frozen=True)
class ModelConfig:
    """One ``[models.NAME]`` table."""

    name: str
    backend: str = "llamacpp"
    host: str | None = None
    model: str | None = None  # the model's name on its server (Ollama tag, OpenAI id)
    path: Path | None = None
    catalog: str | None = None
    n_ctx: int | None = None
    n_gpu_layers: int | None = None
    n_threads: int | None = None
    chat_format: str | None = None
    parameters: int | None = None
    family: str | None = None


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
            values[key] = _validate(key, raw, f"{label}: [{table_name}] {key}")
    for key in values:
        var = f"MOA_LOCAL_{key.upper()}"
        if var in env:
            values[key] = _validate(key, _from_env(key, env[var]), var)
    hosts = _read_hosts(document.get("hosts", {}), label)
    models = _read_models(document.get("models", {}), label, hosts)
    presets = _read_presets(document.get("presets", {}), label)
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


def _read_presets(tables: Any, label: str) -> dict[str, dict[str, Any]]:
    """``[presets.NAME]`` tables: named sets of [defaults] values, each checked."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `presets` must be a set of [presets.NAME] tables")
    checks = {key: _VALIDATORS[key] for key in BUILTIN_DEFAULTS}
    presets = {name: dict(values) for name, values in BUILTIN_PRESETS.items()}
    for name, table in tables.items():
        presets[name] = _read_table(table, checks, f"{label}: [presets.{name}]")
    return presets


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
        values[key] = _validate(key, value, labels.get(key, key))
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


# ---------------------------------------------------------------------------
# Validation of [defaults] values (shared by file, environment and flags)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(minimum: int) -> Callable[[Any, str], int]:
    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{where} must be >= {minimum}, got {value}")
        return value

    return check


def _number(minimum: float, maximum: float | None = None) -> Callable[[Any, str], float]:
    def check(value: Any, where: str) -> float:
        if not _is_number(value):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
        return float(value)

    return check


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def _strategy(value: Any, where: str) -> str:
    value = _string(value, where)
    if value not in STRATEGIES:
        raise ConfigError(f"{where} must be one of {', '.join(STRATEGIES)}, got {value!r}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where} must be a list of model names, got {value!r}")
    names = [item.strip() for item in value if item.strip()]
    if not names:
        raise ConfigError(f"{where} is empty: give at least one proposer model")
    return names


def _range(value: Any, where: str) -> list[float]:
    if isinstance(value, tuple):
        value = list(value)
    if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
        raise ConfigError(f"{where} must be [low, high], got {value!r}")
    for item in value:
        _number(0.0, 2.0)(item, where)
    if value[0] > value[1]:
        raise ConfigError(f"{where} must be [low, high] with low <= high, got {value!r}")
    return [float(value[0]), float(value[1])]


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        value = _string(value, where)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _temperature_or_default(value: Any, where: str) -> float:
    if _is_number(value) and value == -1:
        return -1.0
    return _number(0.0, 2.0)(value, f"{where} (-1 = the run's temperature)")


def _seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer (-1 for random), got {value!r}")
    return value


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "proposers": _string_list,
    "aggregator": _string,
    "layers": _integer(1),
    "strategy": _strategy,
    "num_proposers": _integer(0),
    "role_model": _string,
    "final_agent": _string,
    "final_agent_prompt": _string,
    "temperature": _number(0.0, 2.0),
    "temperature_range": _range,
    "top_p": _number(0.0, 1.0),
    "max_tokens": _integer(1),
    "min_proposers": _integer(1),
    "timeout": _number(0.0),
    "trace_dir": _string,
    "seed": _seed,
    "aggregator_temperature": _temperature_or_default,
    "aggregate_window": _integer(0),
    "task": _choice(TASKS),
    "verify": _boolean,
    "router": _choice(ROUTERS),
    "layout": _choice(LAYOUTS),
    "aggregate": _choice(AGGREGATIONS),
    "show_proposals": _boolean,
    "budget_mb": _number(0.0),
    "reserve_mb": _number(0.0),
    "budget_fraction": _number(0.05, 1.0),
    "keep_alive": _number(-1.0),
    "cpu_slots": _integer(0),
}


def _validate(key: str, value: Any, where: str) -> Any:
    validator = _VALIDATORS.get(key)
    if validator is None:
        raise ConfigError(f"unknown setting {key!r}")
    return validator(value, where)


def _from_env(key: str, text: str) -> Any:
    """Parse an environment string into the type the key expects."""
    validator = _VALIDATORS.get(key)
    if validator is _string_list:
        return [part for part in text.split(",")]
    if validator is _range:
        parts = text.split(",")
        try:
            return [float(part) for part in parts]
        except ValueError:
            return text
    if validator is _boolean:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if key in (
        "aggregator",
        "task",
        "router",
        "layout",
        "aggregate",
        "strategy",
        "role_model",
        "final_agent",
        "final_agent_prompt",
        "trace_dir",
    ):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------
# [models.NAME] tables

_MODEL_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "backend": _string,
    "path": _string,
    "catalog": _string,
    "n_ctx": _integer(128),
    "n_gpu_layers": _integer(-1),
    "n_threads": _integer(1),
    "chat_format": _string,
    "parameters": _integer(1),
    "family": _string,
    "description": _string,
    "host": _string,
    "model": _string,
}


def _read_table(
    table: Any, checks: Mapping[str, Callable[[Any, str], Any]], where: str
) -> dict[str, Any]:
    """A ``[kind.NAME]`` table's values, each checked; unknown keys are errors."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        check = checks.get(key)
        if check is None:
            raise ConfigError(f"{where} unknown key {key!r} (known keys: {', '.join(checks)})")
        values[key] = check(raw, f"{where} {key}")
    return values


def _read_models(
    tables: Any, label: str, hosts: Mapping[str, HostConfig] | None = None
) -> dict[str, ModelConfig]:
    hosts = hosts or {}
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `models` must be a set of [models.NAME] tables")
    models = {}
    for name, table in tables.items():
        where = f"{label}: [models.{name}]"
        values = _read_table(table, _MODEL_KEYS, where)
        host = values.get("host")
        if host is not None and host not in hosts:
            known = ", ".join(hosts) or "none defined"
            raise ConfigError(f"{where} host {host!r} is not a [hosts.NAME] table ({known})")
        backend = values.get("backend", hosts[host].kind if host else "llamacpp")
        if host is not None and backend != hosts[host].kind:
            raise ConfigError(
                f"{where} backend {backend!r} does not match host {host!r} (kind "
                f"{hosts[host].kind!r})"
            )
        if backend not in BACKENDS:
            raise ConfigError(
                f"{where} backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
            )
        if "path" in values and "catalog" in values:
            raise ConfigError(f"{where} sets both `path` and `catalog`; keep one")
        path = values.get("path")
        if path is not None:
            path = Path(path).expanduser()
            if not path.is_absolute() and label != "the built-in defaults":
                # Relative paths are relative to the file that names them.
                path = Path(label).parent / path
        models[name] = ModelConfig(
            name=name,
            backend=backend,
            path=path,
            catalog=values.get("catalog"),
            n_ctx=values.get("n_ctx"),
            n_gpu_layers=values.get("n_gpu_layers"),
            n_threads=values.get("n_threads"),
            chat_format=values.get("chat_format"),
            parameters=values.get("parameters"),
            family=values.get("family"),
            host=host,
            model=values.get("model"),
        )
        if backend == "openai" and not (host and values.get("model")):
            raise ConfigError(f"{where} an openai model needs `host` and `model`")
        if backend in ("ollama", "openai") and "path" in values:
            raise ConfigError(f"{where} a model served by {backend} has no `path`; remove it")
    return models


_HOST_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "url": _string,
    "kind": _string,
    "budget_mb": _number(1.0),
    "total_mb": _number(1.0),
    "api_key": _string,
    "timeout": _number(1.0),
    "slots": _integer(0),
    "keep_alive": lambda value, where: (
        value if isinstance(value, str) or _is_number(value) else _string(value, where)
    ),
}


def _read_hosts(tables: Any, label: str) -> dict[str, HostConfig]:
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `hosts` must be a set of [hosts.NAME] tables")
    hosts = {}
    for name, table in tables.items():
        where = f"{label}: [hosts.{name}]"
        values = _read_table(table, _HOST_KEYS, where)
        url = values.get("url", "")
        if not url.startswith(("http://", "https://")) or not url.split("://", 1)[1].strip("/"):
            raise ConfigError(f"{where} url must be http://HOST[:PORT] or https://..., got {url!r}")
        kind = values.get("kind", "ollama")
        if kind not in HOST_KINDS:
            raise ConfigError(f"{where} kind must be one of {', '.join(HOST_KINDS)}, got {kind!r}")
        if "total_mb" in values and kind != "ollama":
            raise ConfigError(f"{where} total_mb is for Ollama hosts; use budget_mb")
        if "total_mb" in values and "budget_mb" in values:
            raise ConfigError(f"{where} sets both budget_mb and total_mb; keep one")
        hosts[name] = HostConfig(
            name=name,
            url=url.rstrip("/"),
            kind=kind,
            budget_mb=values.get("budget_mb"),
            total_mb=values.get("total_mb"),
            api_key=values.get("api_key"),
            timeout=values.get("timeout", 600.0),
            slots=values.get("slots", 0),
            keep_alive=values.get("keep_alive"),
        )
    return hosts
