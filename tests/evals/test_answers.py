"""The one answer reader (moa_local.answers.read_answer), on phrasings models really write.

The vote counts what it reads and the exact scorers (moa_local.evals.exact)
check it: a phrasing read here is read the same way by both.
"""

from __future__ import annotations

import pytest

from moa_local.answers import final_answer, read_answer
from moa_local.evals.exact import score_choice, score_target

OPTIONS = ["London", "Berlin", "Paris", "Rome"]


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("The answer is 1,234.", "1234"),
        ("**Answer:** (B)", "b"),
        ("Answer: $18", "18"),
        ("B", "b"),
        ("(C) Paris", "c"),
        ("the answer is 42 apples", "42"),
        ("#### 72", "72"),
        ("16 - 3 - 4 = 9 eggs. 9 * 2 = $18. So the answer is 18.", "18"),
        ("She makes $18.\nThe answer is $18.00 per day.", "18"),
        ("Answer: 9 * 2 = $18", "18"),
        ("Answer: 18.0", "18"),
        ("Answer: -3 degrees", "-3"),
        ("Answer: I have 3 things.", "3"),
        ("Answer: twenty-one", "21"),
        ("Work...\n\\boxed{12}\nThat is all.", "12"),
        # Qwen2.5's own endings on GSM8K: the answer on display-math lines after the
        # statement, or boxed inside a sentence after a "**Final Answer:**" heading.
        ("So she has nothing left. The answer is:\n\\[\n\\boxed{0}\n\\]", "0"),
        ("Therefore, the final answer is:\n\\[\n220\n\\]", "220"),
        (
            "3. **Final Answer:**\n   - The distance covered by each train in the two days"
            " is \\(\\boxed{230}\\) miles.",
            "230",
        ),
        ("Answer: \\(\\boxed{\\$18}\\)", "18"),
        ("The answer is \\boxed{18 \\text{ dollars}}.", "18"),
        ("Answer: 3 or 4", "3 or 4"),  # two numbers: no one number
        ("Answer: 2nd", "2nd"),  # a number glued to letters is not a number
    ],
)
def test_the_reader_reads_real_phrasings(reply: str, value: str) -> None:
    reading = read_answer(reply)
    assert reading.value == value
    # What a vote counts is that same value.
    assert final_answer(reply) == value


def test_an_unstated_last_line_is_read_for_a_score_but_not_counted_by_a_vote() -> None:
    reading = read_answer("Let me count.\nThere are 3 of them")
    assert (reading.value, reading.stated) == ("3", False)
    assert reading.countable is None and final_answer("Let me count.\nThere are 3 of them") is None
    assert read_answer("42").countable == "42"  # a whole reply of one word counts


def test_a_statement_inside_a_line_is_its_last_sentence() -> None:
    assert read_answer("So the answer is 7. I hope that helps!").value == "7"
    assert read_answer("x is 5. Therefore, the answer is 6. Done.").value == "6"
    # "the answer is" inside a clause is not a statement.
    assert read_answer("I wonder if the answer is 5\nAnswer: 6").value == "6"


@pytest.mark.parametrize(
    "reply",
    [
        "**Answer:** (C)",
        "C",
        "(C) Paris",
        "It is the French capital.\nAnswer: Paris.",
        "The answer is (C).",
        "Answer: option C",
        "Answer: c",
    ],
)
def test_a_choice_counts_by_letter_or_by_the_options_text(reply: str) -> None:
    assert score_choice(reply, OPTIONS, ["C"]).outcome == "pass"
    question = "Capital of France?\n" + "\n".join(
        f"({letter}) {text}" for letter, text in zip("ABCD", OPTIONS, strict=True)
    )
    assert final_answer(reply, question=question) == "c"  # the vote reads the same letter


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("Answer: (B)", "wrong"),
        ("Answer: Berlin", "wrong"),
        ("Answer: (E)", "no_answer"),  # past the options
        ("Answer: (A) or (C)", "no_answer"),  # two letters
        ("Answer: Madrid", "no_answer"),
        ("", "no_answer"),
    ],
)
def test_a_choice_that_is_wrong_or_unread(reply: str, outcome: str) -> None:
    assert score_choice(reply, OPTIONS, ["C"]).outcome == outcome


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: 1,234",
        "Answer: $1234",
        "Answer: 1234.0",
        "The answer is 1,234 dollars.",
        "#### 1234",
        "Total: 1000 + 234 = 1234.\nAnswer: 1000 + 234 = $1,234",
    ],
)
def test_a_number_target_compares_by_value(reply: str) -> None:
    assert score_target(reply, ["1,234"], number=True).outcome == "pass"


def test_a_number_target_without_a_number_is_no_answer() -> None:
    assert score_target("Answer: 1235", ["1,234"], number=True).outcome == "wrong"
    assert score_target("Answer: 12345", ["1,234"], number=True).outcome == "wrong"
    assert score_target("I am not sure.", ["1,234"], number=True).outcome == "no_answer"
    assert score_target("Answer: 3 or 4", ["3"], number=True).outcome == "no_answer"
