"""Select: the aggregator names the best candidate (Universal Self-Consistency).

The answer is a candidate as it was written, never a rewrite. The
aggregator reads every candidate and replies with one number; a reply that
names none keeps the strongest model's candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ... import prompts
from ...backends.base import Message
from ...result import Proposal
from ..generation import proposal_from
from ..state import Answer, Run
from .base import strongest
from .synthesize import Synthesize


class Select:
    """Pick one candidate, as it was written.

    A single candidate is returned as it is (there is nothing to pick from,
    and a rewrite of it can only lose what it got right). With a final agent,
    which rewrites the answer anyway, the candidates are synthesized for it.
    """

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The candidate the aggregator names as the best (the strongest model's if none)."""
        if not run.streams_choice:
            return await Synthesize().choose(run, candidates)
        if len(candidates) == 1:
            run.decide("aggregate.select", chosen=candidates[0].agent, reason="the only candidate")
            return Answer.of(candidates[0], candidates)
        return Answer.of(await pick(run, candidates), candidates)


async def pick(run: Run, candidates: Sequence[Proposal]) -> Proposal:
    """Ask the aggregator which candidate is best; traced as ``aggregate.select``."""
    plan, generator = run.plan, run.generator
    messages: tuple[Message, ...] = (
        {"role": "system", "content": prompts.SELECT_SYSTEM},
        {
            "role": "user",
            "content": prompts.select_user(run.prompt, [c.content for c in candidates]),
        },
    )
    request = replace(
        generator.base_request(plan, plan.aggregator, messages, 0.0, 0, "select"), max_tokens=8
    )
    run.tracer.emit("aggregate.start", model=plan.aggregator.name, references=len(candidates))
    outcome = await generator.complete(request, None, run.tracer)
    proposal = proposal_from(plan.layers + 1, "selector", request, outcome, False)
    run.extra.append(proposal)
    run.tracer.emit("aggregate.done", **proposal.to_dict())
    choice = prompts.parse_choice(proposal.content, len(candidates)) if proposal.ok else None
    if choice is None:
        chosen = strongest(candidates, plan)
        why = proposal.error or f"the reply {proposal.content.strip()[:40]!r} names no candidate"
        reason = f"{why}; kept {chosen.agent}, the strongest model's answer"
    else:
        chosen = candidates[choice]
        reason = f"the aggregator chose candidate {choice + 1} of {len(candidates)}"
    run.decide("aggregate.select", chosen=chosen.agent, reason=reason)
    return chosen
