"""Auto: select for text answers, synthesize for programs.

Measured with ``moa-local eval`` (docs/quality.md): on IFBench a pick kept
the single model's level where a rewrite fell below it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...result import Proposal
from ..state import Answer, Run
from .select import Select
from .synthesize import Synthesize


class Auto:
    """Choose by the kind of question: programs are synthesized, text is selected."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The answer of :class:`Synthesize` for code, of :class:`Select` otherwise."""
        chooser = Synthesize() if run.is_code else Select()
        return await chooser.choose(run, candidates)
