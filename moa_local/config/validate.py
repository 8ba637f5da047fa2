"""One validator per setting, shared by the config file, the environment and flags.

A validator is ``check(value, where) -> value``: it returns the value in the
type the :class:`~moa_local.config.Config` field holds, or raises
:class:`~moa_local.errors.ConfigError` with ``where`` (the file, table and
key; the environment variable; the flag) at the front of the message.
:data:`VALIDATORS` maps every ``[defaults]`` and ``[resources]`` key to its
validator; :func:`from_env` turns an environment string into what that
validator expects, so the environment is checked by the same code as files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .defaults import AGGREGATIONS, LAYOUTS, ROUTERS, STRATEGIES, TASKS

Validator = Callable[[Any, str], Any]


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is neither here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(minimum: int) -> Callable[[Any, str], int]:
    """A validator of integers of at least ``minimum``."""

    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{where} must be >= {minimum}, got {value}")
        return value

    return check


def number(minimum: float, maximum: float | None = None) -> Callable[[Any, str], float]:
    """A validator of numbers from ``minimum`` up to ``maximum`` (if given), as floats."""

    def check(value: Any, where: str) -> float:
        if not is_number(value):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
        return float(value)

    return check


def string(value: Any, where: str) -> str:
    """``value`` if it is a string."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def boolean(value: Any, where: str) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _strategy(value: Any, where: str) -> str:
    value = string(value, where)
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
    if not (isinstance(value, list) and len(value) == 2 and all(map(is_number, value))):
        raise ConfigError(f"{where} must be [low, high], got {value!r}")
    for item in value:
        number(0.0, 2.0)(item, where)
    if value[0] > value[1]:
        raise ConfigError(f"{where} must be [low, high] with low <= high, got {value!r}")
    return [float(value[0]), float(value[1])]


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        value = string(value, where)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _verify(value: Any, where: str) -> bool | str:
    if value == "auto" or isinstance(value, bool):
        return value
    raise ConfigError(f'{where} must be true, false or "auto", got {value!r}')


def _temperature_or_default(value: Any, where: str) -> float:
    if is_number(value) and value == -1:
        return -1.0
    return number(0.0, 2.0)(value, f"{where} (-1 = the run's temperature)")


def _seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer (-1 for random), got {value!r}")
    return value


# Every [defaults] and [resources] key, with its validator.
VALIDATORS: dict[str, Validator] = {
    "proposers": _string_list,
    "aggregator": string,
    "layers": integer(1),
    "strategy": _strategy,
    "num_proposers": integer(0),
    "role_model": string,
    "final_agent": string,
    "final_agent_prompt": string,
    "temperature": number(0.0, 2.0),
    "temperature_range": _range,
    "top_p": number(0.0, 1.0),
    "max_tokens": integer(1),
    "min_proposers": integer(1),
    "timeout": number(0.0),
    "trace_dir": string,
    "seed": _seed,
    "aggregator_temperature": _temperature_or_default,
    "aggregate_window": integer(0),
    "task": _choice(TASKS),
    "verify": _verify,
    "verify_samples": integer(0),
    "router": _choice(ROUTERS),
    "layout": _choice(LAYOUTS),
    "aggregate": _choice(AGGREGATIONS),
    "show_proposals": boolean,
    "budget_mb": number(0.0),
    "reserve_mb": number(0.0),
    "budget_fraction": number(0.05, 1.0),
    "keep_alive": number(-1.0),
    "cpu_slots": integer(0),
}

# Settings whose environment value is the string itself.
_STRING_SETTINGS = (
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
)


def validate(key: str, value: Any, where: str) -> Any:
    """``value`` checked (and converted) by ``key``'s validator; ``where`` leads any error."""
    validator = VALIDATORS.get(key)
    if validator is None:
        raise ConfigError(f"unknown setting {key!r}")
    return validator(value, where)


def from_env(key: str, text: str) -> Any:
    """Parse an environment string into the type the key expects."""
    validator = VALIDATORS.get(key)
    if validator is _string_list:
        return [part for part in text.split(",")]
    if validator is _range:
        parts = text.split(",")
        try:
            return [float(part) for part in parts]
        except ValueError:
            return text
    if validator is boolean:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if key in _STRING_SETTINGS:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_table(table: Any, checks: Mapping[str, Validator], where: str) -> dict[str, Any]:
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
