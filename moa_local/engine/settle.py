"""Votes that sample until the answer is settled (adaptive consistency).

Self-consistency draws a fixed number of samples and votes. Most questions
do not need them all: when the first samples agree, more rarely change the
vote. Here a layer of a question with a short checkable answer (an option, a
number, a word) is drawn in steps: the greedy sample and one more together
(in one batch, which on a GPU, and with llama.cpp's batched decoding on a
CPU, costs little more than one), then one sample at a time, and the layer
stops as soon as the answer is settled:

- every sample so far gives the same answer (two of two is enough);
- a sample with a wrong step of arithmetic before its answer does not count
  (:mod:`.arithmetic`);
- the leading answer can no longer lose: its lead is larger than the samples
  still allowed (``max_samples`` in all);
- the adaptive-consistency rule of Aggarwal et al. (2023): under a uniform
  Beta prior, the probability that the leading answer holds the majority
  against the runner-up is at least :data:`CONFIDENCE`.

When the first two samples do not state short answers, the question is free
text and the layer's remaining agents are drawn as usual. Extra samples
beyond the plan's agents come from its strongest model's hottest agent, each
with its own seed. The chooser that follows (the vote) counts them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from math import comb
from typing import Protocol

from ..agents import Agent
from ..answers import final_answer
from ..result import Proposal
from .state import Run

CONFIDENCE = 0.95
MAX_SHORT_ANSWER = 60  # characters: longer "answers" are prose, not a vote


def wants_settling(run: Run) -> bool:
    """Whether this run's layer is drawn until settled: ``max_samples`` is on, the
    question is not code, and the run ends in a vote (``auto`` or ``vote``) after
    one layer."""
    plan = run.plan
    return (
        plan.max_samples > 0
        and not run.is_code
        and run.verification is None
        and plan.layers == 1
        and plan.aggregate in ("auto", "vote")
    )


class LayerRunner(Protocol):
    """How a layer's agents are run (:func:`moa_local.engine.layers.run_layer`)."""

    async def __call__(
        self,
        run: Run,
        layer: int,
        agents: Sequence[Agent],
        references: Sequence[str],
        *,
        first_index: int = 0,
    ) -> list[Proposal]: ...


async def run_until_settled(
    run: Run,
    layer: int,
    agents: Sequence[Agent],
    run_layer: LayerRunner,
    drawn_so_far: list[Proposal] | None = None,
) -> list[Proposal]:
    """The layer's samples, drawn until the vote is settled (see the module docstring).

    ``drawn_so_far`` is the layer's list when its first samples are already drawn
    (the first answer, :mod:`.first`), in the order of :meth:`Plan.greedy_order`.
    """
    plan = run.plan
    queue = list(_with_extra_samples(run, agents))
    if drawn_so_far is None:
        proposals: list[Proposal] = []
        run.history.append(proposals)
    else:
        proposals = drawn_so_far
    start = len(proposals)
    first = queue[start:2]
    if first:
        proposals += await run_layer(run, layer, first, run.references, first_index=start)
    drawn = initial = start + len(first)
    while True:
        answers = _short_answers(run, proposals)
        stated = [a for a in answers if a is not None]
        if drawn == initial and 2 * len(stated) < max(1, len(proposals)):
            # Free text: no vote to settle; the plan's agents answer as they would.
            rest = queue[drawn : len(agents)]
            if rest:
                proposals += await run_layer(run, layer, rest, run.references, first_index=drawn)
            run.decide("settle.stop", layer=layer, samples=len(proposals), reason="free text")
            return proposals
        # A sample with a wrong step does not count towards settling (more are drawn);
        # the vote that follows counts it only when nothing else states an answer.
        votes = [a for p, a in zip(_answered(proposals), answers, strict=True) if a and not p.slip]
        reason = settled(Counter(votes), plan.max_samples - drawn)
        if reason is not None or drawn >= min(plan.max_samples, len(queue)):
            run.decide(
                "settle.stop",
                layer=layer,
                samples=len(proposals),
                reason=reason or f"{plan.max_samples} samples drawn",
            )
            return proposals
        proposals += await run_layer(run, layer, [queue[drawn]], run.references, first_index=drawn)
        drawn += 1


def settled(counts: Counter[str], remaining: int) -> str | None:
    """Why the vote over ``counts`` is settled with ``remaining`` samples still allowed,
    or None when another sample could change it."""
    if not counts:
        return None
    ranked = counts.most_common(2)
    leader = ranked[0][1]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if runner_up == 0 and leader >= 2:
        return f"all {leader} samples give the same answer"
    if leader > runner_up + remaining:
        return f"the leading answer ({leader} against {runner_up}) can no longer lose"
    if majority_probability(leader, runner_up) >= CONFIDENCE:
        return (
            f"the leading answer ({leader} against {runner_up}) holds the majority with "
            f"probability {majority_probability(leader, runner_up):.2f}"
        )
    return None


def majority_probability(leader: int, runner_up: int) -> float:
    """P(p > 1/2) for p ~ Beta(leader + 1, runner_up + 1): how sure the leader is the
    majority answer between the two (Aggarwal et al.'s Beta stopping criterion)."""
    a, b = leader + 1, runner_up + 1
    n = a + b - 1
    # The regularized incomplete beta at 1/2 for integer a, b, as a binomial tail.
    at_most_half: float = sum(comb(n, k) for k in range(a, n + 1)) / 2**n
    return 1 - at_most_half


def _answered(proposals: Sequence[Proposal]) -> list[Proposal]:
    """The successful ones of ``proposals``, those :func:`_short_answers` reads."""
    return [proposal for proposal in proposals if proposal.ok]


def _short_answers(run: Run, proposals: Sequence[Proposal]) -> list[str | None]:
    """Each successful proposal's short final answer (None: none, or prose)."""
    found: list[str | None] = []
    for proposal in _answered(proposals):
        if proposal.cut:  # where the cut fell is not an answer
            found.append(None)
            continue
        answer = final_answer(proposal.content, question=run.prompt)
        found.append(answer if answer and len(answer) <= MAX_SHORT_ANSWER else None)
    return found


def _with_extra_samples(run: Run, agents: Sequence[Agent]) -> Iterator[Agent]:
    """The layer's agents greedy first, then extra samples of the strongest model's
    hottest agent, up to ``max_samples`` in all."""
    plan = run.plan
    ordered = plan.greedy_order(agents)
    yield from ordered
    if not ordered:
        return
    hottest = max(ordered, key=plan.temperature_of)
    for extra in range(1, plan.max_samples - len(ordered) + 1):
        yield replace(hottest, name=f"{hottest.name}+{extra}")
