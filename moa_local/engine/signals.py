"""Selective MoA: when a mixture cannot help, say so and skip it.

Two signals, both cheap and both recorded by the engine as ``router.decision``
trace events with their reason:

- *agreement*: when every successful answer of a layer says the same thing
  (the same program after normalization, or near-identical text), further
  layers and the aggregator can only copy it: the run stops there and returns
  the strongest model's answer;
- *simple question*: a short question that asks for no code and sets no
  constraints gets nothing from a panel: the strongest model answers alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..checks.programs import extract_python, normalize_code

TEXT_AGREEMENT = 0.9  # SequenceMatcher ratio above which two texts count as the same answer
SIMPLE_MAX_WORDS = 25

# Words that mark a request with constraints or several parts: not "simple".
_CONSTRAINTS = re.compile(
    r"\b(exactly|at least|at most|no more than|fewer than|less than|more than|words?|"
    r"sentences?|paragraphs?|bullets?|list|format|json|table|steps?|compare|essay|"
    r"story|poem|letter|translate|rewrite|summar\w*|explain .* and|must|should|without|"
    r"include|end with|start with|capital letters|capitali[sz]\w*|all caps|lowercase|"
    r"uppercase|quote)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Decision:
    """A router verdict: whether to skip, and why (one line for the trace)."""

    skip: bool
    reason: str


def simple_question(question: str, *, code: bool) -> Decision:
    """Whether ``question`` is simple enough for the strongest model alone."""
    words = len(question.split())
    if code:
        return Decision(False, "asks for code")
    if words > SIMPLE_MAX_WORDS:
        return Decision(False, f"{words} words (simple: at most {SIMPLE_MAX_WORDS})")
    found = _CONSTRAINTS.search(question)
    if found:
        return Decision(False, f"sets a constraint or asks for a form ({found.group(0)!r})")
    if question.count("?") > 1:
        return Decision(False, "asks several questions")
    return Decision(True, f"simple question: {words} words, no code, no constraints")


def agreement(answers: Sequence[str], *, code: bool) -> Decision:
    """Whether all ``answers`` agree (at least two are needed to call it agreement)."""
    if len(answers) < 2:
        return Decision(False, "fewer than two answers")
    if code:
        programs = [extract_python(text) for text in answers]
        if any(p is None for p in programs):
            return Decision(False, "an answer has no code")
        forms = {normalize_code(p) for p in programs if p is not None}
        if len(forms) == 1:
            return Decision(True, f"all {len(answers)} answers are the same program")
        return Decision(False, f"{len(forms)} different programs among {len(answers)} answers")
    texts = [" ".join(text.lower().split()) for text in answers]
    lowest = min(SequenceMatcher(None, texts[0], other).ratio() for other in texts[1:])
    if lowest >= TEXT_AGREEMENT:
        return Decision(True, f"all {len(answers)} answers are near-identical ({lowest:.2f})")
    return Decision(False, f"answers differ (similarity {lowest:.2f})")
