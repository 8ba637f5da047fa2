"""The whole-program check: a program must parse and define or import every name it reads."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from moa_local import MoA
from moa_local.answers import final_answer
from moa_local.backends.echo import EchoBackend
from moa_local.checks.programs import undefined_names


@pytest.mark.parametrize(
    ("program", "question", "undefined"),
    [
        ("def root(x):\n    return math.sqrt(x)", "", {"math"}),
        ("import math\ndef root(x):\n    return math.sqrt(x)", "", set()),
        ("def f(a):\n    return [k for k in a if k > limit]", "", {"limit"}),
        ("class C:\n    n = 1\n    def m(self):\n        return n", "", {"n"}),
        ("def f():\n    global G\n    G = 1\n\ndef g():\n    return G", "", set()),
        ("def f(x):\n    def g():\n        return x\n    return g()", "", set()),
        ("def f(xs):\n    return sorted(len(x) for x in xs), __name__", "", set()),
        ("def f(xs: List[int]) -> int:\n    return sum(xs)", "", {"List"}),
        # The question's own code supplies the import the answer leaves out.
        (
            "def f(xs: List[int]) -> int:\n    return sum(xs)",
            "Complete:\n```python\nfrom typing import List\n\ndef f(xs: List[int]) -> int:\n"
            '    """Sum."""\n```',
            set(),
        ),
        ("from math import *\nprint(sqrt(2))", "", set()),  # cannot be told
        ("def f(:\n", "", set()),  # does not parse: the parse check's to report
    ],
)
def test_undefined_names(program: str, question: str, undefined: set[str]) -> None:
    assert undefined_names(program, question) == undefined


def test_a_program_with_an_undefined_name_has_no_answer_to_vote_with() -> None:
    assert final_answer("```python\ndef r(x):\n    return math.sqrt(x)\n```", code=True) is None
    assert final_answer(
        "```python\nimport math\ndef r(x):\n    return math.sqrt(x)\n```", code=True
    )


NO_IMPORT = "```python\ndef root(x):\n    return math.sqrt(x)\n```"
WITH_IMPORT = "```python\nimport math\n\ndef root(x):\n    return math.sqrt(x)\n```"


async def test_an_aggregate_that_uses_an_undefined_name_gives_way_to_a_whole_candidate() -> None:
    moa = MoA(
        proposers=[
            f"echo:careless?reply={quote(NO_IMPORT)}",
            f"echo:whole?reply={quote(WITH_IMPORT)}",
        ],
        aggregator=f"echo:agg?reply={quote(NO_IMPORT)}",
        layers=1,
        backends={"echo": EchoBackend()},
        trace_dir="",
    )
    result = await moa.run("Write a Python function root(x) returning the square root.")
    assert result.final_response == WITH_IMPORT  # the careless candidate is not whole either
    (decision,) = [d for d in result.decisions if d["event"] == "aggregate.fallback"]
    assert decision["chosen"].startswith("echo:whole")
    assert "uses math without defining or importing it" in decision["reason"]


async def test_a_vote_skips_candidates_that_are_not_whole() -> None:
    moa = MoA(
        proposers=[
            f"echo:a?reply={quote(NO_IMPORT)}",
            f"echo:b?reply={quote(NO_IMPORT)}",
            f"echo:c?reply={quote(WITH_IMPORT)}",
        ],
        aggregator="echo:a",
        layers=1,
        strategy="model",
        aggregate="vote",
        backends={"echo": EchoBackend()},
        trace_dir="",
    )
    result = await moa.run("Write a Python function root(x) returning the square root.")
    assert result.final_response == WITH_IMPORT  # two broken votes count for nothing
