"""Verified: candidates run against the tests, and the evidence chooses.

Used for code questions when verification is on. Nothing streams before the
tests decide.

- The question states examples: the candidate that passes most tests wins
  (:func:`moa_local.checks.program_tests.rank`; the greedy one on ties). With
  ``aggregate = "synthesize"`` the aggregator first writes its own program
  from the candidates, and it wins ties; ``auto`` rewrites nothing: on
  HumanEval dev (2026-12-07) the synthesis was chosen three times where no
  candidate passed the examples, never right, at 30 to 86 s each.
- Only tests the model wrote: CodeT's dual agreement among the candidates
  (:mod:`moa_local.checks.agreement`), no synthesis; contradictory tests are
  dropped first. When the tests tell the candidates nothing (none passes
  any, or all pass the same), the answer is what :class:`~.auto.Auto` would
  return without tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...checks import agreement, program_tests
from ...result import Proposal
from ..state import Answer, Run
from .auto import Auto
from .base import greedy_first
from .synthesize import aggregate


class Verified:
    """Choose by the tests: the question's examples, else agreement on written tests."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The best-tested answer among ``candidates`` (and, with examples and
        ``synthesize``, the aggregate)."""
        verification = run.verification
        assert verification is not None
        if not any(t.example for t in verification.known_tests):
            return await _by_agreement(run, candidates)
        layer = tuple(greedy_first(run.last_layer(), run.plan))
        proposal = None
        if run.plan.aggregate == "synthesize":
            proposal = await aggregate(run, stream=False)
        # The aggregate is a candidate too, first: it wins ties.
        tested = (proposal, *layer) if proposal is not None else layer
        programs = verification.programs([p.content for p in tested])
        verdicts = await verification.verdicts(programs)
        tests = verification.known_tests
        best = program_tests.rank(verdicts, programs, tests)[0]
        chosen = tested[best]
        who = "aggregator" if proposal is not None and best == 0 else chosen.agent
        reason = f"{who}: {verdicts[best].summary(tests)}"
        if proposal is not None:
            reason += f" (aggregate: {verdicts[0].summary(tests)})"
        run.decide("verify.selected", chosen=who, reason=reason)
        return Answer(chosen.content, chosen=chosen, among=tested, aggregate=proposal)


async def _by_agreement(run: Run, candidates: Sequence[Proposal]) -> Answer:
    """The candidate of the best-agreed group on the written tests; else Auto's choice."""
    verification = run.verification
    assert verification is not None
    ordered = greedy_first(candidates, run.plan)
    tests = agreement.consistent(verification.known_tests)
    dropped = len(verification.known_tests) - len(tests)
    programs = verification.programs([p.content for p in ordered])
    verdicts = await verification.verdicts(programs, tests)
    found = agreement.dual_agreement(verdicts, range(len(ordered))) if tests else None
    if found is None:
        run.decide(
            "verify.selected",
            chosen=None,
            reason="the written tests tell the candidates nothing"
            + (f" ({dropped} contradictory dropped)" if dropped else ""),
        )
        return await Auto().choose(run, candidates)
    chosen = ordered[found.chosen]
    run.decide(
        "verify.selected",
        chosen=chosen.agent,
        reason=f"{chosen.agent}: {found.reason}"
        + (f"; {dropped} contradictory tests dropped" if dropped else ""),
    )
    return Answer(chosen.content, chosen=chosen, among=tuple(candidates))
