"""Compare two ``moa-local eval`` logs item by item: did a change alter any answer?

A refactoring that claims "no behaviour change" runs the same eval before and
after (``--log-dir`` apart) and compares the logs here: per config and item,
the outcome, the answer and every candidate (its agent, text and error) must
be equal. Timings are not compared.

    python scripts/compare_eval_logs.py BEFORE.jsonl AFTER.jsonl

Prints one line per item that differs and a summary; exits 1 when anything
differs or when the two logs hold different items.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Key = tuple[str, int]


def read_log(path: Path) -> dict[Key, dict[str, Any]]:
    """The log's records by (config, item index); a later record of an item wins."""
    records = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records[(record["config"], record["index"])] = record
    return records


def candidates_of(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What identifies each candidate's generation: who wrote what, or why it failed."""
    return [
        (c.get("layer"), c.get("agent"), c.get("content"), c.get("error"))
        for c in record.get("candidates") or []
    ]


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The fields in which two records of one item differ."""
    found = [
        field for field in ("outcome", "score", "answer") if before.get(field) != after.get(field)
    ]
    if candidates_of(before) != candidates_of(after):
        found.append("candidates")
    return found


def main(argv: list[str]) -> int:
    """Compare the logs named in ``argv``; 0 when every item is the same."""
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: compare_eval_logs.py BEFORE.jsonl AFTER.jsonl", file=sys.stderr)
        return 2
    before, after = (read_log(Path(name)) for name in argv)
    changed = 0
    for key in sorted(before.keys() & after.keys()):
        fields = differences(before[key], after[key])
        if fields:
            changed += 1
            print(f"{key[0]} item {key[1]}: differs in {', '.join(fields)}")
    only = sorted(before.keys() ^ after.keys())
    for config, index in only:
        side = "before" if (config, index) in before else "after"
        print(f"{config} item {index}: only {side}")
    same = len(before.keys() & after.keys()) - changed
    print(f"{same} items the same, {changed} different, {len(only)} in one log only")
    return 1 if changed or only else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
