"""Auto: programs by a vote among the candidates, text answers by the aggregator's pick.

Neither rewrites what a candidate wrote, so the answer is never worse for a
rewrite: on HumanEval a 1.5B aggregator's synthesis turned working programs
into broken ones (kept-aside half: 42.9 against 57.1 for the greedy sample,
where a vote among the same candidates scored 57.1); on IFBench a pick kept
the single model's level where a rewrite fell below it (docs/quality.md).
Synthesis stays available as ``aggregate = "synthesize"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...result import Proposal
from ..state import Answer, Run
from .select import Select
from .vote import Vote


class Auto:
    """Choose by the kind of question: programs are voted on, text is selected."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The answer of :class:`Vote` for code, of :class:`Select` otherwise."""
        chooser = Vote() if run.is_code else Select()
        return await chooser.choose(run, candidates)
