"""One config's logged records on a suite, summarized: score, cost, failures, per problem."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """The results of one config on one suite."""

    config: str
    suite: str
    split: str
    n: int
    score: float  # percent of problems fully correct (grouped suite: the mean over groups)
    seconds_per_item: float
    tokens_per_item: float  # generated (completion) tokens
    prompt_tokens_per_item: float
    failures: dict[str, int]
    shortcut_share: float  # share of problems where the router skipped layers or the mixture
    instruction_score: float | None = None  # IFBench: percent of instructions followed
    # A grouped suite (BIG-bench: one group per task): each group's score and n.
    groups: dict[str, dict[str, float]] | None = None
    log: str = ""
    # Each problem's score (0 to 1) by its id, for comparing configs problem by problem.
    item_scores: dict[str, float] = field(default_factory=dict)
    # How many of the records each machine made (:func:`machine_label`).
    machines: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for ``--json``."""
        return dict(self.__dict__)


def summarize(
    label: str, suite: str, split: str, records: list[dict[str, Any]], log: str = ""
) -> Summary:
    """Aggregate one config's records into a :class:`Summary` (unscorable items left out).

    Records with a ``group`` (BIG-bench's tasks) are also scored per group, and
    the score is then the mean of the group scores, so a large group does not
    outweigh a small one.
    """
    records = [r for r in records if r["outcome"] != "unsupported"]
    n = len(records)

    def mean(key: str) -> float:
        return sum(float(r.get(key, 0)) for r in records) / n if n else 0.0

    failures = Counter(r["outcome"] for r in records if r["outcome"] != "pass")
    instruction_score = None
    if records and all("instructions" in r.get("details", {}) for r in records):
        followed = sum(r["details"]["followed"] for r in records)
        total = sum(r["details"]["instructions"] for r in records)
        instruction_score = round(100 * followed / total, 1) if total else 0.0
    by_group: dict[str, list[float]] = {}
    for r in records:
        if r.get("group"):
            by_group.setdefault(r["group"], []).append(float(r.get("score", 0)))
    groups = None
    score = mean("score")
    if by_group:
        shares = {name: sum(values) / len(values) for name, values in by_group.items()}
        groups = {
            name: {"score": round(100 * shares[name], 1), "n": len(by_group[name])}
            for name in by_group
        }
        score = sum(shares.values()) / len(shares)
    return Summary(
        config=label,
        suite=suite,
        split=split,
        n=n,
        score=round(100 * score, 1),
        seconds_per_item=round(mean("seconds"), 2),
        tokens_per_item=round(mean("completion_tokens"), 1),
        prompt_tokens_per_item=round(mean("prompt_tokens"), 1),
        failures=dict(sorted(failures.items())),
        shortcut_share=round(sum(bool(r.get("shortcut")) for r in records) / n, 3) if n else 0.0,
        instruction_score=instruction_score,
        groups=groups,
        log=log,
        item_scores={r["id"]: float(r.get("score", 0)) for r in records},
        machines=dict(Counter(machine_label(r) for r in records)),
    )


def machine_label(record: dict[str, Any]) -> str:
    """The machine a record was made on, in words ("not recorded" for older records)."""
    machine = record.get("machine")
    if not isinstance(machine, dict):
        return "not recorded"
    build = machine.get("llama_cpp")
    return f"{machine.get('cpu') or 'unknown CPU'}, " + (
        f"llama-cpp-python {build}" if build else "no llama-cpp-python"
    )
