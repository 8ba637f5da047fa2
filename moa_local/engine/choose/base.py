"""The interface of a way to end a mixture, and helpers every way shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from ...result import Proposal
from ..generation import GenerationTask
from ..plan import Plan
from ..state import Answer, Run


class Chooser(Protocol):
    """One way of ending a mixture: from the last layer's candidates to the answer.

    ``candidates`` are the last layer's successful proposals; ``run.references``
    holds the texts the aggregator reads for them (with verification, headed
    by test results). A chooser that streams sends the answer to
    ``run.on_text`` only when ``run.streams_choice``, and says so in
    :attr:`Answer.emitted`.
    """

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The answer this way of choosing gives."""
        ...


def strongest(proposals: Sequence[Proposal], plan: Plan) -> Proposal:
    """The proposal of the strongest model (the first of equals)."""
    return max(proposals, key=lambda p: plan.strength(p.model))


def greedy_first(candidates: Sequence[Proposal], plan: Plan) -> list[Proposal]:
    """``candidates`` greediest first: strongest model, then lowest temperature.

    The first is what the strongest model alone would answer (its greedy
    sample, in a Self-MoA spread of temperatures).
    """
    return sorted(candidates, key=lambda p: (-plan.strength(p.model)[0], p.temperature))


def aggregator_task(run: Run, who: str, *, layer: int, temperature: float) -> GenerationTask:
    """A generation of the aggregator model, alone or merging references (as ``who``).

    The one way both the model alone and every synthesis step ask it: what
    it reads is merged into one answer, never refined as a proposer's.
    """
    task = run.task(run.plan.aggregator, who, layer=layer, temperature=temperature)
    return replace(task, refine=False)
