"""Rules: what values a setting or table key takes, checked the same from every source.

A :class:`Rule` checks a value whichever source it came from (a config file,
a ``MOA_LOCAL_*`` variable, a flag or a keyword), says in words what it
accepts (for ``--help`` and docs/settings.md) and reads an environment
string into the value it then checks. Its ``check`` returns the value as the
configuration holds it, or raises :class:`Invalid` with the reason alone;
calling the rule puts ``where`` (the file and table, the variable, the
keyword) in front and raises :class:`~moa_local.errors.ConfigError`, so every
message reads ``<where> <reason>`` and the error carries both parts.

The settings themselves, each with its rule, are declared in
:mod:`.settings`; ``[models.NAME]`` and ``[hosts.NAME]`` keys in :mod:`.tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


class Invalid(Exception):
    """A rule's check refused a value; the message is the reason, without where."""


def number_or_text(text: str) -> Any:
    """An environment string as an int, else a float, else the text (the check then says why)."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _as_text(text: str) -> str:
    return text


def _comma_list(text: str) -> list[str]:
    return text.split(",")


def _floats(text: str) -> Any:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        return text


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _words(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text


@dataclass(frozen=True)
class Rule:
    """How one kind of value is checked, described, and read from the environment."""

    check: Callable[[Any], Any]  # the value as Config holds it, or Invalid(reason)
    text: str  # what it accepts, in words: "an integer >= 1"
    from_text: Callable[[str], Any] = number_or_text  # an environment string, before the check
    choices: tuple[str, ...] = ()  # a choice's values (a flag shows them: auto|text|code)

    def __call__(self, value: Any, where: str, setting: str | None = None) -> Any:
        """``value`` checked; a :class:`ConfigError` naming ``where`` (and ``setting``) if not."""
        try:
            return self.check(value)
        except Invalid as exc:
            reason = str(exc)
            raise ConfigError(
                f"{where} {reason}", setting=setting, where=where, reason=reason
            ) from None


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is neither here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"must be an integer, got {value!r}")
    if value < minimum:
        raise Invalid(f"must be >= {minimum}, got {value}")
    return value


def integer(minimum: int) -> Rule:
    """Integers of at least ``minimum``."""
    return Rule(lambda value: _integer(value, minimum), f"an integer >= {minimum}")


def _number(value: Any, minimum: float, maximum: float | None) -> float:
    if not is_number(value):
        raise Invalid(f"must be a number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise Invalid(f"must be {bound}, got {value}")
    return float(value)


def number(minimum: float, maximum: float | None = None) -> Rule:
    """Numbers from ``minimum`` up to ``maximum`` (if given), held as floats."""
    bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    return Rule(lambda value: _number(value, minimum, maximum), f"a number {bound}")


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {value!r}")
    return value


string = Rule(_string, "text", _as_text)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {value!r}")
    return value


boolean = Rule(_boolean, "true or false", _words)


def choice(choices: tuple[str, ...]) -> Rule:
    """One of ``choices`` (a string)."""

    def check(value: Any) -> str:
        text = _string(value)
        if text not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return Rule(check, f"one of {', '.join(choices)}", _as_text, choices)


def _model_names(value: Any) -> list[str]:
    items = list(value) if isinstance(value, tuple) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid(f"must be a list of model names, got {value!r}")
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise Invalid("is empty: give at least one proposer model")
    return names


model_names = Rule(_model_names, "a list of model names (environment: a,b)", _comma_list)


def _temperature_pair(value: Any) -> list[float]:
    pair = list(value) if isinstance(value, tuple) else value
    if not (isinstance(pair, list) and len(pair) == 2 and all(map(is_number, pair))):
        raise Invalid(f"must be [low, high], got {value!r}")
    for item in pair:
        _number(item, 0.0, 2.0)
    if pair[0] > pair[1]:
        raise Invalid(f"must be [low, high] with low <= high, got {value!r}")
    return [float(pair[0]), float(pair[1])]


temperature_pair = Rule(
    _temperature_pair, "[low, high], each from 0.0 to 2.0 (environment: low,high)", _floats
)


def _temperature_or_run(value: Any) -> float:
    if is_number(value) and value == -1:
        return -1.0
    try:
        return _number(value, 0.0, 2.0)
    except Invalid as exc:
        raise Invalid(f"(-1 = the run's temperature) {exc}") from None


temperature_or_run = Rule(_temperature_or_run, "-1 (the run's temperature) or 0.0 to 2.0")


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"must be an integer (-1 for random), got {value!r}")
    return value


random_seed = Rule(_seed, "an integer (-1: a new one every run)")


def _verify_mode(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if value == "auto":
        return "auto"
    raise Invalid(f'must be true, false or "auto", got {value!r}')


verify_mode = Rule(_verify_mode, 'true, false or "auto"', _words)


def read_table(table: Any, rules: Mapping[str, Rule], where: str) -> dict[str, Any]:
    """A ``[kind.NAME]`` table's values, each checked; unknown keys are errors."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        rule = rules.get(key)
        if rule is None:
            raise ConfigError(
                f"{where} unknown key {key!r} (known keys: {', '.join(rules)})", setting=key
            )
        values[key] = rule(raw, f"{where} {key}", key)
    return values
