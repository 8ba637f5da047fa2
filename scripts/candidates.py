"""Score every candidate a mixture made, and the ways of choosing among them.

`moa-local eval` logs each run's proposals beside its answer. This script
scores each proposal with the suite's own scorer (HumanEval programs run in
the sandbox) and compares, per config, what the mixture returned with what
other choices would have scored on the same candidates:

- ``answer``: the answer the config returned, scored again by the current
  scorer (so that configs run before a scorer changed compare fairly), with
  ``s_per_item`` and, for a grouped suite, each group's score beside it;
- ``greedy``: the lowest-temperature proposal of layer 1 (the model alone);
- ``vote``: what ``aggregate = "vote"`` returns (the same reader,
  :func:`moa_local.answers.final_answer`, the greedy one on a tie; a candidate
  cut at ``max_tokens`` or marked with a wrong step of arithmetic has no vote);
- ``consensus``: what ``aggregate = "consensus"`` returns (the candidate whose
  words agree most with the others, the greediest on a tie);
- ``confidence@T``: what ``aggregate = "confidence"`` returns with softmax
  temperature T, from the logged ``mean_logprob`` of each candidate;
- ``oracle``: any candidate passes (the ceiling of any choice among them).

No model runs: what it measures is exact for choices that need no new
generation. A grouped suite (reasoning-gym, BIG-bench) scores the mean of its
task scores. Usage::

    python scripts/candidates.py gsm8k --configs moa [--log-dir logs/eval]
    python scripts/candidates.py reasoning-gym --configs moa --seed 0 [--tasks a,b]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from moa_local.answers import final_answer
from moa_local.engine.choose.confidence import weights
from moa_local.engine.choose.consensus import consensus_scores, most_agreed
from moa_local.engine.choose.vote import without_slips
from moa_local.evals.runner import read_log
from moa_local.evals.suites import SUITES, TAKES_TASKS, load_suite

TEMPERATURES = (0.03, 0.1, 0.3, 1.0)


def vote(candidates: Sequence[dict[str, Any]], question: str, code: bool) -> int:
    """Index of the candidate ``aggregate = "vote"`` returns."""
    return weighted(candidates, question, code, [1.0] * len(candidates))


def weighted(
    candidates: Sequence[dict[str, Any]], question: str, code: bool, weight: Sequence[float]
) -> int:
    """Index of the greediest candidate of the answer with the largest total weight."""
    order = sorted(range(len(candidates)), key=lambda i: candidates[i]["temperature"])
    keys = [
        None
        if c.get("finish_reason") == "length"
        else final_answer(c["content"], code=code, question=question)
        for c in candidates
    ]
    keys = without_slips([bool(c.get("slip")) for c in candidates], keys)
    totals: dict[str, float] = defaultdict(float)
    for key, w in zip(keys, weight, strict=True):
        if key is not None:
            totals[key] += w
    if not totals:
        return order[0]
    best = max(totals.values())
    return next(i for i in order if keys[i] is not None and totals[keys[i]] >= best - 1e-9)


def consensus(candidates: Sequence[dict[str, Any]]) -> int:
    """Index of the candidate ``aggregate = "consensus"`` returns."""
    order = sorted(range(len(candidates)), key=lambda i: candidates[i]["temperature"])
    return order[most_agreed(consensus_scores([candidates[i]["content"] for i in order]))]


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per config: its score and the score of each other choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=SUITES)
    parser.add_argument("--configs", required=True, help="comma-separated config labels")
    parser.add_argument("--log-dir", default="logs/eval")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--tasks", help=f"comma-separated tasks ({', '.join(TAKES_TASKS)})")
    parser.add_argument("--seed", type=int, default=0, help="reasoning-gym: the data seed")
    args = parser.parse_args(argv)

    tasks = None if args.tasks is None else [t.strip() for t in args.tasks.split(",") if t.strip()]
    suite = load_suite(args.suite, tasks=tasks, seed=args.seed)
    problems = {p.id: p for p in suite.problems("all")}
    records = read_log(Path(args.log_dir) / f"{args.suite}.jsonl")
    code = args.suite.startswith("humaneval")
    rows = []
    for label in [c.strip() for c in args.configs.split(",") if c.strip()]:
        mine = {r["id"]: r for r in records if r["config"] == label and r["id"] in problems}
        if not mine:
            print(f"{label}: nothing logged")
            continue
        # The answer itself is scored again (index -1), so that every config is
        # scored by the current scorer, whatever scored it when it ran.
        jobs = [
            (r["id"], i, c["content"])
            for r in mine.values()
            for i, c in [*enumerate(r.get("candidates") or []), (-1, {"content": r["answer"]})]
            if c.get("error") is None
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            scores = list(pool.map(lambda job: suite.score(problems[job[0]], job[2]).value, jobs))
        passed = {(pid, i): s for (pid, i, _), s in zip(jobs, scores, strict=True)}
        totals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for pid, record in mine.items():
            candidates = record.get("candidates") or []
            question = problems[pid].prompt
            group = problems[pid].group or ""
            last = max((c["layer"] for c in candidates), default=1)
            final = [i for i, c in enumerate(candidates) if c["layer"] == last and not c["error"]]
            first = [i for i, c in enumerate(candidates) if c["layer"] == 1 and not c["error"]]
            greedy = min(first, key=lambda i: candidates[i]["temperature"]) if first else None
            shown = [candidates[i] for i in final]
            picks: dict[str, int | None] = {
                "greedy": greedy,
                "vote": final[vote(shown, question, code)] if final else None,
                "consensus": final[consensus(shown)] if final else None,
            }
            confidences = [c.get("mean_logprob") for c in shown]
            if final and all(c is not None for c in confidences):
                for t in TEMPERATURES:
                    w = weights([float(c) for c in confidences if c is not None], t)
                    picks[f"confidence@{t:g}"] = final[weighted(shown, question, code, w)]
            totals["answer"][group].append(passed.get((pid, -1), 0.0))
            totals["seconds"][group].append(record["seconds"])
            if not candidates:
                continue
            for name, pick in picks.items():
                totals[name][group].append(passed.get((pid, pick), 0.0) if pick is not None else 0)
            best = max((passed.get((pid, i), 0.0) for i in final), default=0.0)
            totals["oracle"][group].append(best)
        n = len(mine)
        seconds = totals.pop("seconds")
        shares = {
            name: round(100 * sum(sum(v) / len(v) for v in groups.values()) / len(groups), 1)
            for name, groups in totals.items()
            if sum(len(v) for v in groups.values()) == n
        }
        shares["s_per_item"] = round(sum(sum(v) for v in seconds.values()) / n, 1)
        shares |= {
            f"{group or 'all'}": round(100 * sum(v) / len(v), 1)
            for group, v in sorted(totals["answer"].items())
        }
        rows.append({"config": label, "n": n, **shares})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            figures = " ".join(f"{k} {v}" for k, v in row.items() if k not in ("config", "n"))
            print(f"{row['config']}: n={row['n']} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
