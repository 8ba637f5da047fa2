"""What every evaluation suite offers: its problems and a scorer for one answer."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError

SPLITS = ("dev", "confirm", "all")


@dataclass(frozen=True)
class Problem:
    """One item of a suite: what the model is asked, and what scoring needs."""

    suite: str
    index: int  # position in the suite's data file (the dev split is a range of these)
    id: str  # the suite's own id, e.g. "HumanEval/12" or an IFBench key
    prompt: str  # the text sent to the model or mixture
    data: dict[str, Any] = field(default_factory=dict)
    # The part of a suite the item belongs to (BIG-bench: its task), or "" for a
    # suite of one part. ``--limit`` counts per group; a summary reports each
    # group's score, and the suite score is their mean.
    group: str = ""


@dataclass(frozen=True)
class Score:
    """How one answer did.

    ``outcome`` is ``"pass"`` or the kind of failure (HumanEval: ``wrong``,
    ``error``, ``timeout``, ``no_code``; IFBench: ``partial``, ``none``), or
    ``unsupported`` for an item that cannot be scored here (left out of the
    summary).
    ``value`` is the item's share of the suite score (0 or 1 for a strict
    suite). ``details`` holds suite-specific extras (IFBench: instructions
    followed and total).
    """

    outcome: str
    value: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the answer counts as fully correct."""
        return self.outcome == "pass"


class Suite(Protocol):
    """A verifiable benchmark: a fixed list of problems and a deterministic scorer."""

    name: str
    dev_range: range  # indices of the dev split (within each group, for a grouped suite)
    confirm_range: range  # the confirmation split: run once, at the end of a change

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split`` ("dev", "confirm" or "all"), in data-file order."""
        ...

    def score(self, problem: Problem, answer: str) -> Score:
        """Score ``answer`` to ``problem``; never raises for a bad answer."""
        ...


def rescores_logged(suite: Suite) -> bool:
    """Whether answers logged for ``suite`` are scored again whenever a log is read.

    A suite whose scorer only reads the answer and runs nothing says so with
    ``quick_scorer = True`` (GSM8K, ARC, reasoning-gym, BIG-bench). Its logged
    scores then follow the current reader: an answer phrasing read right only
    since (``\\boxed{230}`` after "Final Answer:") counts in every record at
    once, and configs logged on different days compare fairly. HumanEval runs
    programs and IFBench its verifier, so their logged scores stand.
    """
    return bool(getattr(suite, "quick_scorer", False))


def split_indices(suite: Suite, split: str) -> range:
    """The indices (within each group) of ``split`` of ``suite``; the rest of "all" beyond
    dev and confirm is the final test, not run during development."""
    ranges = {"dev": suite.dev_range, "confirm": suite.confirm_range, "all": range(sys.maxsize)}
    if split not in ranges:
        raise ConfigError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    return ranges[split]
