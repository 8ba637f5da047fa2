"""Code that states no examples: tests the strongest model writes, and CodeT's dual
agreement among the candidates on them (scripted echo models, real sandbox)."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.base import GenerateRequest
from moa_local.backends.echo import EchoBackend
from moa_local.checks import agreement
from moa_local.checks.isolation import ISOLATIONS, default_isolation
from moa_local.checks.program_tests import TestCase as Assertion
from moa_local.checks.program_tests import Verdict
from moa_local.trace import read_trace

QUESTION = "Write a Python function add_one(x) that returns x plus one."
RIGHT = "```python\ndef add_one(x):\n    return x + 1\n```"
RIGHT_AGAIN = "Here it is:\n```python\ndef add_one(x):\n    # increment\n    return x + 1\n```"
WRONG = "```python\ndef add_one(x):\n    return x + 2\n```"
# Three right tests and one wrong one, which only the wrong program passes.
TESTS = (
    "```python\nassert add_one(1) == 2\nassert add_one(0) == 1\nassert add_one(-1) == 0\n"
    "assert add_one(5) == 7\n```"
)

needs_bwrap = pytest.mark.skipif(
    default_isolation().name != "bwrap", reason="written tests run by default under bubblewrap"
)


class InTurn(EchoBackend):
    """One echo model: its proposals in the order asked for, and the test writer's reply."""

    def __init__(self, replies: list[str], tests: str = TESTS) -> None:
        super().__init__()
        self.replies, self.tests, self.proposals = replies, tests, 0

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        if request.tag == "tests":
            return self.tests
        self.proposals += 1
        return self.replies[min(self.proposals, len(self.replies)) - 1]


def make(backend: EchoBackend, **settings: Any) -> MoA:
    defaults: dict[str, Any] = {
        "proposers": ["echo:x"],
        "aggregator": "echo:x",
        "strategy": "temperature",
        "num_proposers": 3,
        "layers": 1,
        "verify": "auto",
        "write_tests": True,
        "router": "agree",
        "trace_dir": "traces",
    }
    return MoA(backends={"echo": backend}, **{**defaults, **settings})


def events(result: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == name]


def verdict(index: int, *passed: bool, error: str = "") -> Verdict:
    return Verdict(index, tuple(passed), error)


def test_the_largest_agreeing_group_times_its_tests_wins() -> None:
    # Two programs pass tests 1-3; one passes 1-4 alone: 2 x 3 beats 1 x 4.
    verdicts = [verdict(0, True, True, True, True), verdict(1, True, True, True, False),
                verdict(2, True, True, True, False)]  # fmt: skip
    found = agreement.dual_agreement(verdicts, [0, 1, 2])
    assert found is not None and (found.chosen, found.programs, found.tests_passed) == (1, 2, 3)
    # Equal scores: the group holding the greedy sample (first in the order) wins.
    tied = [verdict(0, True, False), verdict(1, False, True)]
    assert agreement.dual_agreement(tied, [1, 0]).chosen == 1  # type: ignore[union-attr]
    assert agreement.dual_agreement(tied, [0, 1]).chosen == 0  # type: ignore[union-attr]


def test_no_evidence_when_no_test_passes_or_all_agree() -> None:
    assert agreement.dual_agreement([verdict(0, False), verdict(1, False)], [0, 1]) is None
    assert agreement.dual_agreement([verdict(0, True), verdict(1, True)], [0, 1]) is None
    assert agreement.dual_agreement([verdict(0, True, error="boom")], [0]) is None


def test_contradictory_tests_are_both_dropped() -> None:
    tests = [Assertion("assert f(1) == 2", False), Assertion("assert f(1) == 3", False),
             Assertion("assert f( 2 ) == 4", False), Assertion("assert f(2) == 4", False),
             Assertion("assert g(1)", False)]  # fmt: skip
    kept = [t.source for t in agreement.consistent(tests)]
    assert kept == ["assert f( 2 ) == 4", "assert f(2) == 4", "assert g(1)"]


@needs_bwrap
async def test_agreement_on_written_tests_chooses_the_right_program() -> None:
    backend = InTurn([WRONG, RIGHT, RIGHT_AGAIN])
    result = await make(backend).run(QUESTION)
    assert result.final_response == RIGHT  # not the greedy sample, which is wrong
    assert backend.proposals == 3
    [selected] = events(result, "verify.selected")
    # The greedier of the two that agree (RIGHT came before RIGHT_AGAIN).
    assert selected["chosen"] == result.chosen.agent and result.chosen.content == RIGHT
    assert "2 of 3 programs pass the same 3 of 4 written tests" in selected["reason"]
    assert [r.tag for r in backend.stats.requests].count("aggregator") == 0  # no synthesis


@needs_bwrap
async def test_a_greedy_program_that_passes_every_written_test_ends_the_run() -> None:
    backend = InTurn([RIGHT, WRONG, WRONG], tests=TESTS.replace("== 7", "== 6"))
    result = await make(backend).run(QUESTION)
    assert result.final_response == RIGHT and backend.proposals == 1


@needs_bwrap
async def test_tests_that_decide_nothing_leave_todays_choice() -> None:
    backend = InTurn([WRONG, RIGHT, RIGHT_AGAIN], tests="I cannot write tests.")
    result = await make(backend).run(QUESTION)
    assert events(result, "verify.selected")[0]["chosen"] is None
    assert events(result, "aggregate.auto")[0]["chooser"] == "vote"
    assert result.final_response == RIGHT  # the vote: two programs agree


async def test_nothing_runs_without_bubblewrap_or_with_write_tests_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moa_local.engine import evidence

    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS["guard"])
    backend = InTurn([WRONG, RIGHT, RIGHT_AGAIN])
    result = await make(backend).run(QUESTION)
    assert "tests" not in [r.tag for r in backend.stats.requests]
    assert "bubblewrap" in events(result, "verify.off")[0]["reason"]
    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS["bwrap"])
    off = InTurn([WRONG, RIGHT, RIGHT_AGAIN])
    result = await make(off, write_tests=False).run(QUESTION)
    assert "tests" not in [r.tag for r in off.stats.requests]
    assert "write_tests = true" in events(result, "verify.off")[0]["reason"]


def test_the_terminal_says_when_the_question_states_no_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moa_local.cli.progress import ProgressPrinter

    show = ProgressPrinter(verbose=False)
    show("verify.tests", {"entry_point": "add_one", "source": "question", "tests": []})
    show("verify.tests", {"entry_point": "add_one", "source": "written", "tests": [{}, {}]})
    assert capsys.readouterr().err.splitlines() == [
        "verify: the question states no examples for add_one",
        "verify: 2 tests for add_one",
    ]
