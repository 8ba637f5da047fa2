"""Auto: the way to choose follows the question; none of them rewrites a candidate.

- A program: a :class:`~.vote.Vote` among the candidates' whole programs (with
  verification on, the run ends ``verified`` before it gets here).
- A checkable answer (most candidates state a short final answer: an option,
  a number, a word): a :class:`~.vote.Vote`, self-consistency.
- Free text: the aggregator's pick, :class:`~.select.Select`.

Nothing is rewritten, so the answer is never worse for a rewrite: on
HumanEval a 1.5B aggregator's synthesis turned working programs into broken
ones (kept-aside half: 42.9 against 57.1 for the greedy sample, where a vote
among the same candidates scored 57.1); on IFBench a pick kept the single
model's level where a rewrite fell below it (docs/quality.md). Synthesis
stays available as ``aggregate = "synthesize"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...answers import final_answer
from ...result import Proposal
from ..state import Answer, Run
from .select import Select
from .vote import Vote

# A stated answer longer than this is prose, not something a vote can count.
MAX_CHECKABLE_CHARS = 60


class Auto:
    """Choose by the kind of question: programs and checkable answers are voted on,
    free text is selected."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The answer of :class:`Vote` for code and checkable answers, of :class:`Select`
        otherwise; the kind is traced."""
        kind = "code" if run.is_code else _kind(run.prompt, candidates)
        run.decide("aggregate.auto", kind=kind, chooser="select" if kind == "text" else "vote")
        chooser = Select() if kind == "text" else Vote()
        return await chooser.choose(run, candidates)


def _kind(question: str, candidates: Sequence[Proposal]) -> str:
    """``checkable`` when at least half the candidates state a short final answer, else ``text``."""
    stated = [final_answer(p.content, question=question) for p in candidates]
    short = sum(1 for answer in stated if answer and len(answer) <= MAX_CHECKABLE_CHARS)
    return "checkable" if candidates and 2 * short >= len(candidates) else "text"
