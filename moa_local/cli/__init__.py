"""The ``moa-local`` command. The only package that prints or exits.

One module per command family, each registering its commands on the click
group :func:`~moa_local.cli.group.main`:

- :mod:`.group`: the group itself, and library errors turned into one
  ``error: ...`` line and an exit code;
- :mod:`.common`: options and helpers the commands share;
- :mod:`.progress`: download bars and a run's progress lines on stderr;
- :mod:`.ask`, :mod:`.models` (pull, prune, models), :mod:`.serve`,
  :mod:`.evaluate` (eval, bench) and :mod:`.doctor`: the commands.

The command modules import the group; only this module imports them, so
importing :mod:`moa_local.cli` registers every command (the console script is
``moa_local.cli:main``).
"""

from __future__ import annotations

# Importing the command modules registers their commands on the group.
from . import ask, chat, doctor, evaluate, models, serve  # noqa: F401
from .group import main

__all__ = ["main"]
