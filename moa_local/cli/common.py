"""What several commands share: their common options, the config to run, stderr output.

A flag that gives a setting is a :class:`SettingOption`: its help comes from
the setting's declaration (:data:`moa_local.config.SETTINGS`), and its
parameter name is the keyword :class:`~moa_local.moa.MoA` takes, so a command
passes such flags on as they are. The library names a bad keyword value by
its keyword (``layers must be >= 1``); :func:`named_by_flag`, at the CLI's
edge, puts the flag the user typed in its place (``--layers must be >= 1``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click
from click.core import ParameterSource

from ..config import SETTINGS, Config, apply_overrides, load_config, preset_overrides
from ..config.validate import string
from ..errors import ConfigError, MoALocalError

# ctx.meta key (meta is shared by a command's context and its group's): the
# keyword of each setting flag given on the command line -> the flag, as typed.
_FLAGS_GIVEN = "moa_local.flags_given"

# A click type for the settings whose values are numbers; the others are text,
# checked by the setting's rule so that errors read the same as for a file.
_CLICK_TYPES: dict[Any, type] = {int: int, float: float}


class SettingOption(click.Option):
    """A flag that gives one setting: help from its declaration, errors named by the flag."""

    def __init__(
        self, param_decls: Sequence[str], *, setting: str, note: str = "", **attrs: Any
    ) -> None:
        declared = SETTINGS[setting]
        if "help" not in attrs:
            # A switch, a repeated flag, free text or a choice (its metavar lists the
            # values): the help says it all.
            plain = attrs.get("is_flag") or attrs.get("multiple") or declared.rule is string
            plain = plain or bool(declared.rule.choices)
            values = "" if plain else f" Values: {declared.rule.text}."
            attrs["help"] = f"{declared.help}{values}{note}"
        if declared.rule.choices:
            attrs.setdefault("metavar", "|".join(declared.rule.choices))
        attrs.setdefault("type", _CLICK_TYPES.get(declared.type, str))
        super().__init__(param_decls, **attrs)
        self.setting = setting

    def handle_parse_result(
        self, ctx: click.Context, opts: Mapping[str, Any], args: list[str]
    ) -> tuple[Any, list[str]]:
        """Parse as click does, and note the flag when the command line gave it."""
        value, args = super().handle_parse_result(ctx, opts, args)
        if self.name and ctx.get_parameter_source(self.name) is ParameterSource.COMMANDLINE:
            ctx.meta.setdefault(_FLAGS_GIVEN, {})[self.name] = "/".join(self.opts)
        return value, args


def setting_option(
    *param_decls: str, setting: str, **attrs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A :class:`SettingOption` for ``setting``; the parameter name is MoA's keyword."""
    return click.option(*param_decls, cls=SettingOption, setting=setting, **attrs)


def given_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The setting flags that were given, as MoA's keywords (repeated flags as a list)."""
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in values.items()
        if value is not None and value != ()
    }


def named_by_flag(exc: MoALocalError, ctx: click.Context) -> MoALocalError:
    """``exc``, naming the flag instead of the keyword when a flag gave the bad value."""
    if not isinstance(exc, ConfigError) or exc.where is None:
        return exc
    flag = ctx.meta.get(_FLAGS_GIVEN, {}).get(exc.where)
    if flag is None:  # the value came from the file, the environment or a preset
        return exc
    return ConfigError(f"{flag} {exc.reason}", setting=exc.setting, where=flag, reason=exc.reason)


def config_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``, passed to the command as ``config_path``."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help=help_text)


budget_option = setting_option("--budget-mb", setting="budget_mb")


# The options ``ask`` and ``chat`` share, with the same names and help.
preset_option = click.option("--preset", help="A [presets.NAME] of models.toml (flags still win).")
proposers_option = setting_option(
    "-m", "--proposer", "proposers", setting="proposers", multiple=True, note=" Repeatable."
)
aggregator_option = setting_option("--aggregator", setting="aggregator")
trace_dir_option = setting_option("--trace-dir", setting="trace_dir")
no_pull_option = click.option(
    "--no-pull", is_flag=True, help="Fail instead of pulling missing models."
)
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="More progress detail on stderr."
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")


def with_preset(config_path: str | None, preset: str | None) -> Config | str | None:
    """The config to run: the file (or search order), with a preset's values on top."""
    if preset is None:
        return config_path
    config = load_config(config_path)
    return apply_overrides(config, preset_overrides(config, preset))


def config_with_budget(config_path: str | None, budget_mb: float | None) -> Config:
    """The configuration, with ``--budget-mb`` on top when given."""
    return load_config(config_path, overrides={"budget_mb": budget_mb})


def err(message: str) -> None:
    """One line on stderr (progress, notes, the error line); stdout is for results."""
    click.echo(message, err=True)
