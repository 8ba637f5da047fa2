"""The form a text question states, read by a program: what is read, what is not, and
what each check says of an answer."""

from __future__ import annotations

import pytest

from moa_local.checks.stated_form import (
    bullets,
    failures,
    paragraphs,
    sentences,
    stated_constraints,
    words,
)


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("Why is the sky blue? Answer in three sentences.", ["exactly 3 sentences"]),
        ("Describe a cat in at least 60 words.", ["at least 60 words"]),
        ("Summarize it in no more than 40 words.", ["at most 40 words"]),
        ("Summarize it in 40 words.", ["at most 40 words"]),  # a limit, not a count
        ("Explain recursion in 2 paragraphs.", ["exactly 2 paragraphs"]),
        ("Give exactly 3 bullet points on tides.", ["exactly 3 bullet points"]),
        ("Write a haiku. Do not use any commas.", ["no commas"]),
        ("Write everything in lowercase letters.", ["lowercase only"]),
        ("Reply in all capital letters.", ["capital letters only"]),
        ("End your response with the exact phrase 'Any other questions?'",
         ["ending with 'Any other questions?'"]),
        ('Start your answer with "Yes".', ["starting with 'Yes'"]),
        ("Wrap your entire response with double quotation marks.",
         ["the whole answer in double quotes"]),
        ("List three colours in JSON format.", ["valid JSON"]),
    ],
)  # fmt: skip
def test_stated_constraints_are_read(question: str, asked: list[str]) -> None:
    assert [c.asked for c in stated_constraints(question)] == asked


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "Write 5 words that rhyme with cat.",  # words asked for, not an answer's length
        "How many words are in this sentence?",
        "Why do some sentences end with a question mark?",
        "Explain what JSON is.",
        "He edits a total number of 1000 sentences each week. How much does he earn?",
    ],
)
def test_questions_that_state_no_form_give_nothing(question: str) -> None:
    assert stated_constraints(question) == []


def test_the_counters() -> None:
    text = "Dr. Smith came home. It rained e.g. all day! Did it?\n\n- one item\n* two, three"
    assert sentences(text) == [
        "Dr. Smith came home.",
        "It rained e.g. all day!",
        "Did it?",
        "- one item",
        "two, three",  # markdown marks are not words
    ]
    assert words("It's a well-known **fact**: 3 cats.") == [
        "It's",
        "a",
        "well-known",
        "fact",
        "3",
        "cats",
    ]
    assert len(paragraphs(text)) == 2 and len(paragraphs("a\n***\nb")) == 2
    assert bullets(text) == ["- one item", "* two, three"]


def test_each_check_says_what_was_asked_and_what_the_answer_has() -> None:
    [three] = stated_constraints("Answer in three sentences.")
    assert three.check("One. Two. Three.") is None
    assert three.check("Just one.") == "the question asks for exactly 3 sentences; the answer has 1"
    found = stated_constraints("Do not use commas, and end with 'Bye.'")
    assert failures(found, "Hi, all. Bye.") == ["the question asks for no commas; the answer has 1"]
    assert failures(found, "Hi all. Bye.") == []
    assert "ends 'Hi all.'" in failures(found, "Hi all.")[0]
    [as_json] = stated_constraints("Reply in JSON.")
    assert as_json.check('```json\n{"a": 1}\n```') is None
    assert "does not parse as JSON" in (as_json.check("{a: 1}") or "")
