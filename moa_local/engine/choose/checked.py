"""Checked: free text whose question states its form is chosen by a check of that form.

The check comes from one of two sources: the constraints a program reads in
the question (``"stated"``, :mod:`moa_local.checks.stated_form`: "in three
sentences", "no commas", "in JSON"), checked in process; or a checker the
strongest model writes, ``check(answer) -> list[str]`` (``"written"``,
:mod:`moa_local.checks.form`), run in the sandbox. Either way every
candidate is checked.

- Candidates that pass: the consensus among them (the only one, if one).
- None passes: the candidate with the fewest failures (the greediest on a
  tie) goes back to the strongest model once, with the failures in words
  ("asked for exactly 3 sentences; the answer has 1"), and the revision is
  checked too; it is the answer when it passes. When the answer misses a
  count of sentences, paragraphs, bullets, items or lines that the program
  read, the revision is asked for as a numbered list of that many parts and
  the program writes it in the asked form (:class:`~moa_local.checks.stated_form.Parts`).
- A checker that cannot run, or that fails every candidate and the
  revision, says more about itself than about the answers: it is set aside
  and the run ends as it would without it (:class:`~.consensus.Consensus`).
  The same when the model writes no checker (it found nothing to check).

Every step is traced (``form.checker``, ``form.verdicts``, ``form.selected``
or ``form.set_aside``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, cast

from ...backends.base import Message
from ...checks import form, stated_form
from ...result import Proposal
from ..generation import proposal_from
from ..state import Answer, Run
from .base import greedy_first
from .consensus import Consensus, consensus_scores, most_agreed

# Enough for a checker of a dozen constraints; the answer's own budget may be smaller.
CHECKER_MAX_TOKENS = 1024


class Checker(Protocol):
    """What an answer leaves unmet of the form its question states."""

    async def verdicts(self, answers: Sequence[str]) -> list[form.FormVerdict]:
        """One verdict per answer, in order."""
        ...

    def parts_to_revise(self, answer: str) -> stated_form.Parts | None:
        """A count of parts ``answer`` misses that a numbered list can meet (None: none)."""
        ...


@dataclass(frozen=True)
class StatedChecker:
    """The constraints a program read in the question, checked in process."""

    constraints: tuple[stated_form.Constraint, ...]

    async def verdicts(self, answers: Sequence[str]) -> list[form.FormVerdict]:
        """Each answer's unmet constraints, in words."""
        found = list(self.constraints)
        return [form.FormVerdict(tuple(stated_form.failures(found, a))) for a in answers]

    def parts_to_revise(self, answer: str) -> stated_form.Parts | None:
        """The first count of parts ``answer`` misses."""
        return stated_form.parts_to_revise(list(self.constraints), answer)


@dataclass(frozen=True)
class WrittenChecker:
    """A checker the strongest model wrote, run in the sandbox."""

    code: str

    async def verdicts(self, answers: Sequence[str]) -> list[form.FormVerdict]:
        """The checker's verdict on each answer (its error when it cannot run)."""
        return await form.run_checker(self.code, answers)

    def parts_to_revise(self, answer: str) -> stated_form.Parts | None:
        """None: a written checker's failures are words, not counts a program knows."""
        return None


