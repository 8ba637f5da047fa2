"""Vote: the most common final answer among the candidates wins (self-consistency).

Each candidate's final answer is read (:func:`moa_local.answers.final_answer`:
an ``Answer:`` line, an option, a number, a one-word reply, or a normalized
program, counted only when whole: it parses and defines every name it uses);
the candidates giving the most common one form the winning group,
and its greediest member (strongest model, lowest temperature) is returned
as it was written. When groups tie, the greediest candidate among them wins,
which is the greedy sample when it is in one of them. When no answer can be
read, the greedy sample is returned. Nothing is rewritten, and no model runs.

A candidate cut at ``max_tokens`` has no vote: the answer read from it is
wherever the cut fell (the number before the formula's end), not the one it
would have given. Nor has one whose worked arithmetic has a wrong step before
its answer (``Proposal.slip``, :mod:`moa_local.engine.arithmetic`), unless every
candidate that states an answer has one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from ...answers import final_answer
from ...checks import program_tests
from ...result import Proposal
from ..state import Answer, Run
from .base import greedy_first

CUT = "(cut at max_tokens: no vote)"  # how the trace shows a cut candidate's answer
SLIPPED = "(a wrong step of arithmetic: no vote)"


class Vote:
    """Return a candidate that gives the most common answer (greedy on a tie)."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The greediest candidate of the largest group of equal answers; traced."""
        ordered = greedy_first(candidates, run.plan)
        answers = read_answers(run, ordered)
        counts = Counter(answer for answer in answers if answer is not None)
        if not counts:
            chosen = ordered[0]
            reason = f"no candidate's answer could be read; kept {chosen.agent}, the greedy one"
        else:
            top = max(counts.values())
            winners = {answer for answer, count in counts.items() if count == top}
            chosen = next(p for p, a in zip(ordered, answers, strict=True) if a in winners)
            tied = f", tied with {len(winners) - 1} other answer(s)" if len(winners) > 1 else ""
            reason = f"{top} of {len(ordered)} candidates give {chosen.agent}'s answer{tied}"
        run.decide(
            "aggregate.vote",
            chosen=chosen.agent,
            reason=reason,
            answers=by_agent(ordered, answers, run.is_code),
        )
        return Answer.of(chosen, candidates)


def read_answers(run: Run, candidates: Sequence[Proposal]) -> list[str | None]:
    """Each candidate's final answer in canonical form (None where none can be read),
    in the order of ``candidates``."""
    entry = program_tests.entry_point(run.prompt) if run.is_code else None
    answers = [
        None
        if p.cut
        else final_answer(p.content, code=run.is_code, entry_point=entry, question=run.prompt)
        for p in candidates
    ]
    return without_slips([bool(p.slip) for p in candidates], answers)


def without_slips(slipped: Sequence[bool], answers: Sequence[str | None]) -> list[str | None]:
    """``answers`` with those of candidates marked with a wrong step of arithmetic
    (``slipped``) left out (None), unless no other candidate states an answer."""
    if not any(a is not None and not s for s, a in zip(slipped, answers, strict=True)):
        return list(answers)
    return [None if s else a for s, a in zip(slipped, answers, strict=True)]


def by_agent(
    candidates: Sequence[Proposal], answers: Sequence[str | None], is_code: bool
) -> dict[str, str | None]:
    """The answers as the trace shows them, by the agent that gave each."""
    return {
        p.agent: CUT if p.cut else SLIPPED if p.slip and a is None else shown(a, is_code)
        for p, a in zip(candidates, answers, strict=True)
    }


def shown(answer: str | None, is_code: bool) -> str | None:
    """An answer as the trace shows it: a program by a short hash of its normal form."""
    if answer is None:
        return None
    if is_code:
        return "program " + hashlib.sha256(answer.encode()).hexdigest()[:10]
    return answer if len(answer) <= 80 else answer[:77] + "..."
