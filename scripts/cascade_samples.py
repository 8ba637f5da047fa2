"""What each sample of the verified cascade buys: score and seconds under ways to stop.

The verified cascade (``verify`` with a router, the default for code) draws
the plan's agents one after another and, when none passes the question's
examples, up to ``verify_samples`` more; the first candidate that passes
them ends the run. A logged run that drew them all holds every candidate in
the order drawn, with what each cost, so any earlier way to stop can be
priced on it without generating again:

- each candidate runs against the question's examples in the sandbox (what
  passed, and what each failing call returned) and against the suite's own
  tests (is it right);
- a *rule* says after which candidate the cascade stops; the answer is then
  the best-ranked candidate drawn (:func:`moa_local.checks.program_tests.rank`,
  which is what the verified choice ranks by), and its seconds are the
  candidates drawn plus the final synthesis when one was made.

The synthesis itself is not replayed (it would need a model): every rule is
scored without it, ``as run`` included, and the config's own score is printed
beside them. Usage::

    python scripts/cascade_samples.py humaneval --config moa --single single:qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa_local.checks import program_tests
from moa_local.checks.program_tests import Verdict
from moa_local.checks.programs import extract_python
from moa_local.engine.stops import repeated_failure, stalled
from moa_local.evals.runner import read_log
from moa_local.evals.suites import load_suite

PLAN_AGENTS = 3  # the default plan's layer: greedy and two sampled


@dataclass
class Drawn:
    """One problem's candidates in the order drawn, tested both ways."""

    problem_id: str
    verdicts: list[Verdict]
    programs: list[str | None]
    correct: list[float]
    seconds: list[float]
    synthesis_seconds: float
    tests: list[program_tests.TestCase]
    answer_score: float
    run_seconds: float


# A rule: given the verdicts so far (the last one failed), whether to stop drawing.
Rule = Callable[[Sequence[Verdict]], bool]


def as_run(verdicts: Sequence[Verdict]) -> bool:
    """Draw everything the config drew."""
    return False


def at_most(samples: int) -> Rule:
    """Stop after ``samples`` candidates (``verify_samples`` = samples - 3)."""
    return lambda verdicts: len(verdicts) >= samples


def repeats_a_failure(verdicts: Sequence[Verdict]) -> bool:
    """``verify_stop = "repeat"``: the last candidate failed exactly as an earlier one."""
    return repeated_failure(verdicts) is not None


def repeats_a_failure_in_extras(verdicts: Sequence[Verdict]) -> bool:
    """The same, but the plan's own agents are always drawn: only extra samples stop."""
    return len(verdicts) >= PLAN_AGENTS and repeats_a_failure(verdicts)


def all_fail_alike(verdicts: Sequence[Verdict]) -> bool:
    """Stop when at least two candidates are drawn and all failed the same way."""
    seen = {v.behaviour() for v in verdicts}
    return len(verdicts) >= 2 and len(seen) == 1 and None not in seen


def passes_nothing_twice(verdicts: Sequence[Verdict]) -> bool:
    """``verify_stop = "stalled"``: the last two candidates passed no example at all."""
    return stalled(verdicts) is not None


RULES: dict[str, Rule] = {
    "as run": as_run,
    "verify_samples=0": at_most(PLAN_AGENTS),
    "verify_samples=1": at_most(PLAN_AGENTS + 1),
    "verify_samples=2": at_most(PLAN_AGENTS + 2),
    "verify_stop=repeat": repeats_a_failure,
    "repeat, extra samples only": repeats_a_failure_in_extras,
    "all fail alike": all_fail_alike,
    "verify_stop=stalled": passes_nothing_twice,
}


def replay(drawn: Drawn, rule: Rule, synthesis: bool = True) -> tuple[float, float, int]:
    """Score, seconds and candidates drawn when the cascade stops by ``rule``."""
    for count in range(1, len(drawn.verdicts) + 1):
        verdict = drawn.verdicts[count - 1]
        spent = sum(drawn.seconds[:count])
        if program_tests.settles(verdict, drawn.tests):
            return drawn.correct[count - 1], spent, count
        if count == len(drawn.verdicts) or rule(drawn.verdicts[:count]):
            best = program_tests.rank(drawn.verdicts[:count], drawn.programs[:count], drawn.tests)[
                0
            ]
            extra = drawn.synthesis_seconds if synthesis else 0.0
            return drawn.correct[best], spent + extra, count
    return 0.0, 0.0, 0


