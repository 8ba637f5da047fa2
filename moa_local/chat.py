"""A conversation with a mixture: its turns, the chat's commands, reading a message, saving.

``moa-local chat`` (:mod:`moa_local.cli.chat`) is a terminal front end over
this module, which knows nothing of terminals: a :class:`Conversation`
keeps the turns that every proposer and the aggregator see again (as
``serve`` does for a chat client), :func:`parse_command` reads a ``/command``,
and :func:`read_message` gathers one message from lines, ``\"\"\"`` opening
and closing a multi-line one as in ``ollama run``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.base import Message
from .errors import ConfigError
from .result import MoAResult
from .trace import read_trace

# The chat's commands and what each does (``/help`` prints them).
COMMANDS = {
    "/preset NAME": "switch to a [presets.NAME] (the conversation is kept)",
    "/models": "show the proposers and the aggregator",
    "/clear": "forget the conversation so far",
    "/save FILE": "write the conversation and its traces to FILE (JSON)",
    "/help": "show this list",
    "/bye": "end the chat (so does Ctrl-D)",
}
MULTILINE = '"""'
_COMMAND_NAME = re.compile(r"/[A-Za-z]+")


@dataclass
class Turn:
    """One question and the answer the mixture gave, with the run's trace file."""

    question: str
    answer: str
    trace_file: str | None = None
    seconds: float = 0.0


@dataclass
class Conversation:
    """The turns of a chat so far."""

    turns: list[Turn] = field(default_factory=list)

    def history(self) -> list[Message]:
        """The earlier turns as chat messages, oldest first."""
        messages: list[Message] = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.question})
            messages.append({"role": "assistant", "content": turn.answer})
        return messages

    def add(self, question: str, result: MoAResult) -> None:
        """Keep ``question`` and the answer ``result`` gave to it."""
        trace = str(result.trace_file) if result.trace_file else None
        self.turns.append(Turn(question, result.final_response, trace, round(result.seconds, 3)))

    def clear(self) -> None:
        """Forget every turn."""
        self.turns.clear()

    def to_dict(self) -> dict[str, Any]:
        """The conversation with each turn's trace events (None where no trace was written)."""
        return {
            "turns": [
                {
                    "user": turn.question,
                    "assistant": turn.answer,
                    "seconds": turn.seconds,
                    "trace_file": turn.trace_file,
                    "trace": _trace_events(turn.trace_file),
                }
                for turn in self.turns
            ]
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` as JSON, whole or not at all."""
        target = Path(path).expanduser()
        if not target.parent.is_dir():
            raise ConfigError(f"cannot save to {target}: {target.parent} is not a directory")
        if target.is_dir():
            raise ConfigError(f"cannot save to {target}: it is a directory")
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text + "\n")
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def _trace_events(trace_file: str | None) -> list[dict[str, Any]] | None:
    if not trace_file or not Path(trace_file).is_file():
        return None
    return read_trace(Path(trace_file))


def parse_command(line: str) -> tuple[str, str] | None:
    """``("/name", argument)`` for a line that is a command, None for a message.

    A line is a command when its first word is a slash and letters only
    (``/bye``, ``/preset fast``; ``/?`` is ``/help``), so a message may
    still begin with a path such as ``/etc/hosts``. Whether the command
    exists is the caller's question (:data:`COMMANDS`).
    """
    name, _, argument = line.strip().partition(" ")
    if name == "/?":
        return "/help", argument.strip()
    if not _COMMAND_NAME.fullmatch(name):
        return None
    return name.lower(), argument.strip()


def known_command(name: str) -> bool:
    """Whether ``name`` (``/bye``) is one of :data:`COMMANDS`."""
    return name in {command.split()[0] for command in COMMANDS}


async def read_message(
    next_line: Callable[[bool], Awaitable[str | None]],
) -> str | None:
    """One message from ``next_line(continued)``: a line, or lines between ``\"\"\"`` marks.

    ``next_line`` returns None at the end of input; ``continued`` says a
    multi-line message is open (a front end shows another prompt). A message
    left open at the end of input is returned as far as it went.
    """
    first = await next_line(False)
    if first is None:
        return None
    if not first.lstrip().startswith(MULTILINE):
        return first
    text = first.lstrip()[len(MULTILINE) :]
    if text.rstrip().endswith(MULTILINE) and text.strip() != "":
        return text.rstrip()[: -len(MULTILINE)]
    lines = [text] if text.strip() else []
    while True:
        line = await next_line(True)
        if line is None:
            break
        if line.rstrip().endswith(MULTILINE):
            lines.append(line.rstrip()[: -len(MULTILINE)])
            break
        lines.append(line)
    return "\n".join(lines).strip("\n")
