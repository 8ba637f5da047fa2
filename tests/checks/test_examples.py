"""The examples a code question states become tests, in every notation questions use;
prose that only looks like an example does not."""

from __future__ import annotations

import pytest

from moa_local.checks import examples, program_tests
from moa_local.checks.isolation import ISOLATIONS
from moa_local.engine.evidence import wants_verification


def question(docstring: str, signature: str = "def f(x):") -> str:
    """A question in the shape users and benchmarks give: prose, then a stub."""
    return f"Complete this function.\n```python\n{signature}\n    '''{docstring}\n    '''\n```"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("f(2) == 4", "assert f(2) == 4"),
        ("f(2) => 4", "assert f(2) == 4"),
        ("f(2) ==> 4", "assert f(2) == 4"),
        ("f(2) -> 4", "assert f(2) == 4"),
        ("f(2) ➞ 4", "assert f(2) == 4"),
        ("f(2)   # returns 4", "assert f(2) == 4"),
        ("f(2) should return 4.", "assert f(2) == 4"),
        ("f('a b') returns ['a', 'b']", "assert f('a b') == ['a', 'b']"),
        ("f(3) => true", "assert f(3) == True"),
        ("f([1, (2, 3)]) == -1", "assert f([1, (2, 3)]) == -1"),
        ("- f(2) == 4", "assert f(2) == 4"),
        ("Example 1: f(2) == 4", "assert f(2) == 4"),
        ('f("(") == 0', 'assert f("(") == 0'),
        ("For example, `f(2)` returns 4.", "assert f(2) == 4"),
        ("e.g. f(2) == 4", "assert f(2) == 4"),
    ],
)
def test_one_line_examples_become_asserts(line: str, expected: str) -> None:
    assert examples.stated_examples(question(f"\n    {line}"), "f", 1) == [expected]


@pytest.mark.parametrize(
    "line",
    [
        "f(5, 19) -> 19 - 5 - 6 = 8",  # worked arithmetic, not a value
        "f(a) => False",  # a name, not a literal argument
        "g(2) == 4",  # another function
        "It uses f(2) == 4 somewhere",  # prose around the call
        "f(2) == 4 if you are lucky",
        "def f(x):",
    ],
)
def test_prose_that_only_looks_like_an_example_is_not_a_test(line: str) -> None:
    assert examples.stated_examples(question(f"\n    {line}"), "f", 1) == []


def test_doctest_examples_drop_a_comment_after_the_call() -> None:
    text = question("\n    >>> round(f([1, 2]), 2) # f(x) = 1 + 2x\n    -0.5")
    assert examples.stated_examples(text, "f", 1) == ["assert round(f([1, 2]), 2) == -0.5"]


def test_input_output_pairs_and_for_lines_count_only_for_one_parameter() -> None:
    body = (
        "\n    Example 1:\n        Input: [4,2,3]\n        Output: [2, 1]\n"
        '    For x = "AB" the output should be 1.'
    )
    assert examples.stated_examples(question(body), "f", 1) == [
        "assert f([4,2,3]) == [2, 1]",
        'assert f("AB") == 1',
    ]
    # with two parameters the value could be either argument: no test
    assert examples.stated_examples(question(body, "def f(x, y):"), "f", 2) == []


def test_the_function_asked_for_is_the_stub_not_the_helper_before_it() -> None:
    text = (
        "Complete the following function.\n```python\ndef helper(s):\n    return s[::-1]\n\n"
        "def solve(s):\n    '''Use helper.\n    >>> solve('ab')\n    'ba'\n    '''\n```"
    )
    assert program_tests.entry_point(text) == "solve"
    assert [t.source for t in program_tests.example_tests(text, "solve")] == [
        "assert solve('ab') == 'ba'"
    ]


def test_a_question_whose_fence_is_announced_in_prose_still_shows_its_function() -> None:
    # "in one ```python block" opens a fence in the middle of a sentence: the
    # function is still found from its def line.
    text = (
        "Reply with the function in one ```python code block.\n\n```python\n"
        "def helper(s):\n    return s\n\ndef solve(s):\n    '''Return s.'''\n```"
    )
    assert examples.target(text) == examples.Signature("solve", 1, stub=True)


def test_auto_verification_turns_on_for_arrow_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    from moa_local.engine import evidence

    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS["bwrap"])
    assert wants_verification("auto", question("\n    f(2) ➞ 4")) == (True, None)
    on, hint = wants_verification("auto", question("\n    Doubles x."))
    assert not on and hint is not None and "states no examples" in hint


@pytest.mark.parametrize(
    ("text", "entry", "tests"),
    [
        (
            "Write a Python function add(a, b) that returns the sum of a and b. "
            "Example: add(2, 3) == 5.",
            "add",
            ["assert add(2, 3) == 5"],
        ),
        ("Write add(a, b). add(2, 3) -> 5", "add", ["assert add(2, 3) == 5"]),
        (
            "Write add(a, b); add(2, 3) should return 5, and add(-1, 1) returns 0.",
            "add",
            ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"],
        ),
        (
            'Split a string on commas: split_commas("a,b") should return ["a", "b"].',
            "split_commas",
            ['assert split_commas("a,b") == ["a", "b"]'],
        ),
    ],
)
def test_examples_stated_in_prose_without_a_stub(text: str, entry: str, tests: list[str]) -> None:
    assert program_tests.entry_point(text) == entry
    assert [t.source for t in program_tests.example_tests(text, entry)] == tests


@pytest.mark.parametrize(
    "text",
    [
        "Write add(a, b). It uses add(2, 3) == 5 somewhere.",  # the value ends no clause
        "Write add(a, b); add(2, 3) is 5 here.",  # "is" in mid-sentence states nothing
        "Sort a list, the way sorted([3, 1]) == [1, 3] does.",  # a builtin is not the function
    ],
)
def test_prose_that_names_no_example_gives_no_tests(text: str) -> None:
    entry = program_tests.entry_point(text)
    assert entry is None or program_tests.example_tests(text, entry) == []


def test_auto_verification_turns_on_for_an_example_in_prose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moa_local.engine import evidence

    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS["bwrap"])
    text = "Write a Python function add(a, b) that returns the sum. Example: add(2, 3) == 5."
    assert wants_verification("auto", text) == (True, None)
