"""Alone: the aggregator model answers the question by itself, with no mixture."""

from __future__ import annotations

from ...errors import RunFailed
from ..state import Answer, Run
from .base import aggregator_task


async def answer_alone(run: Run, reason: str) -> Answer:
    """The aggregator model's own answer, as a layer-1 proposer would give it, streamed.

    Used for the single-model baseline (at the run's temperature) and when the
    router finds a question too simple for a panel (at the aggregator's).
    """
    plan = run.plan
    temperature = plan.sampling.temperature if plan.single_model else plan.final_temperature
    task = aggregator_task(run, "single", layer=1, temperature=temperature)
    answer = await run.generator.answer(task, run.tracer, run.on_text)
    run.tracer.emit("aggregate.done", reason=reason, **answer.to_dict())
    if not answer.ok:
        raise RunFailed(f"{plan.aggregator.name} failed: {answer.error}")
    return Answer(answer.content, aggregate=answer, emitted=True)