async def tested(record: dict[str, Any], problem: Any, suite: Any) -> Drawn | None:
    """The record's first-layer candidates, run against the examples and the suite's tests
    (None: the question states no examples, or nothing was drawn)."""
    candidates = [c for c in record.get("candidates") or [] if c["layer"] == 1]
    if not candidates:
        return None
    question = problem.prompt
    texts = [c["content"] if c.get("error") is None else "" for c in candidates]
    entry = program_tests.entry_point(question, [t for t in texts if t])
    tests = program_tests.example_tests(question, entry)
    if not tests:
        return None
    programs = [extract_python(t, entry) if t else None for t in texts]
    verdicts = [await program_tests.run_tests(i, p, tests) for i, p in enumerate(programs)]
    correct = [
        (await asyncio.to_thread(suite.score, problem, t)).value if t else 0.0 for t in texts
    ]
    seconds = [float(c.get("seconds") or 0.0) for c in candidates]
    if not any(seconds):  # a log from before the costs were kept: share by length
        total = sum(len(t) for t in texts) or 1
        seconds = [record["seconds"] * len(t) / total for t in texts]
    synthesis = float((record.get("aggregator") or {}).get("seconds") or 0.0)
    return Drawn(
        record["id"],
        verdicts,
        programs,
        correct,
        seconds,
        synthesis,
        tests,
        record["score"],
        record["seconds"],
    )


async def collect(suite_name: str, config: str, log_dir: Path, split: str) -> list[Drawn]:
    """Every logged problem of ``config`` whose question states examples, tested."""
    suite = load_suite(suite_name)
    problems = {p.id: p for p in suite.problems(split)}
    records = [
        r for r in read_log(log_dir / f"{suite_name}.jsonl")
        if r["config"] == config and r["id"] in problems
    ]  # fmt: skip
    found = [await tested(r, problems[r["id"]], suite) for r in records]
    return [d for d in found if d is not None]


def table(drawn: Sequence[Drawn], single_seconds: float | None) -> list[dict[str, Any]]:
    """One row per rule: score, seconds and samples per problem, and the ratio to one model."""
    n = len(drawn)
    rows = [
        {
            "rule": "the config's own answers",
            "score": round(100 * sum(d.answer_score for d in drawn) / n, 1),
            "s_per_item": round(sum(d.run_seconds for d in drawn) / n, 1),
            "samples": round(sum(len(d.verdicts) for d in drawn) / n, 2),
        }
    ]
    for name, rule in RULES.items():
        for synthesis in (True, False):
            results = [replay(d, rule, synthesis) for d in drawn]
            rows.append(
                {
                    "rule": name + ("" if synthesis else ", no synthesis"),
                    "score": round(100 * sum(r[0] for r in results) / n, 1),
                    "s_per_item": round(sum(r[1] for r in results) / n, 1),
                    "samples": round(sum(r[2] for r in results) / n, 2),
                }
            )
    if single_seconds:
        for row in rows:
            row["x_single"] = round(row["s_per_item"] / single_seconds, 2)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table of rules for one logged config."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=("humaneval", "humaneval-noex"))
    parser.add_argument("--config", default="moa", help="the logged config that drew the samples")
    parser.add_argument("--single", help="a logged single-model config to compare seconds with")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--log-dir", default="logs/eval")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    log_dir = Path(args.log_dir)
    drawn = asyncio.run(collect(args.suite, args.config, log_dir, args.split))
    if not drawn:
        print(f"{args.config}: no logged problem with examples in {log_dir}")
        return 1
    single_seconds = None
    if args.single:
        ids = {d.problem_id for d in drawn}
        singles = [
            r["seconds"] for r in read_log(log_dir / f"{args.suite}.jsonl")
            if r["config"] == args.single and r["id"] in ids
        ]  # fmt: skip
        single_seconds = sum(singles) / len(singles) if singles else None
    rows = table(drawn, single_seconds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.config} on {args.suite} {args.split}: {len(drawn)} problems with examples")
    if single_seconds:
        print(f"{args.single}: {single_seconds:.1f} s per problem on the same problems")
    for row in rows:
        figures = " ".join(f"{k} {v}" for k, v in row.items() if k != "rule")
        print(f"  {row['rule']:<42} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
