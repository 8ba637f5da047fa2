"""Each sample's worked arithmetic, checked as it arrives (``check_arithmetic``).

A program computes again every step a worked answer writes out
(:mod:`moa_local.checks.arithmetic`). When the step the stated answer comes
from is wrong, the sample's text is repaired: the result and the answer are
written as computed, and the sample votes with the repaired answer. When an
earlier step is wrong, the steps after it build on the wrong number, so the
sample keeps its text and is marked (``Proposal.slip``): the vote and the
settling of the vote do not count it (:mod:`.choose.vote`, :mod:`.settle`),
unless every sample is marked. Code answers are not read.
"""

from __future__ import annotations

from dataclasses import replace

from ..answers import read_answer
from ..checks import arithmetic
from ..result import Proposal
from .state import Run


def checked(run: Run, proposal: Proposal) -> Proposal:
    """``proposal`` repaired, or marked with its wrong step (traced and decided), or as
    it was when its arithmetic holds, cannot be read, or is not checked."""
    if not run.plan.check_arithmetic or run.is_code or not proposal.ok or proposal.cut:
        return proposal
    slips = arithmetic.find_slips(proposal.content)
    if not slips:
        return proposal
    fixed = arithmetic.repair(proposal.content, _stated_number(proposal.content))
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
        reason=f"a step before its answer is wrong ({step}): it does not vote",
    )
    return replace(proposal, slip=step)


def checked_all(run: Run, proposals: list[Proposal]) -> list[Proposal]:
    """:func:`checked` on each of ``proposals``, in order."""
    return [checked(run, proposal) for proposal in proposals]


def _stated_number(text: str) -> float | None:
    """The number the reply states as its answer, if it states one."""
    reading = read_answer(text)
    if not reading.stated:
        return None
    try:
        return float(reading.value)
    except ValueError:
        return None
