"""The whole-program check: a synthesized program that is not whole gives way to a candidate."""

from __future__ import annotations

from ...checks.programs import extract_python, is_whole, parses, undefined_names
from ...result import Proposal
from ..plan import TextCallback
from ..state import Run
from .base import greedy_first


def complete_program(run: Run, aggregate: Proposal, on_text: TextCallback | None) -> Proposal:
    """The aggregate, or a whole candidate when the aggregate's program is not whole.

    A small aggregator that copies the question's docstring runs out of
    tokens mid-program, writes a syntax error, or calls a module it never
    imports; the candidates it read are often whole. Both checks are static
    (nothing runs): the program parses, and every name it reads is defined,
    imported, a builtin, or given by the question's own code. The candidates
    of the last layer are tried greedy first (the lowest temperature of the
    strongest model: what that model alone would answer), and one is taken
    only when it is whole itself. When one is taken, a streamed answer
    (``on_text``) is followed by a note and the program, so what was shown
    and what is returned agree.
    """
    program = extract_python(aggregate.content)
    if program is None or is_whole(program, run.prompt):
        return aggregate
    why = _fault(program, run.prompt, aggregate.finish_reason)
    for candidate in greedy_first(run.last_layer(), run.plan):
        candidate_program = extract_python(candidate.content)
        if candidate_program is not None and is_whole(candidate_program, run.prompt):
            run.decide(
                "aggregate.fallback",
                chosen=candidate.agent,
                reason=f"the aggregate's program {why}; {candidate.agent}'s is whole",
            )
            if on_text is not None:
                on_text(f"\n\n[the program above {why}; {candidate.agent}'s answer:]\n\n")
                on_text(candidate.content)
            return candidate
    run.decide(
        "aggregate.fallback",
        chosen=None,
        reason=f"the aggregate's program {why}; no candidate's is whole either",
    )
    return aggregate


def _fault(program: str, question: str, finish_reason: str) -> str:
    """What is wrong with a program that is not whole, as the end of a sentence."""
    if not parses(program):
        return "was cut off at max_tokens" if finish_reason == "length" else "does not parse"
    names = ", ".join(sorted(undefined_names(program, question)))
    return f"uses {names} without defining or importing it"
