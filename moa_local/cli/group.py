"""The ``moa-local`` click group, and how it turns library errors into exit codes.

Library errors arrive as :class:`~moa_local.errors.MoALocalError` and leave
as one ``error: ...`` line on stderr with the error's exit code (0 success,
1 the run failed, 2 usage or config error, 130 interrupted); a bad value a
flag gave is named by that flag (:func:`.common.named_by_flag`).
``MOA_LOCAL_DEBUG=1`` re-raises them with the full traceback instead.

The command modules import :func:`main` from here and register themselves on
it; this module imports none of them back (only :mod:`.common`, which they share).
"""

from __future__ import annotations

import os
from typing import Any

import click

from .. import __version__
from ..errors import MoALocalError
from .common import named_by_flag


def _debug() -> bool:
    return os.environ.get("MOA_LOCAL_DEBUG", "").lower() in ("1", "true", "yes", "on")


class _Group(click.Group):
    """Turns library errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoALocalError as exc:
            if _debug():
                raise
            error = named_by_flag(exc, ctx)
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            if _debug():
                raise
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moa-local")
def main() -> None:
    """Local-first Mixture-of-Agents: several local models answer, refine, and aggregate."""
