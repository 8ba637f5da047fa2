"""What several commands share: the ``--config`` and ``--budget-mb`` options, stderr output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..config import Config, load_config


def config_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``, passed to the command as ``config_path``."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help=help_text)


budget_option = click.option(
    "--budget-mb", type=float, help="Memory budget per device in MiB (default: computed)."
)


def config_with_budget(config_path: str | None, budget_mb: float | None) -> Config:
    """The configuration, with ``--budget-mb`` on top when given."""
    return load_config(
        config_path, overrides={"budget_mb": budget_mb}, labels={"budget_mb": "--budget-mb"}
    )


def err(message: str) -> None:
    """One line on stderr (progress, notes, the error line); stdout is for results."""
    click.echo(message, err=True)
