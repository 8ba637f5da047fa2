"""Score every candidate a mixture made, and the ways of choosing among them.

`moa-local eval` logs each run's proposals beside its answer. This script
scores each proposal with the suite's own scorer (HumanEval programs run in
the sandbox) and compares, per config, what the mixture returned with what
other choices would have scored on the same candidates:

- ``greedy``: the lowest-temperature proposal of layer 1 (the model alone);
- ``majority``: the answer most candidates of the last layer share (same
  program after normalization, or the same text), the greedy one on a tie;
- ``oracle``: any candidate passes (the ceiling of any choice among them).

No model runs: what it measures is exact for choices that need no new
generation. Usage::

    python scripts/candidates.py humaneval --configs moa [--log-dir logs/eval]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from moa_local.evals.runner import read_log
from moa_local.evals.suites import load_suite
from moa_local.programs import extract_python, normalize_code


def answer_key(text: str, code: bool) -> str:
    """What two answers must share to count as the same answer."""
    if code:
        program = extract_python(text)
        if program is not None:
            return normalize_code(program)
    return " ".join(text.lower().split())


def majority(candidates: Sequence[dict[str, Any]], code: bool) -> int:
    """Index of the answer most candidates share; the greedy one wins a tie."""
    keys = [answer_key(c["content"], code) for c in candidates]
    counts = Counter(keys)
    best = max(counts.values())
    order = sorted(range(len(candidates)), key=lambda i: candidates[i]["temperature"])
    return next(i for i in order if counts[keys[i]] == best)


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per config: its score and the score of each other choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=["humaneval", "ifbench"])
    parser.add_argument("--configs", required=True, help="comma-separated config labels")
    parser.add_argument("--log-dir", default="logs/eval")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    suite = load_suite(args.suite)
    problems = {p.id: p for p in suite.problems("all")}
    records = read_log(Path(args.log_dir) / f"{args.suite}.jsonl")
    code = args.suite == "humaneval"
    rows = []
    for label in [c.strip() for c in args.configs.split(",") if c.strip()]:
        mine = {r["id"]: r for r in records if r["config"] == label and r.get("candidates")}
        if not mine:
            print(f"{label}: no logged candidates (run it again with this version)")
            continue
        jobs = [
            (r["id"], i, c["content"])
            for r in mine.values()
            for i, c in enumerate(r["candidates"])
            if c["error"] is None
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            scores = list(pool.map(lambda job: suite.score(problems[job[0]], job[2]).value, jobs))
        passed = {(pid, i): s for (pid, i, _), s in zip(jobs, scores, strict=True)}
        totals = Counter[str]()
        for pid, record in mine.items():
            candidates = record["candidates"]
            last = max(c["layer"] for c in candidates)
            final = [i for i, c in enumerate(candidates) if c["layer"] == last and not c["error"]]
            first = [i for i, c in enumerate(candidates) if c["layer"] == 1 and not c["error"]]
            greedy = min(first, key=lambda i: candidates[i]["temperature"]) if first else None
            chosen = final[majority([candidates[i] for i in final], code)] if final else None
            totals["mixture"] += record["score"]
            totals["greedy"] += passed.get((pid, greedy), 0.0) if greedy is not None else 0.0
            totals["majority"] += passed.get((pid, chosen), 0.0) if chosen is not None else 0.0
            totals["oracle"] += max((passed.get((pid, i), 0.0) for i in final), default=0.0)
        n = len(mine)
        shares = {k: round(100 * v / n, 1) for k, v in totals.items()}
        rows.append({"config": label, "n": n, **shares})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(
                f"{row['config']}: n={row['n']} mixture {row['mixture']} greedy {row['greedy']} "
                f"majority {row['majority']} oracle {row['oracle']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
