"""The form a text question states, read by a program: what is read, what is not, and
what each check says of an answer."""

from __future__ import annotations

import pytest

from moa_local.checks.stated_form import (
    bullets,
    failures,
    numbered_entries,
    paragraphs,
    parts_to_revise,
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


@pytest.mark.parametrize(
    ("question", "answer", "entries", "rendered"),
    [
        ("Why is the sky blue? Answer in three sentences.", "Air scatters blue light.",
         ["Air scatters blue light.", "Blue waves are short", "So blue fills the sky!"],
         "Air scatters blue light. Blue waves are short. So blue fills the sky!"),
        ("Explain tides in 2 paragraphs.", "The moon pulls.",
         ["The moon pulls the sea.", "The sun does too."],
         "The moon pulls the sea.\n\nThe sun does too."),
        ("Give exactly 2 bullet points on tides.", "The moon pulls.",
         ["The moon pulls.", "The sun pulls."], "- The moon pulls.\n- The sun pulls."),
    ],
)  # fmt: skip
def test_a_missed_count_is_revised_as_a_numbered_list_and_written_in_the_asked_form(
    question: str, answer: str, entries: list[str], rendered: str
) -> None:
    constraints = stated_constraints(question)
    parts = parts_to_revise(constraints, answer)
    assert parts is not None and parts.target(answer) == len(entries)
    reply = "Here it is:\n" + "\n".join(f"{i}. {e}" for i, e in enumerate(entries, 1))
    assert numbered_entries(reply) == entries
    assert parts.render(numbered_entries(reply)) == rendered
    assert failures(constraints, rendered) == []


def test_the_revision_asks_for_the_nearest_count_the_question_allows() -> None:
    [at_least] = stated_constraints("Describe the sea in at least 4 sentences.")
    [at_most] = stated_constraints("Describe the sea in at most 2 paragraphs.")
    assert at_least.parts is not None and at_least.parts.target("One. Two.") == 4
    assert at_most.parts is not None and at_most.parts.target("A.\n\nB.\n\nC.") == 2
    assert parts_to_revise([at_least], "One. Two. Three. Four.") is None  # met: nothing to do


def test_word_counts_and_other_forms_are_not_revised_as_lists() -> None:
    constraints = stated_constraints("In at most 10 words and no commas: why is the sky blue?")
    assert [c.asked for c in constraints] == ["at most 10 words", "no commas"]
    assert parts_to_revise(constraints, "a, b, c, d, e, f, g, h, i, j, k, l") is None
