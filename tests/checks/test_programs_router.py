"""Code extraction, code-question detection and the router's two signals."""

from __future__ import annotations

import pytest

from moa_local.checks.programs import asks_for_code, extract_python, normalize_code
from moa_local.engine.signals import agreement, simple_question


@pytest.mark.parametrize(
    ("answer", "entry_point", "code"),
    [
        pytest.param(
            "Here is a helper:\n```python\nimport math\n```\nand the solution:\n"
            "```python\ndef area(r):\n    return math.pi * r * r\n```\nHope it helps.",
            "area",
            "def area(r):\n    return math.pi * r * r",
            id="the-block-that-defines-the-entry-point",
        ),
        pytest.param(
            "Sure!\n```py\ndef inc(x):\n    return x + 1\n",
            "inc",
            "def inc(x):\n    return x + 1",
            id="an-unclosed-block-cut-off-by-max-tokens",
        ),
    ],
)
def test_extracts_a_fenced_block(answer: str, entry_point: str, code: str) -> None:
    assert extract_python(answer, entry_point) == code


def test_extracts_code_without_fences_and_none_from_prose() -> None:
    assert extract_python("def f():\n    return 1") == "def f():\n    return 1"
    prose_then_code = "The answer is below.\ndef g(a):\n    return a * 2\nThat is all."
    assert extract_python(prose_then_code, "g") == "def g(a):\n    return a * 2"
    assert extract_python("The sky is blue because of Rayleigh scattering.") is None


def test_normalized_code_ignores_comments_docstrings_and_layout() -> None:
    one = 'def f(x):\n    """Add one."""\n    return x + 1  # inc\n'
    two = "def f(x):\n\n    return (x + 1)\n"
    three = "def f(x):\n    return x + 2\n"
    assert normalize_code(one) == normalize_code(two)
    assert normalize_code(one) != normalize_code(three)


def test_code_questions_are_recognised() -> None:
    assert asks_for_code("Write a Python function that reverses a list.")
    assert asks_for_code("def add(a, b):\n    '''Add two numbers.'''\n")
    assert asks_for_code("Implement a class for a bank account in Python")
    assert not asks_for_code("Why is the sky blue? Answer in three sentences.")
    assert not asks_for_code("Write a poem about autumn leaves.")


def test_simple_question_router() -> None:
    assert simple_question("What is the capital of France?", code=False).skip
    assert not simple_question("What is the capital of France?", code=True).skip
    decision = simple_question("Write a story of exactly 200 words about a cat.", code=False)
    assert not decision.skip and "constraint" in decision.reason
    long_question = " ".join(["word"] * 40) + "?"
    assert not simple_question(long_question, code=False).skip


def test_agreement_router_on_code_and_text() -> None:
    same = [
        "```python\ndef f(x):\n    return x + 1\n```",
        "Here:\n```python\ndef f(x):\n    # one more\n    return x + 1\n```",
    ]
    assert agreement(same, code=True).skip
    different = [*same, "```python\ndef f(x):\n    return x - 1\n```"]
    decision = agreement(different, code=True)
    assert not decision.skip and "2 different programs" in decision.reason
    assert agreement(["Paris is the capital.", "Paris is the capital!"], code=False).skip
    assert not agreement(["Paris.", "It is Lyon, I think."], code=False).skip
    assert not agreement(["only one"], code=False).skip
