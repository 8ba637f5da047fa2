"""Each sample's worked arithmetic, checked as it arrives (``check_arithmetic``).

A program computes again every step a worked answer writes out
(:mod:`moa_local.checks.arithmetic`). When the step the stated answer comes
from is wrong, the sample's text is repaired: the result and the answer are
written as computed, and the sample votes with the repaired answer. When
another step is wrong, the steps after it build on the wrong number, so the
sample keeps its text and is marked (``Proposal.slip``): the vote and the
settling of the vote do not count it (:mod:`.choose.vote`, :mod:`.settle`),
unless every sample is marked. Code answers are not read.

The ``proposal.done`` event keeps the text as the model wrote it; the
``arithmetic.repaired`` and ``arithmetic.slip`` decisions say what was found.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..answers import read_answer, stated_answer
from ..checks import arithmetic
from ..result import Proposal
from .state import Run


def checked(run: Run, proposal: Proposal) -> Proposal:
    """``proposal`` repaired, or marked with its wrong step (decided), or as it was when
    its arithmetic holds, cannot be read, or is not checked."""
    if not run.plan.check_arithmetic or run.is_code or not proposal.ok or proposal.cut:
        return proposal
    try:
        slips = arithmetic.find_slips(proposal.content)
        fixed = _repaired(proposal.content) if slips else None
    except Exception as exc:  # a reader of model text must never end the run
        run.tracer.emit("trace.warning", message=f"arithmetic check skipped: {exc!r}")
        return proposal
    if not slips:
        return proposal
    if fixed is not None:
        step = fixed.slip.describe()
        run.decide(
            "arithmetic.repaired",
            layer=proposal.layer,
            agent=proposal.agent,
            step=step,
            reason=f"its last step is {step}: its answer is computed again",
        )
        return replace(proposal, content=fixed.text, repaired=step)
    step = slips[0].describe()
    run.decide(
        "arithmetic.slip",
        layer=proposal.layer,
        agent=proposal.agent,
        step=step,
        reason=f"a step of its arithmetic is wrong ({step}) and its answer cannot be "
        "computed again from it: it does not vote",
    )
    return replace(proposal, slip=step)


def checked_all(run: Run, proposals: list[Proposal]) -> list[Proposal]:
    """:func:`checked` on each of ``proposals``, in order."""
    return [checked(run, proposal) for proposal in proposals]


def _repaired(text: str) -> arithmetic.Repair | None:
    """The repair of ``text``'s last step, when the answer it states comes from that
    step and, repaired, it states the computed value."""
    answer = _stated_number(text)
    line = _answer_line(text)
    if answer is None or line is None:
        return None
    fixed = arithmetic.repair(text, answer, line)
    if fixed is None:
        return None
    now = _stated_number(fixed.text)
    if now is None or not math.isclose(now, fixed.slip.computed, rel_tol=1e-4, abs_tol=0.01):
        return None  # the answer read after the repair is not the computed one
    return fixed


def _stated_number(text: str) -> float | None:
    """The number the reply states as its answer, if it states one."""
    reading = read_answer(text)
    if not reading.stated:
        return None
    try:
        return float(reading.value)
    except ValueError:
        return None


def _answer_line(text: str) -> int | None:
    """The index of the last line of ``text`` that states an answer."""
    lines = text.splitlines()
    return next((i for i in reversed(range(len(lines))) if stated_answer(lines[i])), None)