class Checked:
    """Keep the candidates that meet the stated form; revise once when none does."""

    def __init__(self, source: str = "stated") -> None:
        self.source = source  # "stated" or "written"

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The consensus of the candidates that pass the check, or a checked revision,
        or (no usable check) the consensus of all."""
        checker = await form_checker(run, self.source)
        if checker is None:
            return await Consensus().choose(run, candidates)
        ordered = greedy_first(candidates, run.plan)
        verdicts = await checker.verdicts([p.content for p in ordered])
        run.record_checks(ordered, verdicts)
        if all(v.error for v in verdicts):
            return await _set_aside(run, candidates, f"it cannot run: {verdicts[0].error}")
        passing = [p for p, v in zip(ordered, verdicts, strict=True) if v.passed]
        if passing:
            chosen = passing[most_agreed(consensus_scores([p.content for p in passing]))]
            run.decide(
                "form.selected",
                chosen=chosen.agent,
                reason=f"{len(passing)} of {len(ordered)} candidates meet the form asked for; "
                + (f"{chosen.agent}'s agrees most" if len(passing) > 1 else "kept it"),
            )
            return Answer.of(chosen, candidates)
        best = min(
            range(len(ordered)),
            key=lambda i: (bool(verdicts[i].error), len(verdicts[i].failures), i),
        )
        parts = checker.parts_to_revise(ordered[best].content)
        run.tracer.emit(
            "form.revise",
            agent=ordered[best].agent,
            failures=list(verdicts[best].failures),
            numbered=parts.target(ordered[best].content) if parts else None,
        )
        revision = await revise(run, ordered[best], verdicts[best], parts)
        if revision.ok:
            [checked] = await checker.verdicts([revision.content])
            run.record_checks([revision], [checked])
            if checked.passed:
                run.decide(
                    "form.selected",
                    chosen="reviser",
                    reason=f"no candidate met the form asked for; the revision of "
                    f"{ordered[best].agent}'s answer does",
                )
                return Answer(revision.content, among=tuple(candidates), aggregate=revision)
        return await _set_aside(run, candidates, "it fails every candidate and the revision")


async def form_checker(run: Run, source: str) -> Checker | None:
    """The check of this run's answers from ``source`` ("stated" or "written"), made
    once per run and kept (None: nothing to check)."""
    if run.form_checker is None:
        run.form_checker = (await _make_checker(run, source),)
    return cast("Checker | None", run.form_checker[0])


async def _make_checker(run: Run, source: str) -> Checker | None:
    if source == "stated":
        constraints = stated_form.stated_constraints(run.prompt)
        run.tracer.emit("form.checker", source="stated", asked=[c.asked for c in constraints])
        return StatedChecker(tuple(constraints)) if constraints else None
    code = await write_checker(run)
    return WrittenChecker(code) if code is not None else None


async def write_checker(run: Run) -> str | None:
    """The strongest model's checker for the question's form, traced; None without one."""
    plan, generator = run.plan, run.generator
    messages: tuple[Message, ...] = (
        {"role": "system", "content": form.CHECKER_SYSTEM},
        {
            "role": "user",
            "content": form.CHECKER_USER.format(question=run.prompt, example=form.CHECKER_EXAMPLE),
        },
    )
    request = generator.base_request(plan, plan.aggregator, messages, 0.0, 11, "checker")
    request = replace(request, max_tokens=max(request.max_tokens, CHECKER_MAX_TOKENS))
    outcome = await generator.complete(request, None, run.tracer)
    proposal = proposal_from(plan.layers + 1, "checker_writer", request, outcome, False)
    run.extra.append(proposal)
    checker = form.parse_checker(proposal.content) if proposal.ok else None
    run.tracer.emit(
        "form.checker",
        source="written",
        model=plan.aggregator.name,
        written=checker is not None,
        code=checker,
        reason=None if checker else (proposal.error or "the reply holds no check function"),
        reply=None if checker else proposal.content[:2000],
    )
    return checker


async def revise(
    run: Run, answer: Proposal, verdict: form.FormVerdict, parts: stated_form.Parts | None = None
) -> Proposal:
    """The strongest model's rewrite of ``answer`` given the checker's failures; with
    ``parts``, asked for as a numbered list of that many parts, which is written in the
    asked form (a reply with no numbered list is kept as it is)."""
    plan, generator = run.plan, run.generator
    failures = form.failure_list(verdict)
    if parts is None:
        ask = form.REVISE_USER.format(failures=failures)
    else:
        count = parts.target(answer.content)
        units = parts.unit if count == 1 else f"{parts.unit}s"
        ask = form.REVISE_PARTS_USER.format(failures=failures, count=count, units=units)
    messages: tuple[Message, ...] = (
        *({"role": "system", "content": plan.system},)[: 1 if plan.system else 0],
        {"role": "user", "content": run.prompt},
        {"role": "assistant", "content": answer.content},
        {"role": "user", "content": ask},
    )
    request = generator.base_request(plan, plan.aggregator, messages, 0.0, 12, "reviser")
    outcome = await generator.complete(request, None, run.tracer)
    proposal = proposal_from(plan.layers + 1, "reviser", request, outcome, False)
    entries = stated_form.numbered_entries(proposal.content) if proposal.ok else []
    if parts is not None and entries:
        proposal = replace(proposal, content=parts.render(entries))
    run.extra.append(proposal)
    return proposal


async def _set_aside(run: Run, candidates: Sequence[Proposal], why: str) -> Answer:
    run.decide("form.set_aside", reason=f"the form check is set aside: {why}")
    return await Consensus().choose(run, candidates)
