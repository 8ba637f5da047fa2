"""Synthesis by the aggregator, in windows when the references do not all fit (Self-MoA-Seq)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...result import Proposal
from ..context import aggregation_window
from ..plan import TextCallback
from ..state import Run
from .base import aggregator_task


async def synthesize_in_windows(
    run: Run, references: Sequence[str], on_text: TextCallback | None
) -> Proposal:
    """The aggregator's synthesis of ``references``; in windows when they do not all fit.

    With a window of w, the first step aggregates w references, and every
    later step the previous synthesis plus the next w - 1, so the aggregator
    never sees more than w texts at once; only the last step streams to
    ``on_text``. Earlier steps are kept in ``run.extra``.
    """
    plan = run.plan
    window = plan.aggregate_window or await aggregation_window(
        run.generator.backends, plan, run.prompt, references
    )
    merging = replace(
        aggregator_task(
            run, "aggregator", layer=plan.layers + 1, temperature=plan.final_temperature
        ),
        system_base=plan.aggregator_prompt or None,
    )
    pending = list(references)
    current: str | None = None
    step = 0
    while True:
        take = window - (current is not None)
        chunk = ([current] if current is not None else []) + pending[:take]
        pending = pending[take:]
        last = not pending
        if not last or step:
            run.tracer.emit(
                "aggregate.window", step=step + 1, references=len(chunk), left=len(pending)
            )
        task = replace(merging, references=tuple(chunk))
        proposal = await run.generator.answer(task, run.tracer, on_text if last else None)
        if last or not proposal.ok:
            return proposal
        run.extra.append(proposal)
        current = proposal.content
        step += 1
