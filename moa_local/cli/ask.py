"""``moa-local ask``: one prompt through the mixture, the answer streamed to stdout.

The run is the library's :class:`~moa_local.moa.MoA`; this module maps flags
to its arguments (``labels`` name the flag in error messages), prints
progress through :class:`~moa_local.cli.progress.ProgressPrinter`, and makes
SIGTERM cancel the run cleanly (exit 143) with the models freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

import click

from ..config import AGGREGATIONS
from ..errors import ConfigError, Terminated
from ..moa import MoA
from .common import (
    aggregator_option,
    budget_option,
    config_option,
    err,
    no_pull_option,
    preset_option,
    quiet_option,
    trace_dir_option,
    verbose_option,
    with_preset,
)
from .group import main
from .progress import ProgressPrinter, progress_factory, warnings_only


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
@click.option(
    "-m",
    "--proposer",
    "proposers",
    multiple=True,
    help="Proposer model (repeatable). Default: [defaults] proposers.",
)
@preset_option
@aggregator_option
@click.option("--layers", type=int, help="Number of proposer layers (>= 1).")
@click.option("--strategy", help="How to fill a layer: model, temperature or role.")
@click.option("-n", "--num-proposers", type=int, help="Proposers per layer.")
@click.option("--role-model", help="Model that writes the roles (strategy role).")
@click.option("--final-agent", help="Model that rewrites the aggregated answer once more.")
@click.option("--temperature", type=float, help="Sampling temperature (0 to 2).")
@click.option("--max-tokens", type=int, help="Most tokens per answer.")
@click.option(
    "--verify/--no-verify",
    default=None,
    help="Code questions: run candidates against the question's examples and tests the "
    "models write (runs model code). Default: on for questions with examples when "
    "bubblewrap isolates the code.",
)
@click.option("--router", help="Selective MoA: off, agree (stop when answers agree) or on.")
@click.option("--task", help="auto (detect code questions), code or text.")
@click.option(
    "--aggregate",
    help=f"How the mixture ends: {', '.join(AGGREGATIONS)} (synthesize writes a new "
    "answer, select lets the aggregator pick one, vote the most common answer, consensus the "
    "answer closest to the others, auto votes on programs and checkable answers and takes "
    "the consensus of free text).",
)
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
    proposers: tuple[str, ...],
    preset: str | None,
    aggregator: str | None,
    layers: int | None,
    strategy: str | None,
    num_proposers: int | None,
    role_model: str | None,
    final_agent: str | None,
    temperature: float | None,
    max_tokens: int | None,
    verify: bool | None,
    router: str | None,
    task: str | None,
    aggregate: str | None,
    as_json: bool,
    no_stream: bool,
    trace_dir: str | None,
    no_pull: bool,
    budget_mb: float | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Ask PROMPT ('-' reads it from stdin); the answer streams to stdout."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    labels = {
        "proposers": "-m/--proposer",
        "aggregator": "--aggregator",
        "layers": "--layers",
        "strategy": "--strategy",
        "num_proposers": "--num-proposers",
        "role_model": "--role-model",
        "final_agent": "--final-agent",
        "temperature": "--temperature",
        "max_tokens": "--max-tokens",
        "trace_dir": "--trace-dir",
        "budget_mb": "--budget-mb",
        "verify": "--verify",
        "router": "--router",
        "task": "--task",
        "aggregate": "--aggregate",
    }
    observers = [warnings_only] if quiet else [ProgressPrinter(verbose)]
    moa_kwargs: dict[str, Any] = {}
    if trace_dir is not None:
        moa_kwargs["trace_dir"] = trace_dir
    moa = MoA(
        proposers=list(proposers) or None,
        aggregator=aggregator,
        layers=layers,
        strategy=strategy,
        n=num_proposers,
        role_model=role_model,
        final_agent=final_agent,
        temperature=temperature,
        max_tokens=max_tokens,
        budget_mb=budget_mb,
        config=with_preset(config_path, preset),
        auto_pull=not no_pull,
        progress=progress_factory(quiet),
        observers=observers,
        labels=labels,
        verify=verify,
        router=router,
        task=task,
        aggregate=aggregate,
        **moa_kwargs,
    )
    if verbose and not quiet:
        err(f"config: {moa.config.source_label}")
    moa.prepare()
    stream = not (as_json or no_stream)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = asyncio.run(
        _cancelled_by_sigterm(moa, moa.run(prompt, on_text=write if stream else None))
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif stream:
        click.echo("")
    else:
        click.echo(result.final_response)
    if not quiet:
        usage = result.usage
        err(
            f"done in {result.seconds:.1f} s, {usage['total_tokens']} tokens"
            + (f"; trace: {result.trace_file}" if result.trace_file else "")
        )
