"""`verify = "auto"`: code questions with examples are verified under bubblewrap only,
and a code question left untested says how to turn verification on."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local import MoA
from moa_local.checks.isolation import ISOLATIONS
from moa_local.engine import evidence
from moa_local.trace import read_trace
from tests.engine.test_strategies import QUESTION, RIGHT, WRONG, Scripted

NO_EXAMPLES = "Write a Python function add_one(x) that returns x plus one."


def run_with(isolation: str, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> MoA:
    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS[isolation])
    backend = Scripted({"a": WRONG, "b": RIGHT, "agg": "```python\nassert add_one(2) == 3\n```"})
    return MoA(
        proposers=["echo:a", "echo:b"],
        aggregator="echo:agg",
        layers=1,
        strategy="model",
        backends={"echo": backend},
        trace_dir="traces",
        **{"verify": "auto", **settings},
    )


def events(result: Any) -> list[str]:
    return [e["event"] for e in read_trace(result.trace_file)]


async def test_auto_verifies_a_question_with_examples_under_bubblewrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await run_with("bwrap", monkeypatch).run(QUESTION)
    assert "verify.tests" in events(result) and "verify.off" not in events(result)
    assert result.final_response == RIGHT  # the examples decide, not the greedy order


@pytest.mark.parametrize(
    ("isolation", "question", "hint", "settings"),
    [
        ("guard", QUESTION, "apt-get install bubblewrap", {}),
        ("bwrap", NO_EXAMPLES, "states no examples", {"write_tests": False}),
    ],
)
async def test_auto_leaves_verification_off_and_says_how_to_turn_it_on(
    monkeypatch: pytest.MonkeyPatch,
    isolation: str,
    question: str,
    hint: str,
    settings: dict[str, Any],
) -> None:
    result = await run_with(isolation, monkeypatch, **settings).run(question)
    trace = read_trace(result.trace_file)
    off = [e for e in trace if e["event"] == "verify.off"]
    assert len(off) == 1 and hint in off[0]["reason"] and "--verify" in off[0]["reason"]
    assert "\n" not in off[0]["reason"]
    assert not [e for e in trace if e["event"].startswith("verify.") and e["event"] != "verify.off"]


async def test_auto_tests_code_without_examples_on_written_tests_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = await run_with("bwrap", monkeypatch).run(NO_EXAMPLES)
    assert "verify.off" not in events(result)
    tests = [e for e in read_trace(result.trace_file) if e["event"] == "verify.tests"]
    assert tests[-1]["source"] == "written"
    assert tests[-1]["tests"] == [{"source": "assert add_one(2) == 3", "example": False}]
    assert result.final_response == RIGHT  # the written test decides, not the greedy order


async def test_verify_false_turns_it_off_without_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await run_with("bwrap", monkeypatch, verify=False).run(QUESTION)
    assert not [e for e in events(result) if e.startswith("verify.")]


async def test_verify_true_tests_even_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await run_with("guard", monkeypatch, verify=True).run(QUESTION)
    assert "verify.tests" in events(result)


async def test_a_text_question_is_never_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await run_with("bwrap", monkeypatch).run("What is the capital of France?")
    assert not [e for e in events(result) if e.startswith("verify.")]


def test_the_hint_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from moa_local.cli.progress import ProgressPrinter

    ProgressPrinter(verbose=False)("verify.off", {"reason": "code answers are not tested: x"})
    assert capsys.readouterr().err == "code answers are not tested: x\n"
