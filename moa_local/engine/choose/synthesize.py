"""Synthesize: the aggregator writes the answer from the candidates (the original MoA)."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import RunFailed
from ...result import Proposal
from ..state import Answer, Run
from .program import complete_program
from .window import synthesize_in_windows


async def aggregate(run: Run, *, stream: bool) -> Proposal:
    """The aggregator's synthesis of ``run.references``, traced; raises when it fails."""
    plan, tracer = run.plan, run.tracer
    tracer.emit("aggregate.start", model=plan.aggregator.name, references=len(run.references))
    proposal = await synthesize_in_windows(run, run.references, run.on_text if stream else None)
    tracer.emit("aggregate.done", **proposal.to_dict())
    if not proposal.ok:
        raise RunFailed(f"the aggregator {plan.aggregator.name} failed: {proposal.error}")
    return proposal


class Synthesize:
    """The aggregator rewrites the candidates into one answer, streamed as it comes.

    For a program, the whole-program check follows: an aggregate that does
    not parse gives way to a candidate that does.
    """

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The aggregator's synthesis (or a whole candidate program instead of a broken one)."""
        stream = run.streams_choice
        proposal = await aggregate(run, stream=stream)
        kept = (
            complete_program(run, proposal, run.on_text if stream else None)
            if run.is_code
            else proposal
        )
        return Answer(
            kept.content,
            chosen=None if kept is proposal else kept,
            among=tuple(candidates),
            aggregate=proposal,
            emitted=stream,
        )
