"""The arithmetic check reads the steps Qwen2.5-Coder writes in GSM8K answers (the
phrasings below are theirs), finds the wrong ones, and repairs a wrong last step."""

from __future__ import annotations

import pytest

from moa_local.checks.arithmetic import evaluate, find_slips, format_value, repair

# A 1.5B answer of GSM8K dev (item 11): every product is right, the sum is not.
TOTAL_COST = """To find the total cost, we add the three purchases:
- Cost of the donuts = 3 dozen × $68 per dozen = $204
- Cost of the mini cupcakes = 2 dozen × $80 per dozen = $160
- Cost of the mini cheesecakes = 6 dozen × $55 per dozen = $330
- Total cost = $204 + $160 + $330 = $794.

Answer: 794"""

# Its LaTeX form (item 63): display math, units in \\text{}, the answer boxed.
LATEX_SUM = r"""The total amount paid is the sum of the two payments:
\[
840 \text{ dollars} + 756 \text{ dollars} = 1696 \text{ dollars}
\]

Therefore, the final answer is:
\[
\boxed{1696}
\]"""

# A wrong step that the answer does not come from (item 74): the steps after it use it.
EARLIER_SLIP = r"""1. Revenue from marigolds: \(2.74 \times 12 = 33.28\).
2. Revenue from petunias: \(9.87 \times 4 = 39.48\).
3. Total: \(33.28 + 39.48 = 72.76\), rounded to 86 with the tip.

Answer: 86"""


def test_words_before_a_step_are_read_past() -> None:
    [first] = find_slips("First, 2 * 160 = 330.")
    [which] = find_slips("The difference, which is 60 - 20 = 30, is what is left.")
    assert (first.computed, which.computed) == (320, 40)


def test_a_wrong_sum_is_found_with_what_it_should_be() -> None:
    [slip] = find_slips(TOTAL_COST)
    assert slip.line == 4
    assert (slip.stated_value, slip.computed) == (794, 694)
    assert slip.describe() == "$204 + $160 + $330 = 694, not $794"


def test_latex_steps_are_read_with_their_units_and_fractions() -> None:
    [slip] = find_slips(LATEX_SUM)
    assert (slip.stated_value, slip.computed) == (1696, 1596)
    assert evaluate(r"\frac{105}{90}", computation=True) == pytest.approx(105 / 90)
    assert evaluate(r"25\% \times 4", computation=True) == 1
    assert evaluate("3 x 4", computation=True) == 12
    assert evaluate("1.1^2", computation=True) == pytest.approx(1.21)


@pytest.mark.parametrize(
    "right",
    [
        "20 candles × $2.00 per candle = $40.00",
        r"\[ 10.00 + 10.00 = 20.00 \]",
        "So each person gets 10 / 3 = 3.33 cups.",
        "45 / 7 = 6 full boxes can be filled.",  # rounded down on purpose
        "45 / 7 = 7 boxes are needed.",  # rounded up on purpose
        "1. 3 + 4 = 7",
        "Total: 1,200 + 300 = 1,500 dollars.",
    ],
)
def test_right_steps_are_not_slips(right: str) -> None:
    assert find_slips(right) == []


@pytest.mark.parametrize(
    "unreadable",
    [
        "2x = 14",  # a letter: an equation to solve, not a step
        r"\[ W - 15 = W - 7.5 \]",
        r"\[ -15 = -7.5 \]",  # no computation on the left
        "5% of $1,000,000 = $50,000 * 0.05 = $2,500",  # words in the first part
        "x = y + 3 = 9",
        "y - 2 + 3 = 4",  # the words before a step are read past, a variable is not
        r"   T \times \frac{1}{2} = 7.5",  # a LaTeX command is not a word before it
        "Toys times 1/2 = 7.5",  # nor is a word that says an operation
        "half of 20 - 4 = 9",
        "$1.5 million + $500,000 = $2 million",  # a scale is not a unit to drop
        "20 percent × 200 = 40",
        "3 dozen × 12 = 36 eggs",
        "assert add(2, 3) == 6",  # code compares, it does not state
        "2 ** 9 ** 9 ** 9 = 1",  # far too large to be a step: not read, and no hang
        " + ".join(["1"] * 5000) + " = 7",  # a repetition loop, not a step: no recursion error
        "(" * 500 + "1" + ")" * 500 + " + 1 = 3",
    ],
)
def test_what_a_program_cannot_settle_is_not_read(unreadable: str) -> None:
    assert find_slips(unreadable) == []


def test_a_wrong_last_step_is_repaired_in_its_line_and_the_answer() -> None:
    fixed = repair(TOTAL_COST, 794)
    assert fixed is not None
    assert "- Total cost = $204 + $160 + $330 = $694." in fixed.text
    assert fixed.text.endswith("Answer: 694")
    assert "$204 per dozen" not in fixed.text and "= $204\n" in fixed.text  # earlier lines kept
    latex = repair(LATEX_SUM, 1696)
    assert latex is not None
    assert r"= 1596 \text{ dollars}" in latex.text and r"\boxed{1596}" in latex.text


def test_a_slip_the_answer_does_not_come_from_is_not_repaired() -> None:
    assert len(find_slips(EARLIER_SLIP)) == 1
    assert repair(EARLIER_SLIP, 86) is None
    assert repair(TOTAL_COST, None) is None  # no stated answer


def test_a_negative_result_for_a_positive_answer_is_not_repaired() -> None:
    # A 0.5B answer (item 44): the step is wrong, and its answer (20) is right by accident.
    text = "\\[ \\$40.00 - \\$200.00 = \\$20.00 \\]\n\nThus the net profit is \\[ \\boxed{20} \\]"
    assert len(find_slips(text)) == 1
    assert repair(text, 20) is None


def test_values_are_written_as_the_reply_wrote_them() -> None:
    assert format_value(694.0, like="$794") == "694"
    assert format_value(1596.0, like="1,696") == "1,596"
    assert format_value(32.88, like="33.28") == "32.88"
    assert format_value(2850.0, like="2925.00") == "2850.00"
    assert format_value(1 / 3) == "0.33"
    fixed = repair("Total: 1,000 + 696 = 1,796 dollars.\nAnswer: 1,796", 1796)
    assert fixed is not None and fixed.text.endswith("Answer: 1,696")
