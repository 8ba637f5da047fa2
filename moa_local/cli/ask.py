"""``moa-local ask``: one prompt through the mixture, the answer streamed to stdout.

The run is the library's :class:`~moa_local.moa.MoA`; each setting flag is a
:class:`~moa_local.cli.common.SettingOption` whose parameter is MoA's keyword,
so the given ones pass straight on (and an error about one names the flag).
Progress goes through :class:`~moa_local.cli.progress.ProgressPrinter`, and
SIGTERM cancels the run cleanly (exit 143) with the models freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

import click

from ..errors import ConfigError, Terminated
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
    setting_option,
    trace_dir_option,
    verbose_option,
    with_preset,
)
from .group import main
from .progress import AnswerStream, ProgressPrinter, progress_factory, warnings_only


async def _cancelled_by_sigterm(moa: MoA, work: Any) -> Any:
    """Await ``work``; SIGTERM cancels it (the trace ends with run.error), then models are freed.

    Raises :class:`Terminated` (exit 143) when SIGTERM was the cause.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise Terminated("terminated by SIGTERM: the run was cancelled") from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await moa.aclose()


@main.command()
@click.argument("prompt")
@config_option("models.toml to use (default: search order in the README).")
@proposers_option
@preset_option
@aggregator_option
@setting_option("--layers", setting="layers")
@setting_option("--strategy", setting="strategy")
# "n", MoA's short keyword: at least 1 (num_proposers = 0 is for the config file).
@setting_option(
    "-n",
    "--num-proposers",
    "n",
    setting="num_proposers",
    help="Proposers per layer (an integer >= 1).",
)
@setting_option("--role-model", setting="role_model")
@setting_option("--final-agent", setting="final_agent")
@setting_option("--temperature", setting="temperature")
@setting_option("--max-tokens", setting="max_tokens")
@setting_option(
    "--verify/--no-verify", setting="verify", default=None, is_flag=True, type=click.BOOL
)
@setting_option("--router", setting="router")
@setting_option("--task", setting="task")
@setting_option("--aggregate", setting="aggregate")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--no-stream", is_flag=True, help="Print the answer at the end, not as it comes.")
@trace_dir_option
@no_pull_option
@budget_option
@verbose_option
@quiet_option
def ask(
    prompt: str,
    config_path: str | None,
    preset: str | None,
    as_json: bool,
    no_stream: bool,
    no_pull: bool,
    verbose: bool,
    quiet: bool,
    **settings: Any,
) -> None:
    """Ask PROMPT ('-' reads it from stdin); the answer streams to stdout."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    answer = AnswerStream()
    moa = MoA(
        config=with_preset(config_path, preset),
        auto_pull=not no_pull,
        progress=progress_factory(quiet),
        observers=[warnings_only] if quiet else [ProgressPrinter(verbose, answer)],
        **given_settings(settings),
    )
    if verbose and not quiet:
        err(f"config: {moa.config.source_label}")
    moa.prepare()
    stream = not (as_json or no_stream)
    result = asyncio.run(
        _cancelled_by_sigterm(moa, moa.run(prompt, on_text=answer.write if stream else None))
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif stream:
        answer.end()
    else:
        click.echo(result.final_response)
    if result.truncated and not quiet:
        err(
            f"note: the answer was cut at max_tokens ({moa.config.max_tokens}); "
            "raise --max-tokens to let it finish"
        )
    if not quiet:
        usage = result.usage
        err(
            f"done in {result.seconds:.1f} s, {usage['total_tokens']} tokens"
            + (f"; trace: {result.trace_file}" if result.trace_file else "")
        )
