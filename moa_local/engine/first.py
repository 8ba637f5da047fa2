"""The first answer first: free text costs one answer unless a check says otherwise.

A mixture is worth its price only where more samples change the answer. For a
question that is not code, with the router on and one layer ending in
``auto``, the strongest model's greedy agent answers alone first, streamed to
the caller as it is made, and:

- the question states its form ("in three sentences", "no commas") and the
  answer meets it: it is the answer;
- it states a short answer (an option, a number, a word): the layer's other
  agents answer too, and the vote decides (self-consistency); with
  ``max_samples`` they are drawn until the vote is settled (:mod:`.settle`);
- the form fails: the other agents answer, and the form check chooses among
  all of them (:class:`~.choose.checked.Checked`: one revision when none passes);
- nothing can be checked: with ``unchecked_text = "greedy"`` it is the answer
  (on IFBench dev the consensus of three samples equalled one answer at twice
  its time); with ``"consensus"`` the layer is drawn and the consensus chooses.

When a later candidate replaces the streamed one, the caller reads a note
before it (:func:`moa_local.engine.run.finish`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..agents import Agent
from ..answers import final_answer
from ..result import Proposal
from .arithmetic import checked
from .choose.auto import MAX_CHECKABLE_CHARS
from .choose.checked import form_checker
from .evidence import wants_form_check
from .settle import LayerRunner, run_until_settled
from .state import Answer, Run

SHORT_ANSWER = "it states a short answer"


def wants_first_answer(run: Run) -> bool:
    """Whether this run's layer starts with the greedy answer alone: not code, a router,
    one layer, and ``auto`` to end it (presets that study the mixture turn the router off)."""
    plan = run.plan
    return (
        not run.is_code
        and run.verification is None
        and plan.router != "off"
        and plan.layers == 1
        and plan.aggregate == "auto"
        and plan.final_agent is None
    )


async def run_first_answer(
    run: Run, layer: int, agents: Sequence[Agent], run_layer: LayerRunner
) -> tuple[list[Proposal], Answer | None]:
    """The layer, greedy answer first (see the module docstring); the answer when the
    first one settles the question."""
    ordered = run.plan.greedy_order(agents)
    proposals: list[Proposal] = []
    run.history.append(proposals)
    first = await _streamed_answer(run, layer, ordered[0])
    proposals.append(first)
    reason = await _why_more(run, first) if first.ok else "the first answer failed"
    if reason is None:
        # A repaired first answer is not the text that streamed: it is shown again.
        shown = run.streamed is not None and first is not run.corrected
        return proposals, _shown(first) if shown else Answer.of(first, proposals)
    run.decide("first.more", layer=layer, agent=first.agent, reason=reason)
    if reason.startswith(SHORT_ANSWER) and run.plan.max_samples > 0:
        # A vote: the samples are drawn until it is settled, the first one counted.
        await run_until_settled(run, layer, agents, run_layer, drawn_so_far=proposals)
        return proposals, None
    proposals += await run_layer(run, layer, ordered[1:], run.references, first_index=1)
    return proposals, None


def _shown(first: Proposal) -> Answer:
    """The first answer, which the caller has already read."""
    return Answer(first.content, chosen=first, among=(first,), emitted=True)


async def _streamed_answer(run: Run, layer: int, agent: Agent) -> Proposal:
    """The agent's answer, as a proposer of ``layer`` would give it, streamed to the
    caller when the caller reads the choice."""
    plan = run.plan
    spec = plan.spec_for(agent)
    task = replace(
        run.task(spec, agent.name, layer=layer, temperature=plan.temperature_of(agent)),
        system_base=agent.system_prompt,
        references=tuple(run.references),
    )
    stream = run.on_text if run.streams_choice else None
    proposal = await run.generator.answer(task, run.tracer, stream)
    run.tracer.emit("proposal.done", **proposal.to_dict())
    if stream is not None and proposal.ok:
        run.streamed = proposal
    repaired = checked(run, proposal)
    if run.streamed is proposal and repaired.repaired:
        run.corrected = repaired
    return repaired


async def _why_more(run: Run, first: Proposal) -> str | None:
    """Why the first answer does not settle the question (None: it does)."""
    stated = final_answer(first.content, question=run.prompt)
    if stated and len(stated) <= MAX_CHECKABLE_CHARS and not first.cut:
        return f"{SHORT_ANSWER} ({stated}): the samples vote"
    source, why_not = wants_form_check(run.plan, run.prompt)
    if why_not:
        run.tracer.emit("form.off", reason=why_not)
    checker = await form_checker(run, source) if source else None
    if checker is not None:
        [verdict] = await checker.verdicts([first.content])
        run.record_checks([first], [verdict])
        if verdict.passed:
            run.decide(
                "first.stop", agent=first.agent, reason="it meets the form the question asks for"
            )
            return None
        failures = "; ".join(verdict.failures) or verdict.error
        return f"it misses the form asked for: {failures}"
    if run.plan.unchecked_text == "greedy":
        run.decide(
            "first.stop",
            agent=first.agent,
            reason="nothing to check: the first answer (unchecked_text = greedy)",
        )
        return None
    return "nothing to check: the samples' consensus (unchecked_text = consensus)"
