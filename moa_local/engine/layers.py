"""Filling and running a layer: the agents' requests, their roles, the refinement layouts.

A layer's agents answer together: all of one model's requests go to its
backend at once (``generate_many``) under one scheduler lease, and different
models run concurrently as far as the scheduler allows. From layer 2 on an
agent reads the previous layer's successful answers, either all of them as
references in its system message (the ``references`` layout) or as a new
turn of its own earlier chat (the ``continue`` layout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace

from .. import prompts
from ..agents import Agent, by_roles, parse_roles
from ..backends.base import GenerateRequest
from ..checks import program_tests
from ..errors import GenerationError, MoALocalError
from ..result import Proposal
from . import arithmetic, first, settle
from .generation import Prepared, completion_proposal
from .state import Answer, Run
from .stops import STOP_RULES


async def fill_layer(
    run: Run, layer: int, agents: Sequence[Agent]
) -> tuple[list[Proposal], Answer | None]:
    """Run one layer on ``run.references``; the answer that settles the run, if one does.

    With verification and a router, the agents answer one after another and
    the first candidate that settles the question ends the run (see
    :func:`run_cascade`); a vote with ``max_samples`` draws until settled
    (:mod:`.settle`); free text with a router starts with the greedy answer
    (:mod:`.first`). Otherwise they answer together.
    """
    if run.verification is not None and run.plan.router != "off":
        return await run_cascade(run, layer, agents)
    if first.wants_first_answer(run):
        return await first.run_first_answer(run, layer, agents, run_layer)
    if settle.wants_settling(run):
        return await settle.run_until_settled(run, layer, agents, run_layer), None
    # The continue layout needs plain answers: verification notes on
    # references go in the references layout only.
    continuing = run.plan.layout == "continue" and run.history and run.verification is None
    proposals = await run_layer(
        run, layer, agents, run.references, previous=run.history[-1] if continuing else ()
    )
    run.history.append(proposals)
    return proposals, None


async def run_layer(
    run: Run,
    layer: int,
    agents: Sequence[Agent],
    references: Sequence[str],
    *,
    first_index: int = 0,
    previous: Sequence[Proposal] = (),
) -> list[Proposal]:
    """Run one layer's agents; ``previous`` is the layer before, in the continue layout.

    Without ``previous`` every agent sees ``references``. With it, an agent
    whose previous answer succeeded continues its own chat and sees the
    others' answers; an agent without one sees them all.
    """
    plan, tracer = run.plan, run.tracer
    results: list[Proposal | None] = [None] * len(agents)
    groups: dict[str, list[tuple[int, Prepared]]] = {}
    # A layer's proposals are in the order of its agents (failures included),
    # so position, not name, finds an agent's own answer: names may repeat.
    aligned = len(previous) == len(agents)
    for index, agent in enumerate(agents):
        spec = plan.spec_for(agent)
        temperature = plan.temperature_of(agent)
        own_answer = None
        seen = references
        if aligned and previous[index].ok:
            own_answer = previous[index].content
            seen = [p.content for i, p in enumerate(previous) if p.ok and i != index]
        task = replace(
            run.task(spec, agent.name, layer=layer, temperature=temperature),
            system_base=agent.system_prompt,
            references=tuple(seen),
            own_answer=own_answer,
            seed_offset=first_index + index,
        )
        try:
            prepared = await run.generator.prepare(task, tracer)
        except GenerationError as exc:
            failed = Proposal(
                layer=layer,
                agent=agent.name,
                model=spec.name,
                temperature=temperature,
                error=str(exc),
            )
            tracer.emit("proposal.done", **failed.to_dict())
            results[index] = failed
            continue
        groups.setdefault(spec.name, []).append((index, prepared))

    async def run_group(items: list[tuple[int, Prepared]]) -> None:
        proposals = await run.generator.propose(layer, [p for _, p in items], tracer)
        for (index, _), proposal in zip(items, proposals, strict=True):
            results[index] = proposal

    # Models already in memory go first: under a tight budget this saves
    # unloading one only to load it again later in the same layer.
    scheduler = run.generator.scheduler
    ordered = sorted(
        groups.values(), key=lambda items: not scheduler.is_resident(items[0][1].request.model)
    )
    async with asyncio.TaskGroup() as group:
        for items in ordered:
            group.create_task(run_group(items))
    return arithmetic.checked_all(run, [proposal for proposal in results if proposal is not None])


async def run_cascade(
    run: Run, layer: int, agents: Sequence[Agent]
) -> tuple[list[Proposal], Answer | None]:
    """One layer's agents one after another, each candidate tested as it arrives.

    Selective MoA with verification: the first candidate that settles the
    question ends the run, since the rest of the mixture cannot improve on
    it. It settles when it passes every example the question states, or,
    for a question without examples, every test the model wrote (written
    tests are checked only then: a small model's expected values are often
    wrong). On a CPU, where one model's agents run in turn anyway, this
    costs nothing when no candidate settles.

    When the question states examples and no agent passed them, up to
    ``verify_samples`` more samples are drawn, one at a time, unless the
    plan's stop rule (``verify_stop``, :mod:`.stops`) ends the drawing first (the
    sample-and-filter of AlphaCode and CodeT: the examples are a trusted
    filter, so another sample is the cheapest chance of a passing program).
    They join the layer's candidates. Returns the layer's proposals and the
    settling answer.
    """
    verification = run.verification
    assert verification is not None
    proposals: list[Proposal] = []
    run.history.append(proposals)
    failed: list[program_tests.Verdict] = []  # on the question's examples, in order drawn
    stop_rule = STOP_RULES[run.plan.verify_stop]
    for index, agent in enumerate(_with_more_samples(run, agents)):
        if index >= len(agents) and not verification.collect_examples([]):
            break  # more samples only against the question's own examples
        proposals += await run_layer(run, layer, [agent], run.references, first_index=index)
        candidate = proposals[-1]
        if not candidate.ok:
            continue
        examples_only = verification.collect_examples([candidate.content])
        verdict = (await verification.check(layer, [candidate.content], written=not examples_only))[
            0
        ]
        tests = verification.known_tests
        if program_tests.settles(verdict, tests):
            run.decide(
                "router.decision",
                action="stop",
                layer=layer,
                reason=f"{candidate.agent} {verdict.summary(tests)}",
            )
            return proposals, Answer.of(candidate, [p for p in proposals if p.ok])
        if examples_only:
            failed.append(verdict)
            why = stop_rule(failed)
            if why is not None:
                run.decide("router.decision", action="stop drawing", layer=layer, reason=why)
                break
    return proposals, None


# A fresh sample needs some randomness: greedy copies would all be the same.
MIN_EXTRA_TEMPERATURE = 0.7


def _with_more_samples(run: Run, agents: Sequence[Agent]) -> Iterator[Agent]:
    """The layer's agents, then ``verify_samples`` more samples of its strongest model's
    hottest agent (each with its own seed, at least :data:`MIN_EXTRA_TEMPERATURE`)."""
    yield from agents
    if not agents or run.plan.verify_samples <= 0:
        return
    plan = run.plan
    top = max(plan.strength(plan.spec_for(a).name) for a in agents)
    strongest = [a for a in agents if plan.strength(plan.spec_for(a).name) == top]
    hottest = max(strongest, key=plan.temperature_of)
    temperature = max(plan.temperature_of(hottest), MIN_EXTRA_TEMPERATURE)
    for extra in range(1, plan.verify_samples + 1):
        yield replace(hottest, name=f"{hottest.name}+{extra}", temperature=temperature)


async def make_roles(run: Run) -> tuple[list[Agent], Proposal | None]:
    """The agents the role model describes for this question (generic roles if it fails)."""
    plan, tracer = run.plan, run.tracer
    assert plan.role_model is not None
    spec = plan.role_model
    request = GenerateRequest(
        model=spec,
        messages=(
            {"role": "system", "content": prompts.ROLE_SYSTEM},
            {
                "role": "user",
                "content": prompts.ROLE_USER.format(question=run.prompt, n=plan.role_count),
            },
        ),
        temperature=0.3,
        top_p=plan.sampling.top_p,
        max_tokens=max(256, 120 * plan.role_count),
        seed=plan.sampling.seed,
        timeout=plan.sampling.timeout,
        tag="roles",
    )
    backend = run.generator.backends.for_model(spec)
    proposal: Proposal | None
    try:
        async with run.generator.scheduler.lease(spec, tracer.emit) as lease:
            completion = await backend.generate(replace(request, n_threads=lease.threads))
    except (MoALocalError, Exception) as exc:
        parsed = parse_roles("", plan.role_count)
        detail = f"role model failed: {exc}"
        proposal = Proposal(
            layer=0, agent="roles", model=spec.name, temperature=0.3, error=str(exc)
        )
    else:
        parsed = parse_roles(completion.text, plan.role_count)
        detail = parsed.detail
        proposal = completion_proposal(0, "roles", spec, 0.3, completion)
    tracer.emit(
        "roles.generated",
        model=spec.name,
        outcome=parsed.outcome,
        detail=detail,
        roles=[{"name": n, "system_prompt": p} for n, p in parsed.roles],
    )
    models = list(plan.role_models)
    return by_roles(models, parsed.roles, plan.sampling.temperature), proposal
