"""Free text whose question states its form: a model-written checker chooses among the
candidates, one revision when none passes, and a checker that is wrong or cannot run
is set aside (scripted echo models, the real sandbox)."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.base import GenerateRequest
from moa_local.backends.echo import EchoBackend
from moa_local.checks import form
from moa_local.checks.isolation import ISOLATIONS, default_isolation
from moa_local.trace import read_trace

# The stated-form reader does not read this count ("sentences" with no number
# word it knows), so the model-written checker is what checks it.
QUESTION = "Why is the sky blue? Answer in a few sentences, three of them."
ONE = "Sunlight scatters off air molecules, and blue light scatters most."
ONE_MORE = "Because air scatters blue light more than red light."
THREE = (
    "Sunlight holds every colour. Air molecules scatter short blue waves more than red "
    "ones. So blue light reaches our eyes from every part of the sky."
)
CHECKER = """```python
import re

def check(answer):
    sentences = [s for s in re.split(r"(?<=[.!?])\\s+", answer.strip()) if s]
    if len(sentences) != 3:
        return [f"asked for exactly 3 sentences; the answer has {len(sentences)}"]
    return []
```"""

needs_bwrap = pytest.mark.skipif(
    default_isolation().name != "bwrap", reason="checkers run by default under bubblewrap"
)


class InTurn(EchoBackend):
    """One echo model: proposals in the order asked for, a checker and a revision."""

    def __init__(self, replies: list[str], checker: str = CHECKER, revision: str = THREE):
        super().__init__()
        self.replies, self.checker, self.revision = replies, checker, revision
        self.proposals = 0
        self.revised: list[str] = []

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        if request.tag == "checker":
            return self.checker
        if request.tag == "reviser":
            self.revised.append("\n".join(m["content"] for m in request.messages))
            return self.revision
        self.proposals += 1
        return self.replies[min(self.proposals, len(self.replies)) - 1]

    @property
    def tags(self) -> list[str]:
        return [r.tag for r in self.stats.requests]


def make(backend: EchoBackend, **settings: Any) -> MoA:
    defaults: dict[str, Any] = {
        "proposers": ["echo:x"],
        "aggregator": "echo:x",
        "strategy": "temperature",
        "num_proposers": 3,
        "layers": 1,
        "check_form": "written",
        "aggregate": "auto",
        "router": "off",
        "trace_dir": "traces",
    }
    return MoA(backends={"echo": backend}, **{**defaults, **settings})


def events(result: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == name]


def test_questions_that_state_a_form_and_ones_that_do_not() -> None:
    assert form.states_form(QUESTION)
    assert form.states_form("Reply in JSON with keys name and age.")
    assert form.states_form("Do not use any commas in your reply.")
    assert not form.states_form("Why is the sky blue?")


def test_the_checker_is_read_out_of_the_reply() -> None:
    assert form.parse_checker(CHECKER) is not None
    assert form.parse_checker("NONE") is None
    assert form.parse_checker("```python\ndef verify(answer):\n    return []\n```") is None
    assert form.parse_checker("```python\ndef check(answer:\n```") is None


@needs_bwrap
async def test_the_candidate_that_meets_the_form_is_the_answer() -> None:
    backend = InTurn([ONE, ONE_MORE, THREE])
    result = await make(backend).run(QUESTION)
    assert result.final_response == THREE
    assert events(result, "aggregate.auto")[0]["chooser"] == "checked"
    [selected] = events(result, "form.selected")
    assert selected["reason"].startswith("1 of 3 candidates meet the form asked for")
    [verdicts] = events(result, "form.verdicts")
    assert [r["failures"] for r in verdicts["results"]][:2] == [
        ["asked for exactly 3 sentences; the answer has 1"]
    ] * 2
    assert "reviser" not in backend.tags


@needs_bwrap
async def test_when_none_passes_the_closest_is_revised_with_its_failures() -> None:
    backend = InTurn([ONE, ONE_MORE, ONE])
    result = await make(backend).run(QUESTION)
    assert result.final_response == THREE
    [asked] = backend.revised
    assert ONE in asked and "- asked for exactly 3 sentences; the answer has 1" in asked
    assert events(result, "form.selected")[0]["chosen"] == "reviser"


@needs_bwrap
async def test_a_checker_that_fails_the_revision_too_is_set_aside() -> None:
    backend = InTurn([ONE, ONE_MORE, ONE], revision=ONE_MORE)
    result = await make(backend).run(QUESTION)
    assert "fails every candidate and the revision" in events(result, "form.set_aside")[0]["reason"]
    assert events(result, "aggregate.consensus")  # today's choice
    assert result.final_response in (ONE, ONE_MORE)


@needs_bwrap
@pytest.mark.parametrize(
    "checker",
    [
        "```python\ndef check(answer):\n    while True:\n        pass\n```",  # never ends
        "```python\nimport socket\n\ndef check(answer):\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=2)\n    return []\n```",
        "```python\ndef check(answer):\n    return 1 / 0\n```",
    ],
    ids=["endless", "network", "raises"],
)
async def test_a_checker_that_cannot_run_is_set_aside(checker: str) -> None:
    backend = InTurn([ONE, ONE_MORE, THREE], checker=checker)
    result = await make(backend).run(QUESTION)
    assert "cannot run" in events(result, "form.set_aside")[0]["reason"]
    assert events(result, "aggregate.consensus") and "reviser" not in backend.tags


@needs_bwrap
async def test_a_checker_that_does_not_parse_is_no_checker() -> None:
    backend = InTurn([ONE, ONE_MORE, THREE], checker="```python\ndef check(answer:\n```")
    result = await make(backend).run(QUESTION)
    assert events(result, "form.checker")[0]["written"] is False
    assert events(result, "aggregate.consensus")


async def test_no_checker_runs_without_bubblewrap_unless_verify_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moa_local.engine import evidence

    monkeypatch.setattr(evidence, "default_isolation", lambda: ISOLATIONS["guard"])
    backend = InTurn([ONE, ONE_MORE, THREE])
    result = await make(backend).run(QUESTION)
    assert "checker" not in backend.tags
    assert "bubblewrap" in events(result, "form.off")[0]["reason"]
    asked = InTurn([ONE, ONE_MORE, THREE])
    result = await make(asked, verify=True).run(QUESTION)
    assert "checker" in asked.tags and result.final_response == THREE


async def test_a_question_without_form_words_or_the_setting_off_writes_no_checker() -> None:
    plain = InTurn([ONE, ONE_MORE, THREE])
    await make(plain).run("Why is the sky blue?")
    off = InTurn([ONE, ONE_MORE, THREE])
    await make(off, check_form="off").run(QUESTION)
    assert "checker" not in plain.tags and "checker" not in off.tags


async def test_a_stated_form_is_checked_without_a_model_written_checker() -> None:
    # The README's question: the program reads "three sentences"; no checker is written,
    # no sandbox is needed, and the failure the reviser reads is the program's.
    backend = InTurn([ONE, ONE_MORE, ONE])
    result = await make(backend, check_form="stated").run(
        "Why is the sky blue? Answer in three sentences."
    )
    assert "checker" not in backend.tags and result.final_response == THREE
    assert events(result, "form.checker")[0] == {
        **events(result, "form.checker")[0],
        "source": "stated",
        "asked": ["exactly 3 sentences"],
    }
    [asked] = backend.revised
    assert "- the question asks for exactly 3 sentences; the answer has 1" in asked


async def test_a_missed_sentence_count_is_revised_as_a_numbered_list_the_program_joins() -> None:
    # A small model asked again for "three sentences" wrote one; asked for a numbered
    # list of three, it numbers three, and the program writes them as prose.
    listed = "1. Sunlight holds every colour.\n2. Air scatters blue most.\n3. So the sky is blue."
    backend = InTurn([ONE, ONE_MORE, ONE], revision=listed)
    result = await make(backend, check_form="stated").run(
        "Why is the sky blue? Answer in three sentences."
    )
    [asked] = backend.revised
    assert "numbered list of exactly 3 sentences" in asked
    assert events(result, "form.revise")[0]["numbered"] == 3
    assert result.final_response == (
        "Sunlight holds every colour. Air scatters blue most. So the sky is blue."
    )
    assert events(result, "form.selected")[0]["chosen"] == "reviser"
    # --json's checks: what the check found in each answer, the revision's included.
    checks = result.to_dict()["checks"]
    assert [c["agent"] for c in checks] == [*(p.agent for p in result.layer_history[0]), "reviser"]
    assert [c["failures"] for c in checks[:3]] == [
        ["the question asks for exactly 3 sentences; the answer has 1"]
    ] * 3
    assert [c["passed"] for c in checks] == [False, False, False, True]


async def test_the_terminal_says_what_is_checked_and_what_was_chosen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moa_local.cli.progress import ProgressPrinter

    moa = make(InTurn([ONE, ONE_MORE, ONE]), check_form="stated")
    moa.observers = [ProgressPrinter(verbose=False)]
    await moa.run("Why is the sky blue? Answer in three sentences.")
    lines = capsys.readouterr().err.splitlines()
    assert "form: the question asks for exactly 3 sentences" in lines
    assert any(
        line.startswith("form: revising echo:x@") and "answer (the question asks" in line
        for line in lines
    )
    assert lines[-1].startswith("form: chose reviser (no candidate met the form asked for")
