"""The whole-program check: a synthesized program that does not parse gives way to a candidate."""

from __future__ import annotations

from ...programs import extract_python, parses
from ...result import Proposal
from ..plan import TextCallback
from ..state import Run
from .base import greedy_first


def complete_program(run: Run, aggregate: Proposal, on_text: TextCallback | None) -> str:
    """The aggregate, or a complete candidate when the aggregate's program cannot parse.

    A small aggregator that copies the question's docstring runs out of
    tokens mid-program, or writes a syntax error; the candidates it read are
    often whole. Checking that the program parses runs no code. The
    candidates of the last layer are tried greedy first (the lowest
    temperature of the strongest model: what that model alone would answer).
    When one is taken, a streamed answer (``on_text``) is followed by a note
    and the program, so what was shown and what is returned agree.
    """
    program = extract_python(aggregate.content)
    if program is None or parses(program):
        return aggregate.content
    why = "was cut off at max_tokens" if aggregate.finish_reason == "length" else "does not parse"
    for candidate in greedy_first(run.last_layer(), run.plan):
        candidate_program = extract_python(candidate.content)
        if candidate_program is not None and parses(candidate_program):
            run.decide(
                "aggregate.fallback",
                chosen=candidate.agent,
                reason=f"the aggregate's program {why}; {candidate.agent}'s parses",
            )
            if on_text is not None:
                on_text(f"\n\n[the program above {why}; {candidate.agent}'s answer:]\n\n")
                on_text(candidate.content)
            return candidate.content
    run.decide(
        "aggregate.fallback",
        chosen=None,
        reason=f"the aggregate's program {why}; no candidate's parses either",
    )
    return aggregate.content
