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
        "10 / 3 = 3.3",  # rounded to the one decimal it shows
        "0.33 * 300 = 100 pages",  # a term rounded before it was used (1/3)
        "0.17 * 600 = 100",  # 1/6, rounded
        "3 / 8 = 0.4",
        r"\frac{2}{3} = 0.7",
        "45 / 7 = 6 full boxes can be filled.",  # rounded down on purpose
        "45 / 7 = 7 boxes are needed.",  # rounded up on purpose
        "1. 3 + 4 = 7",
        "Total: 1,200 + 300 = 1,500 dollars.",
        "12/25 - 12/20 = 5 days",  # a date: the computed value has the other sign
        "From 2010-2015 = 5 years",
        "Pages 12-15 = 4 pages",
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
        "y - 2 + 3 = 4",  # prose is read past only where it leads into a step
        "Step 3 - 5 + 2 = 7",
        "Apples - 5 * 2 = 10",
        "Monday - 8 + 2 = 10 hours",
        r"   T \times \frac{1}{2} = 7.5",
        "Toys times 1/2 = 7.5",
        "half of 20 - 4 = 9",
        "twice 5 + 3 = 13",
        "3 squared + 4 squared = 25",
        "$1.5 million + $500,000 = $2 million",  # a scale is not a unit to drop
        "20 percent × 200 = 40",
        "3 dozen × 12 = 36 eggs",
        "$50 - 10% = $45",  # a percentage taken away is relative
        "80 + 25% = 100",
        "Two movies: 1:30 × 2 = 3 hours",  # a time
        "Start 1:45 + 15 minutes = 2 hours",
        "Thursday: 1 hour + 30 minutes = 1.5 hours",  # a conversion: units differ
        r"\[ 1 \text{ hour} + 30 \text{ minutes} = 1.5 \text{ hours} \]",
        "60 minutes + 30 minutes = 1.5 hours",
        "2 feet - 6 inches = 1.5 feet",
        "assert add(2, 3) == 6",  # code compares, it does not state
        "2 ** 9 ** 9 ** 9 = 1",  # far too large to be a step: not read, and no hang
        "(-8)^{1/3} = -2",  # a complex power, not a crash
        " * ".join(["10^60"] * 6) + " = 1",  # an overflow to infinity
        " + ".join(["1"] * 5000) + " = 7",  # a repetition loop, not a step: no recursion error
        "(" * 500 + "1" + ")" * 500 + " + 1 = 3",
        "5 / 0 = 3",
        "= = 5 =",
    ],
)
def test_what_a_program_cannot_settle_is_not_read(unreadable: str) -> None:
    assert find_slips(unreadable) == []


@pytest.mark.parametrize(
    ("wrong", "computed"),
    [
        ("365 * 24 = 8770 hours", 8760),
        ("1,250 + 2,380 = 3,640", 3630),
        ("2.74 × 12 = 33.28", 32.88),
        ("$8,000 * 1.012 = $8,080", 8096),  # beyond what 1.012's rounding allows
        ("0.33 * 300 = 110", 99),
    ],
)
def test_a_slip_of_ten_in_thousands_is_a_slip(wrong: str, computed: float) -> None:
    [slip] = find_slips(wrong)
    assert slip.computed == pytest.approx(computed)


@pytest.mark.parametrize(
    ("wrong", "computed"),
    [
        ("5 hours × 60 minutes/hour = 200 minutes", 300),  # a product may change the unit
        ("3 apples + 4 apples = 8 apples", 7),
        ("12 hours + 3 hour = 16 hours", 15),
    ],
)
def test_steps_in_one_unit_or_a_product_of_units_are_still_read(
    wrong: str, computed: float
) -> None:
    [slip] = find_slips(wrong)
    assert slip.computed == pytest.approx(computed)


def test_a_conversion_that_gives_the_answer_is_never_repaired() -> None:
    reply = "Thursday: 1 hour + 30 minutes = 1.5 hours\nAnswer: 1.5"
    assert repair(reply, 1.5, answer_line=1) is None


def test_a_wrong_last_step_is_repaired_in_its_line_and_the_answer() -> None:
    fixed = repair(TOTAL_COST, 794, answer_line=6)
    assert fixed is not None
    assert "- Total cost = $204 + $160 + $330 = $694." in fixed.text
    assert fixed.text.endswith("Answer: 694")
    assert "= $204\n" in fixed.text  # earlier lines as they were
    latex = repair(LATEX_SUM, 1696, answer_line=7)
    assert latex is not None
    assert r"= 1596 \text{ dollars}" in latex.text and r"\boxed{1596}" in latex.text


def test_the_repair_writes_where_the_step_is_and_stops_at_the_answer() -> None:
    same_line = repair("The cost is 4 * 3 = 13, so she pays $13.00 in all.\nAnswer: 13", 13, 1)
    assert same_line is not None
    assert same_line.text == "The cost is 4 * 3 = 12, so she pays $12.00 in all.\nAnswer: 12"
    after = repair("8 - 3 = 6\nAnswer: 6\n(6 is the number of 6-packs)", 6, 1)
    assert after is not None and after.text.endswith("Answer: 5\n(6 is the number of 6-packs)")
    decimals = repair("45 / 3 = 16.0\nAnswer: 16.0", 16, 1)
    assert decimals is not None and decimals.text == "45 / 3 = 15.0\nAnswer: 15.0"


def test_a_slip_the_answer_does_not_come_from_is_not_repaired() -> None:
    assert len(find_slips(EARLIER_SLIP)) == 1
    assert repair(EARLIER_SLIP, 86, answer_line=4) is None
    # The answer stated before the step: repairing the step alone would contradict it.
    assert repair("**Answer: 6**\n\nExplanation: 2 + 3 = 6", 6, answer_line=0) is None
    # Two slips: repairing the last would leave the other.
    assert repair("2 + 2 = 5\n5 + 1 = 7\nAnswer: 7", 7, answer_line=2) is None


def test_a_step_of_the_other_sign_is_not_read() -> None:
    # A 0.5B answer (item 44): "40 - 200" is a wrong step, and its answer (20) right by
    # accident; read as a slip it would be repaired into -160.
    text = "\\[ \\$40.00 - \\$200.00 = \\$20.00 \\]\n\nThus the net profit is \\[ \\boxed{20} \\]"
    assert find_slips(text) == []


def test_values_are_written_as_the_reply_wrote_them() -> None:
    assert format_value(694.0, like="$794") == "694"
    assert format_value(1596.0, like="1,696") == "1,596"
    assert format_value(32.88, like="33.28") == "32.88"
    assert format_value(2850.0, like="2925.00") == "2850.00"
    assert format_value(15.0, like="16.0") == "15.0"
    assert format_value(1 / 3) == "0.33"
    fixed = repair("Total: 1,000 + 696 = 1,796 dollars.\nAnswer: 1,796", 1796, 1)
    assert fixed is not None and fixed.text.endswith("Answer: 1,696")
