"""Run configs over a suite, one JSONL line per (config, problem), resumable.

A *config* is what ``--configs`` names:

- ``single:MODEL``: one call of one model (greedy), with the same prompt,
  system prompt and ``max_tokens`` as a layer-1 proposer of a mixture;
- ``moa``: the current ``[defaults]``;
- ``NAME``: a ``[presets.NAME]`` table of models.toml;
- any of these but ``single`` with ``+verify`` (verified aggregation),
  ``+router`` (selective MoA: agreement and simple questions), ``+agree``
  (agreement only), a way to end (``+vote``, ``+select``, ``+synthesize``,
  ``+auto``...: ``aggregate``) or any setting as ``+KEY=VALUE`` (a TOML
  value: ``+num_proposers=5``, ``+verify=false``) appended.

Every finished pair is appended to ``LOG_DIR/SUITE.jsonl`` at once (flushed
and fsynced), with the config's label and a fingerprint of its resolved
settings and prompts; a rerun skips the pairs whose fingerprint is already
there, so Ctrl-C loses nothing finished, a changed preset is measured afresh,
and two names for the same settings share their results. Each line also names
the machine that made it (:func:`~moa_local.evals.host.host_identity`): the
fingerprint says what was asked, not which CPU's rounding answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import prompts
from ..checks import form, program_tests
from ..config import AGGREGATIONS, SETTINGS, Config, apply_overrides, preset_overrides, validate
from ..errors import ConfigError, MoALocalError
from ..moa import MoA
from ..reporting import ProgressFactory, silent_progress
from .host import host_identity
from .suite import SPLITS, Problem, Suite, rescores_logged
from .summary import Summary, summarize

# Bumped when the way problems are asked or scored changes, so old log lines
# are not mixed with new ones.
PROTOCOL_VERSION = 1
_SUFFIXES: dict[str, dict[str, Any]] = {
    "verify": {"verify": True},
    "router": {"router": "on"},
    "agree": {"router": "agree"},
}


@dataclass(frozen=True)
class EvalConfig:
    """One config to evaluate: its label and the settings it changes."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    single: bool = False


def parse_configs(text: str, config: Config) -> list[EvalConfig]:
    """``--configs`` text (comma-separated) into configs; unknown names are a ConfigError."""
    labels = [part.strip() for part in text.split(",") if part.strip()]
    if not labels:
        raise ConfigError("--configs is empty: name at least one config (e.g. moa)")
    configs = []
    for label in labels:
        if label.startswith("single:"):
            model = label.removeprefix("single:").strip()
            if not model:
                raise ConfigError(f"--configs: {label!r} names no model (single:MODEL)")
            overrides = {"proposers": [model], "aggregator": model, "layers": 1, "temperature": 0.0}
            configs.append(EvalConfig(label, overrides, single=True))
            continue
        name, *suffixes = label.split("+")
        overrides = {} if name == "moa" else _preset(name, config)
        for suffix in suffixes:
            overrides.update(_suffix_settings(suffix, label))
        configs.append(EvalConfig(label, overrides))
    if len({c.label for c in configs}) != len(configs):
        raise ConfigError("--configs names the same config twice")
    return configs


def _suffix_settings(suffix: str, label: str) -> dict[str, Any]:
    """The settings one ``+suffix`` of a config label changes; a bad one is a ConfigError."""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix in AGGREGATIONS:
        return {"aggregate": suffix}
    key, equals, text = suffix.partition("=")
    if not equals:
        known = ", ".join("+" + s for s in (*_SUFFIXES, *AGGREGATIONS))
        raise ConfigError(
            f"--configs: unknown suffix +{suffix} in {label!r} (known: {known}, +KEY=VALUE)"
        )
    if key not in SETTINGS:
        raise ConfigError(f"--configs: unknown setting {key!r} in {label!r}")
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string
    return {key: validate(key, value, f"--configs {label!r}: {key}")}


def _preset(name: str, config: Config) -> dict[str, Any]:
    if name not in config.presets:
        known = ", ".join(["moa", "single:MODEL", *config.presets])
        raise ConfigError(f"--configs: unknown config {name!r} (known: {known})")
    return preset_overrides(config, name)


