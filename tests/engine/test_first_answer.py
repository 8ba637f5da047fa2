"""The first answer first: free text is answered by the greedy sample, streamed, and more
samples are drawn only when its stated form fails or it states a short answer; a
replacement reads right in the stream and in the result (scripted echo models)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.echo import EchoBackend
from moa_local.cli.progress import AnswerStream, ProgressPrinter
from moa_local.trace import read_trace
from tests.engine.test_settle import InTurn

FREE = "Tell me about the colour of the sky."
THREE_ASKED = "Why is the sky blue? Answer in exactly three sentences."
ONE = "Air scatters blue light more than red light."
THREE = (
    "Sunlight holds every colour. Air molecules scatter short blue waves more than red "
    "ones. So blue light reaches our eyes from every part of the sky."
)


def make(backend: EchoBackend, **settings: Any) -> MoA:
    defaults: dict[str, Any] = {
        "proposers": ["echo:x"],
        "aggregator": "echo:x",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregate": "auto",
        "router": "agree",
        "check_form": "stated",
        "unchecked_text": "greedy",
        "trace_dir": "traces",
    }
    return MoA(backends={"echo": backend}, **{**defaults, **settings})


async def ask(moa: MoA, question: str) -> tuple[Any, str]:
    shown: list[str] = []
    result = await moa.run(question, on_text=shown.append)
    return result, "".join(shown)


def decisions(result: Any, event: str) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == event]


async def test_unchecked_free_text_costs_one_answer_and_streams_it() -> None:
    backend = InTurn([ONE, THREE, THREE])
    result, shown = await ask(make(backend), FREE)
    assert backend.samples == 1
    assert result.final_response == ONE
    assert shown == ONE
    [stop] = decisions(result, "first.stop")
    assert "nothing to check" in stop["reason"]


async def test_consensus_for_unchecked_text_draws_the_layer_and_replaces_visibly() -> None:
    backend = InTurn([ONE, THREE, THREE])
    result, shown = await ask(make(backend, unchecked_text="consensus"), FREE)
    assert backend.samples == 3
    assert result.final_response == THREE
    assert shown.startswith(ONE)
    assert "[the answer above is replaced;" in shown
    assert shown.endswith(THREE)
    assert decisions(result, "answer.replaced")


async def test_a_first_answer_that_meets_the_stated_form_ends_the_run() -> None:
    backend = InTurn([THREE, ONE, ONE])
    result, shown = await ask(make(backend), THREE_ASKED)
    assert backend.samples == 1
    assert result.final_response == THREE == shown
    [stop] = decisions(result, "first.stop")
    assert "meets the form" in stop["reason"]
    assert result.to_dict()["checks"] == [
        {"layer": 1, "agent": "echo:x@0.00", "passed": True, "failures": [], "error": None}
    ]


async def test_a_first_answer_that_misses_the_form_draws_more_and_the_check_chooses() -> None:
    backend = InTurn([ONE, THREE, ONE])
    result, shown = await ask(make(backend), THREE_ASKED)
    assert backend.samples == 3
    [more] = decisions(result, "first.more")
    assert "misses the form" in more["reason"] and "has 1" in more["reason"]
    # The final answer is the checked one; the stream says it replaces the first.
    assert result.final_response == THREE
    assert shown == f"{ONE}\n\n[the answer above is replaced; echo:x@0.40's answer:]\n\n{THREE}"


async def test_a_short_stated_answer_draws_the_samples_and_the_vote_decides() -> None:
    backend = InTurn(["So Answer: 8", "Answer: 7", "Answer: 7"])
    result, shown = await ask(make(backend), "What is 3 + 4? End with 'Answer: N'.")
    assert backend.samples == 3
    assert result.final_response == "Answer: 7"
    assert "the samples vote" in decisions(result, "first.more")[0]["reason"]
    assert shown.endswith("Answer: 7") and shown.startswith("So Answer: 8")


async def test_a_vote_that_keeps_the_first_answer_shows_it_once() -> None:
    backend = InTurn(["Answer: 7", "Answer: 7", "Answer: 8"])
    result, shown = await ask(make(backend), "What is 3 + 4? End with 'Answer: N'.")
    assert result.final_response == "Answer: 7"
    assert shown == "Answer: 7"
    assert not decisions(result, "answer.replaced")


async def test_without_the_router_the_layer_answers_together_and_nothing_streams_early() -> None:
    backend = InTurn([ONE, THREE, THREE])
    result, shown = await ask(make(backend, router="off"), FREE)
    assert backend.samples == 3
    assert not decisions(result, "first.stop")
    assert shown == result.final_response


async def test_code_questions_keep_their_own_flow() -> None:
    backend = InTurn(["```python\ndef f():\n    return 1\n```"] * 3)
    result, _ = await ask(make(backend, verify=False), "Write a Python function f.")
    assert not decisions(result, "first.stop") and not decisions(result, "first.more")


def test_the_terminal_says_why_the_first_answer_was_kept_or_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    moa = make(InTurn([ONE, THREE, ONE]), observers=[ProgressPrinter(verbose=False)])
    asyncio.run(moa.run(THREE_ASKED, on_text=lambda text: None))
    err = capsys.readouterr().err
    assert "layer 1/1: the first answer first (2 more proposers if it does not settle" in err
    assert "more samples: the first answer does not settle it (it misses the form" in err
    assert "is replaced by echo:x@0.40's" in err
    moa = make(InTurn([ONE]), observers=[ProgressPrinter(verbose=False)])
    asyncio.run(moa.run(FREE, on_text=lambda text: None))
    assert "kept the first answer: nothing to check" in capsys.readouterr().err


class Screen(io.StringIO):
    """A terminal that stdout and stderr share."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_after_the_streamed_first_answer_starts_on_a_line_of_its_own(
    terminal: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    out = Screen() if terminal else io.StringIO()
    answer = AnswerStream(out)
    moa = make(InTurn([ONE]), observers=[ProgressPrinter(False, answer)])
    asyncio.run(moa.run(FREE, on_text=answer.write))
    assert "echo:x@0.00: " in capsys.readouterr().err  # a progress line followed the answer
    # On a terminal the answer's line is ended before it; a pipe gets the answer alone.
    assert out.getvalue() == (ONE + "\n" if terminal else ONE)
    answer.end()
    assert out.getvalue() == ONE + "\n"


async def test_with_max_samples_the_vote_is_drawn_until_settled_the_first_answer_counted() -> None:
    question = "What is 3 + 4? End with 'Answer: N'."
    agreed = InTurn(["Answer: 7", "Answer: 7", "Answer: 8"])
    result, shown = await ask(make(agreed, max_samples=5), question)
    assert agreed.samples == 2 and shown == "Answer: 7"
    assert decisions(result, "settle.stop")[0]["reason"] == "all 2 samples give the same answer"
    split = InTurn(["Answer: 8", "Answer: 7", "Answer: 7", "Answer: 7"])
    result, _ = await ask(make(split, max_samples=5), question)
    assert split.samples == 4 and result.final_response == "Answer: 7"
    assert "can no longer lose" in decisions(result, "settle.stop")[0]["reason"]


async def test_free_text_with_max_samples_still_costs_one_answer() -> None:
    backend = InTurn([ONE, THREE, THREE])
    result, _ = await ask(make(backend, max_samples=5), FREE)
    assert backend.samples == 1 and result.final_response == ONE
