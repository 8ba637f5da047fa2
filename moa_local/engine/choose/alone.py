"""Alone: the aggregator model answers the question by itself, with no mixture."""

from __future__ import annotations

from ...errors import RunFailed
from ..state import Answer, Run


async def answer_alone(run: Run, reason: str) -> Answer:
    """The aggregator model's own answer, as a layer-1 proposer would give it, streamed.

    Used for the single-model baseline (at the run's temperature) and when the
    router finds a question too simple for a panel (at the aggregator's).
    """
    plan = run.plan
    temperature = plan.sampling.temperature if plan.single_model else plan.final_temperature
    answer = await run.generator.answer(
        plan,
        plan.aggregator,
        "single",
        layer=1,
        system_base=None,
        refine=False,
        references=[],
        prompt=run.prompt,
        temperature=temperature,
        tracer=run.tracer,
        on_text=run.on_text,
        is_code=run.is_code,
    )
    run.tracer.emit("aggregate.done", reason=reason, **answer.to_dict())
    if not answer.ok:
        raise RunFailed(f"{plan.aggregator.name} failed: {answer.error}")
    return Answer(answer.content, answer, emitted=True)
