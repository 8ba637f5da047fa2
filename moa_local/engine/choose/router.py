"""Early choices (Selective MoA): skip the mixture, or stop it when its answers agree.

Both are traced as ``router.decision`` events with their reason (the
signals themselves are in :mod:`moa_local.engine.signals`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...result import Proposal
from .. import signals
from ..state import Answer, Run
from .alone import answer_alone
from .base import strongest


async def route(run: Run) -> Answer | None:
    """The answer of the model alone, when the plan or the router skips the mixture."""
    plan = run.plan
    if plan.single_model:
        return await answer_alone(run, "single model (no mixture)")
    if plan.router == "on":
        simple = signals.simple_question(run.prompt, code=run.is_code)
        run.decide(
            "router.decision",
            action="single" if simple.skip else "mixture",
            reason=simple.reason,
        )
        if simple.skip:
            return await answer_alone(run, simple.reason)
    return None


def stop_when_agreed(run: Run, layer: int, succeeded: Sequence[Proposal]) -> Answer | None:
    """The strongest model's answer, when a router is on and the layer's answers agree."""
    if run.plan.router == "off":
        return None
    agreed = signals.agreement([p.content for p in succeeded], code=run.is_code)
    run.decide(
        "router.decision",
        action="stop" if agreed.skip else "continue",
        layer=layer,
        reason=agreed.reason,
    )
    if not agreed.skip:
        return None
    return Answer.of(strongest(succeeded, run.plan), succeeded)
