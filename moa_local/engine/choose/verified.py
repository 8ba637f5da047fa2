"""Verified: candidates run against the tests, and the evidence chooses.

Used for code questions when verification is on. Nothing streams before the
tests decide.

- The question states examples: synthesize, then keep the aggregate unless
  a candidate passes more tests (the aggregate wins ties); see
  :func:`moa_local.checks.program_tests.rank`.
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
        """The best-tested answer among ``candidates`` (and, with examples, the aggregate)."""
        verification = run.verification
        assert verification is not None
        if not any(t.example for t in verification.known_tests):
            return await _by_agreement(run, candidates)
        proposal = await aggregate(run, stream=False)
        # The aggregate is a candidate too, first: it wins ties.
        tested = (proposal, *run.last_layer())
        programs = verification.programs([p.content for p in tested])
        verdicts = await verification.verdicts(programs)
        tests = verification.known_tests
        best = program_tests.rank(verdicts, programs, tests)[0]
        chosen = tested[best]
        who = "aggregator" if best == 0 else chosen.agent
        run.decide(
            "verify.selected",
            chosen=who,
            reason=f"{who}: {verdicts[best].summary(tests)} "
            f"(aggregate: {verdicts[0].summary(tests)})",
        )
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
