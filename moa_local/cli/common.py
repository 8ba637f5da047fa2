"""What several commands share: their common options, the config to run, stderr output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..config import Config, apply_overrides, load_config, preset_overrides


def config_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``, passed to the command as ``config_path``."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help=help_text)


budget_option = click.option(
    "--budget-mb", type=float, help="Memory budget per device in MiB (default: computed)."
)


# The options ``ask`` and ``chat`` share, with the same names and help.
preset_option = click.option("--preset", help="A [presets.NAME] of models.toml (flags still win).")
aggregator_option = click.option(
    "--aggregator", help='Aggregator model, or "auto" for the strongest installed.'
)
trace_dir_option = click.option(
    "--trace-dir", help="Directory for the JSONL traces ('' turns traces off)."
)
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
    labels = {key: f"[presets.{preset}] {key}" for key in config.presets.get(preset, {})}
    return apply_overrides(config, preset_overrides(config, preset), labels)


def config_with_budget(config_path: str | None, budget_mb: float | None) -> Config:
    """The configuration, with ``--budget-mb`` on top when given."""
    return load_config(
        config_path, overrides={"budget_mb": budget_mb}, labels={"budget_mb": "--budget-mb"}
    )


def err(message: str) -> None:
    """One line on stderr (progress, notes, the error line); stdout is for results."""
    click.echo(message, err=True)
