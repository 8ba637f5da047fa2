"""``moa-local chat``: a conversation with the mixture in the terminal.

In a terminal, lines are read with prompt_toolkit (line editing, and a
history kept in ``$MOA_LOCAL_HOME/chat_history``); with stdin not a
terminal, each line (or ``\"\"\"``-delimited block) is one message, so a chat
can be scripted. Answers stream to stdout, progress goes to stderr as in
``ask``. Ctrl-C during an answer stops it and keeps the chat (that turn is
not kept); Ctrl-D or ``/bye`` ends it. The conversation itself lives in
:mod:`moa_local.chat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from ..chat import COMMANDS, Conversation, known_command, parse_command, read_message
from ..config import moa_home
from ..errors import ConfigError, MoALocalError
from ..moa import MoA
from .common import (
    aggregator_option,
    budget_option,
    config_option,
    err,
    given_settings,
    no_pull_option,
    preset_option,
    proposers_option,
    quiet_option,
    trace_dir_option,
    verbose_option,
    with_preset,
)
from .group import main
from .progress import AnswerStream, ProgressPrinter, progress_factory, warnings_only


class TerminalLines:
    """Lines typed at a terminal, with line editing and a history file."""

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        home = moa_home()
        home.mkdir(parents=True, exist_ok=True)
        self.session: Any = PromptSession(history=FileHistory(str(home / "chat_history")))

    async def next_line(self, continued: bool) -> str | None:
        """The next line; None at Ctrl-D. Ctrl-C raises KeyboardInterrupt."""
        try:
            return await self.session.prompt_async("... " if continued else ">>> ")
        except EOFError:
            return None


class PipeLines:
    """Lines of a stdin that is not a terminal."""

    async def next_line(self, continued: bool) -> str | None:
        """The next line without its newline; None at the end of input."""
        line = await asyncio.to_thread(sys.stdin.readline)
        return None if line == "" else line.rstrip("\r\n")


class ChatSession:
    """One chat: the mixture it talks to, the conversation, and the commands."""

    def __init__(
        self,
        build: Callable[[str | None], MoA],
        preset: str | None,
        answer_stream: AnswerStream | None = None,
    ) -> None:
        self.build = build
        self.answer_stream = answer_stream or AnswerStream()
        self.preset = preset
        self.moa = build(preset)
        self.conversation = Conversation()

    async def run(self, lines: TerminalLines | PipeLines, interactive: bool) -> None:
        """Read messages and answer them until the input ends or ``/bye``."""
        if interactive:
            err(f"chatting with {self.describe()}; /help for commands, Ctrl-D or /bye to end")
        try:
            while True:
                try:
                    message = await read_message(lines.next_line)
                except KeyboardInterrupt:
                    err("(Ctrl-D or /bye ends the chat)")
                    continue
                if message is None:
                    break
                if not message.strip():
                    continue
                command = parse_command(message) if "\n" not in message else None
                if command is not None:
                    if not await self.command(*command):
                        break
                    continue
                await self.answer(message)
        finally:
            await self.moa.aclose()

    async def answer(self, message: str) -> None:
        """Answer ``message`` with the conversation so far; Ctrl-C stops only this answer."""
        loop = asyncio.get_running_loop()
        stream = self.answer_stream
        stream.start()
        task = asyncio.ensure_future(
            self.moa.run(message, on_text=stream.write, history=self.conversation.history())
        )
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            result = await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            stream.end()
            err("(stopped; this turn is not kept)")
            return
        except MoALocalError as exc:
            stream.end()
            err(f"error: {exc}")
            return
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
        stream.end()
        self.conversation.add(message, result)

    async def command(self, name: str, argument: str) -> bool:
        """Carry out a ``/command``; False when the chat should end."""
        if not known_command(name):
            err(f"error: unknown command {name}; /help lists them")
        elif name == "/bye":
            return False
        elif name == "/help":
            width = max(len(c) for c in COMMANDS)
            click.echo("\n".join(f"{c.ljust(width)}  {what}" for c, what in COMMANDS.items()))
        elif name == "/models":
            click.echo(self.describe())
        elif name == "/clear":
            self.conversation.clear()
            err("(the conversation is cleared)")
        elif name == "/save":
            self.save(argument)
        elif name == "/preset":
            await self.switch(argument)
        return True

    def save(self, path: str) -> None:
        """``/save FILE``: write the conversation, or say in one line why not."""
        if not path:
            err("error: /save needs a file name (/save chat.json)")
            return
        try:
            saved = self.conversation.save(path)
        except (ConfigError, OSError) as exc:
            err(f"error: {exc}")
            return
        err(f"(saved {len(self.conversation.turns)} turn(s) to {saved})")

    async def switch(self, preset: str) -> None:
        """``/preset NAME``: talk to another preset from now on, keeping the conversation."""
        if not preset:
            err("error: /preset needs a name (/preset self-moa-verify)")
            return
        try:
            moa = self.build(preset)
            moa.share_runtime(self.moa)
            await asyncio.to_thread(moa.prepare)
        except MoALocalError as exc:
            err(f"error: {exc}")
            return
        self.moa, self.preset = moa, preset
        err(f"(now {self.describe()})")

    def describe(self) -> str:
        """The mixture in one line: preset, proposers and aggregator."""
        plan = self.moa.prepare()
        agents = ", ".join(
            f"{plan.spec_for(a).name} at {plan.temperature_of(a):g}" for a in plan.agents
        )
        preset = f"preset {self.preset}: " if self.preset else ""
        return (
            f"{preset}{len(plan.agents)} proposer(s) ({agents}), aggregator "
            f"{plan.aggregator.name}, aggregate {plan.aggregate}"
        )


@main.command()
@config_option("models.toml to use (default: search order in the README).")
@proposers_option
@preset_option
@aggregator_option
@trace_dir_option
@no_pull_option
@budget_option
@verbose_option
@quiet_option
def chat(
    config_path: str | None,
    preset: str | None,
    no_pull: bool,
    verbose: bool,
    quiet: bool,
    **settings: Any,
) -> None:
    """Chat with the mixture: every turn sees the earlier ones.

    Commands: /preset NAME, /models, /clear, /save FILE, /help, /bye.
    \"\"\" opens and closes a multi-line message. With stdin not a terminal,
    each line is one message and the answers go to stdout, one per message.
    """
    given = given_settings(settings)
    answer_stream = AnswerStream()

    def build(preset_name: str | None) -> MoA:
        return MoA(
            config=with_preset(config_path, preset_name),
            auto_pull=not no_pull,
            progress=progress_factory(quiet),
            observers=[warnings_only] if quiet else [ProgressPrinter(verbose, answer_stream)],
            **given,
        )

    session = ChatSession(build, preset, answer_stream)
    session.moa.prepare()  # models resolved (and pulled) before the first message
    interactive = sys.stdin.isatty()
    lines = TerminalLines() if interactive else PipeLines()
    asyncio.run(session.run(lines, interactive))