# Modules whose public upper-case strings are wording sent to a model: the
# mixture's prompts, the test writer's, and the form check's (its checker and
# its revisions). A change to any of them measures the mixture afresh.
WORDING_MODULES = (prompts, program_tests, form)


def prompt_texts(single: bool) -> list[str]:
    """The wording a config's answers depend on (a single model: only the proposer's)."""
    if single:
        return [prompts.DEFAULT_PROPOSER_SYSTEM, prompts.CODE_PROPOSER_SYSTEM]
    return [
        value
        for module in WORDING_MODULES
        for name, value in sorted(vars(module).items())
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    ]


# What a single model's answer depends on: the model it runs (the aggregator,
# after ``single:MODEL`` set it), its sampling, and how a question is
# recognised as code. The mixture's settings (aggregate, router, layers, ...)
# are left out, so changing a default of the mixture does not measure every
# single model again.
SINGLE_SETTINGS = ("aggregator", "temperature", "top_p", "max_tokens", "seed", "task", "timeout")

# Settings that decide where and how fast a run goes, never what it answers.
_VOLATILE_SETTINGS = (
    "trace_dir",
    "config_file",
    "budget_mb",
    "reserve_mb",
    "budget_fraction",
    "keep_alive",
    "cpu_slots",
)


def fingerprint(moa: MoA, single: bool) -> str:
    """A short hash of everything that decides a config's answers, prompts included.

    ``aggregator = "auto"`` counts as the model it resolves to, so the defaults
    and a preset naming that model share a fingerprint. A single model's hash
    covers only :data:`SINGLE_SETTINGS`.
    """
    settings = moa.config.as_dict()
    settings["aggregator"] = moa.prepare().aggregator.name
    if single:
        settings = {key: settings[key] for key in SINGLE_SETTINGS}
    else:
        for volatile in _VOLATILE_SETTINGS:
            settings.pop(volatile, None)
    blob = json.dumps(
        [PROTOCOL_VERSION, single, settings, prompt_texts(single)], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every record of a log file; a line cut off by a crash is ignored."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


class _Decisions:
    """Observer collecting whether the router shortened a run."""

    def __init__(self) -> None:
        self.shortcut = False

    def __call__(self, event: str, record: dict[str, Any]) -> None:
        if event == "router.decision" and record.get("action") in ("single", "stop"):
            self.shortcut = True


ProblemCallback = Callable[[dict[str, Any]], None]


def evaluate(
    suite: Suite,
    configs: Iterable[EvalConfig],
    *,
    base_config: Config,
    split: str = "dev",
    limit: int | None = None,
    only: Iterable[int] = (),
    max_tokens: int | None = None,
    seed: int = 0,
    log_dir: Path = Path("logs/eval"),
    progress: Callable[[str, int, int], Any] | None = None,
    pull_progress: ProgressFactory = silent_progress,
) -> list[Summary]:
    """Evaluate every config on ``suite``; returns one summary per config.

    ``progress(label, total, done)`` is called once per config and must return
    an object with ``update(n)`` and ``close()`` (a tqdm bar fits). ``limit``
    keeps the first problems of the split (of each group, for a grouped suite).
    ``only`` keeps the problems of the split with those indices (for looking
    again at a few problems; not a score to report).
    """
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    problems = suite.problems(split)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {limit}")
        problems = first_of_each_group(problems, limit)
    wanted = set(only)
    if wanted:
        missing = wanted - {p.index for p in problems}
        if missing:
            raise ConfigError(
                f"--only: no problem {min(missing)} in the {split} split (after --limit)"
            )
        problems = [p for p in problems if p.index in wanted]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{suite.name}.jsonl"
    summaries = []
    for config in configs:
        settings = apply_overrides(base_config, config.overrides)
        moa = MoA(
            config=settings,
            max_tokens=max_tokens,
            seed=seed,
            trace_dir="",
            auto_pull=True,
            progress=pull_progress,
            single=config.single,
        )
        print_label = fingerprint(moa, config.single)
        # Keyed by fingerprint alone: a preset with the same settings as the
        # defaults (or as another preset) reuses their answers under its own label.
        done = {
            record["id"]: {**record, "config": config.label}
            for record in read_log(log_path)
            if record.get("fingerprint") == print_label
        }
        if rescores_logged(suite):
            done = {p.id: _rescored(suite, p, done[p.id]) for p in problems if p.id in done}
        todo = [p for p in problems if p.id not in done]
        bar = progress(config.label, len(problems), len(problems) - len(todo)) if progress else None
        try:
            if todo:
                for record in asyncio.run(
                    _run_config(moa, suite, config, print_label, todo, log_path, bar)
                ):
                    done[record["id"]] = record
        finally:
            if bar is not None:
                bar.close()
        records = [done[p.id] for p in problems if p.id in done]
        summaries.append(summarize(config.label, suite.name, split, records, str(log_path)))
    return summaries


def _rescored(suite: Suite, problem: Problem, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` scored again by the suite's current scorer (a run error stays one)."""
    if record.get("outcome") == "run_error":
        return record
    score = suite.score(problem, record.get("answer") or "")
    return {**record, "outcome": score.outcome, "score": score.value, "details": score.details}


async def _run_config(
    moa: MoA,
    suite: Suite,
    config: EvalConfig,
    print_label: str,
    todo: list[Problem],
    log_path: Path,
    bar: Any,
) -> list[dict[str, Any]]:
    records = []
    machine = host_identity()
    try:
        for problem in todo:
            record = {**await _one(moa, suite, config, print_label, problem), "machine": machine}
            _append(log_path, record)
            records.append(record)
            if bar is not None:
                bar.update(1)
    finally:
        await moa.aclose()
    return records


async def _one(
    moa: MoA, suite: Suite, config: EvalConfig, print_label: str, problem: Problem
) -> dict[str, Any]:
    decisions = _Decisions()
    moa.observers = [decisions]
    started = time.perf_counter()
    answer, error, usage = "", None, {"prompt_tokens": 0, "completion_tokens": 0}
    candidates: list[dict[str, Any]] = []
    aggregator_cost: dict[str, Any] = {}
    chosen_how: list[dict[str, Any]] = []
    try:
        result = await moa.run(problem.prompt)
        answer, usage = result.final_response, result.usage
        chosen_how = [dict(d) for d in result.decisions]
        candidates = [
            {
                "layer": p.layer,
                "agent": p.agent,
                "temperature": p.temperature,
                "content": p.content,
                "error": p.error,
                "mean_logprob": p.mean_logprob,
                # What each candidate cost, so that ways to stop drawing can be
                # priced afterwards (scripts/cascade_samples.py).
                "completion_tokens": p.completion_tokens,
                "seconds": round(p.seconds, 3),
                "finish_reason": p.finish_reason,
                # The arithmetic check: a repaired last step, or a wrong step (no vote).
                "repaired": p.repaired,
                "slip": p.slip,
            }
            for layer in result.layer_history
            for p in layer
        ]
        aggregator_cost = {
            "completion_tokens": result.aggregator.completion_tokens,
            "seconds": round(result.aggregator.seconds, 3),
        }
    except MoALocalError as exc:
        error = str(exc)
    seconds = time.perf_counter() - started
    if error is None:
        score = await asyncio.to_thread(suite.score, problem, answer)
        outcome, value, details = score.outcome, score.value, score.details
    else:
        outcome, value, details = "run_error", 0.0, {"detail": error[:300]}
    return {
        "config": config.label,
        "fingerprint": print_label,
        "suite": suite.name,
        "index": problem.index,
        "id": problem.id,
        "group": problem.group,
        "outcome": outcome,
        "score": value,
        "details": details,
        "seconds": round(seconds, 3),
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "shortcut": decisions.shortcut,
        "answer": answer,
        # Every proposal the run made, so that other ways to choose among them
        # can be scored afterwards (scripts/candidates.py) without generating again.
        "candidates": candidates,
        "aggregator": aggregator_cost,  # what the final generation cost (0: none was made)
        # How the run chose (router, verification, form checks, votes), with reasons.
        "decisions": chosen_how,
    }


def first_of_each_group(problems: list[Problem], limit: int) -> list[Problem]:
    """The first ``limit`` problems of each group, in order (a suite of one group: of all)."""
    taken: Counter[str] = Counter()
    kept = []
    for problem in problems:
        if taken[problem.group] < limit:
            taken[problem.group] += 1
            kept.append(problem)
    return kept


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
