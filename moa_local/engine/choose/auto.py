"""Auto: the way to choose follows the question; none of them rewrites a candidate.

- A program: a :class:`~.vote.Vote` among the candidates' whole programs (with
  verification on, the run ends ``verified`` before it gets here).
- A checkable answer (most candidates state a short final answer: an option,
  a number, a word): a :class:`~.vote.Vote`, self-consistency.
- Free text: the candidate that agrees most with the others,
  :class:`~.consensus.Consensus`; with ``check_form``, when the question
  states its form, :class:`~.checked.Checked` (the candidates that meet it,
  and one revision when none does).

Nothing is rewritten, so the answer is never worse for a rewrite: on
HumanEval a 1.5B aggregator's synthesis turned working programs into broken
ones (kept-aside half: 42.9 against 57.1 for the greedy sample, where a vote
among the same candidates scored 57.1). No model judges free text either: on
IFBench dev the 1.5B aggregator's pick (``select``) named the last of three
candidates 50 times of 60 and scored 11.7, the consensus of the same
candidates 15.0, the greedy one 13.3 (docs/quality.md). Synthesis and the
pick stay available as ``aggregate = "synthesize"`` and ``"select"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...answers import final_answer
from ...result import Proposal
from ..evidence import wants_form_check
from ..state import Answer, Run
from .base import Chooser
from .checked import Checked
from .consensus import Consensus
from .vote import Vote

# A stated answer longer than this is prose, not something a vote can count.
MAX_CHECKABLE_CHARS = 60


class Auto:
    """Choose by the kind of question: programs and checkable answers are voted on,
    free text goes to the consensus."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The answer of :class:`Vote` for code and checkable answers, of
        :class:`Consensus` otherwise; the kind is traced."""
        kind = "code" if run.is_code else _kind(run.prompt, candidates)
        chooser: Chooser = Vote()
        name = "vote"
        if kind == "text":
            source, why_not = wants_form_check(run.plan, run.prompt)
            if why_not:
                run.tracer.emit("form.off", reason=why_not)
            chooser, name = (Checked(source), "checked") if source else (Consensus(), "consensus")
        run.decide("aggregate.auto", kind=kind, chooser=name)
        return await chooser.choose(run, candidates)


def _kind(question: str, candidates: Sequence[Proposal]) -> str:
    """``checkable`` when at least half the candidates state a short final answer, else ``text``."""
    stated = [final_answer(p.content, question=question) for p in candidates]
    short = sum(1 for answer in stated if answer and len(answer) <= MAX_CHECKABLE_CHARS)
    return "checkable" if candidates and 2 * short >= len(candidates) else "text"
