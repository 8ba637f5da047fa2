"""Verified: the aggregate and every candidate run against the tests; the best passes most.

Used for code questions when verification is on. The aggregate is kept
unless a candidate passes more tests (the aggregate wins ties); see
:func:`moa_local.checks.program_tests.rank`. Nothing streams before the tests decide.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...checks import program_tests
from ...result import Proposal
from ..state import Answer, Run
from .synthesize import aggregate


class Verified:
    """Synthesize, then keep whichever of the aggregate and the candidates tests best."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The best-tested of the aggregate and ``candidates``."""
        verification = run.verification
        assert verification is not None
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
