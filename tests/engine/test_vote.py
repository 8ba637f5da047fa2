"""aggregate = "vote": final answers read from each reply, the most common one wins."""

from __future__ import annotations

import math
from typing import Any

import pytest

from moa_local import MoA
from moa_local.answers import final_answer
from moa_local.backends.base import GenerateRequest
from moa_local.backends.echo import EchoBackend
from moa_local.engine.choose.confidence import TEMPERATURE, weights
from moa_local.engine.choose.vote import CUT
from moa_local.trace import read_trace


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("Reasoning...\nAnswer: (B) blue", "b"),
        ("So it is 3.\nAnswer: three", "3"),
        ("Answer: 1,024.", "1024"),
        ("Final answer: 12", "12"),
        ("Answer: Paris", "paris"),
        ("(C)", "c"),
        ("C", "c"),
        ("Yes.", "yes"),
        ("42", "42"),
        ("The sky is blue because of scattering.", None),
        ("Step 1...\nThe correct answer is: (A)", "a"),
        ("So the answer is twenty-one.", "21"),
        ("**Answer:** \\boxed{7}", "7"),
        ("Answer:\n(D) Tuesday", "d"),
        ("Answer: -3.0", "-3"),
        ("line one\nline two", None),
    ],
)
def test_final_answer_reads_the_answer_not_the_wording(reply: str, answer: str | None) -> None:
    assert final_answer(reply) == answer


def test_an_options_text_counts_as_its_letter() -> None:
    question = "Which is a fruit?\nOptions:\n(A) a carrot\n(B) an apple\n"
    assert final_answer("Answer: an apple", question=question) == "b"
    assert final_answer("Answer: (B)", question=question) == "b"
    assert final_answer("Answer: a pear", question=question) == "a pear"


def test_equal_programs_have_one_answer_whatever_their_comments() -> None:
    one = "```python\ndef f(x):\n    # add one\n    return x + 1\n```"
    two = "Here:\n```python\ndef f(x):\n    return x + 1\n```"
    other = "```python\ndef f(x):\n    return x + 2\n```"
    assert final_answer(one, code=True) == final_answer(two, code=True)
    assert final_answer(one, code=True) != final_answer(other, code=True)


class Scripted(EchoBackend):
    """Echo models that answer a fixed reply per model name (``echo:NAME``)."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__()
        self.replies = replies

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        return self.replies[request.model.name.removeprefix("echo:")]


async def vote(
    replies: dict[str, str], question: str = "How many?", **settings: Any
) -> tuple[Any, dict]:
    backend = Scripted(replies)
    moa = MoA(
        **settings,
        proposers=[f"echo:{name}" for name in replies],
        aggregator=f"echo:{next(iter(replies))}",
        layers=1,
        strategy="model",
        aggregate="vote",
        backends={"echo": backend},
        trace_dir="traces",
    )
    result = await moa.run(question)
    event = next(e for e in read_trace(result.trace_file) if e["event"] == "aggregate.vote")
    # A vote runs no model: only the proposers generated.
    assert len(backend.stats.requests) == len(replies)
    return result, event


async def test_the_most_common_answer_wins_however_it_is_written() -> None:
    result, event = await vote({"a": "Answer: 5", "b": "It is 4.\nAnswer: 4", "c": "Answer: four"})
    assert result.final_response == "It is 4.\nAnswer: 4"  # b: the first of the winning group
    assert event["chosen"] == "echo:b"
    assert list(event["answers"].values()) == ["5", "4", "4"]
    assert "2 of 3" in event["reason"]
    assert result.decisions[-1]["event"] == "aggregate.vote"


async def test_a_candidate_cut_at_max_tokens_has_no_vote() -> None:
    # b is cut after four words, where it reads 5: a vote of 5 would win with c's.
    replies = {
        "a": "Answer: 3",
        "b": "Answer: 5\nBut wait, let me redo it. Answer: 3",
        "c": "Answer: 5",
    }
    result, event = await vote(replies, max_tokens=4)
    assert event["answers"] == {"echo:a": "3", "echo:b": CUT, "echo:c": "5"}
    assert result.final_response == "Answer: 3"  # a tie of the whole ones: the greedy one
    assert "tied" in event["reason"]


async def test_a_tie_keeps_the_greedy_candidate() -> None:
    result, event = await vote({"a": "Answer: 1", "b": "Answer: 2"})
    assert result.final_response == "Answer: 1"
    assert "tied" in event["reason"]


async def test_no_readable_answer_keeps_the_greedy_candidate() -> None:
    result, event = await vote({"a": "It depends on the day.", "b": "Hard to say for sure."})
    assert result.final_response == "It depends on the day."
    assert "no candidate's answer could be read" in event["reason"]
    assert set(event["answers"].values()) == {None}


async def test_programs_vote_by_their_normal_form() -> None:
    question = "Write a Python function f(x) that adds one."
    result, event = await vote(
        {
            "a": "```python\ndef f(x):\n    return x + 2\n```",
            "b": "```python\ndef f(x):\n    # one more\n    return x + 1\n```",
            "c": "Sure:\n```python\ndef f(x):\n    return x + 1\n```",
        },
        question,
    )
    assert "return x + 1" in result.final_response and "# one more" in result.final_response
    assert event["answers"]["echo:b"] == event["answers"]["echo:c"] != event["answers"]["echo:a"]
    assert result.program == "def f(x):\n    # one more\n    return x + 1"


async def confident(replies: dict[str, tuple[str, float | None]]) -> tuple[Any, dict]:
    """A confidence-weighted vote over echo models answering ``reply`` at ``logprob``."""
    names = []
    for name, (reply, logprob) in replies.items():
        option = "" if logprob is None else f"&logprob={logprob}"
        names.append(f"echo:{name}?reply={reply}{option}")
    moa = MoA(
        proposers=names,
        aggregator=names[0],
        layers=1,
        strategy="model",
        aggregate="confidence",
        backends={"echo": EchoBackend()},
        trace_dir="traces",
    )
    result = await moa.run("How many?")
    event = next(e for e in read_trace(result.trace_file) if e["event"] == "aggregate.confidence")
    return result, event


async def test_a_confident_sample_outweighs_two_unsure_ones() -> None:
    result, event = await confident(
        {"a": ("Answer: 4", -1.0), "b": ("Answer: four", -1.0), "c": ("Answer: 5", -0.2)}
    )
    assert result.final_response == "Answer: 5"
    assert event["chosen"].startswith("echo:c") and event["weights"][event["chosen"]] > 0.99
    assert sorted(event["mean_logprobs"].values()) == [-1.0, -1.0, -0.2]


async def test_equal_confidence_is_a_plain_vote() -> None:
    result, event = await confident(
        {"a": ("Answer: 5", -0.5), "b": ("Answer: 4", -0.5), "c": ("Answer: four", -0.5)}
    )
    assert result.final_response == "Answer: 4"  # b: the greediest of the majority
    assert "0.67 of the weight" in event["reason"]


async def test_without_logprobs_the_plain_vote_decides() -> None:
    result, event = await confident(
        {"a": ("Answer: 4", -0.1), "b": ("Answer: 5", None), "c": ("Answer: 5", None)}
    )
    assert result.final_response == "Answer: 5"
    assert event["chosen"] is None and "plain vote" in event["reason"]
    assert result.decisions[-1]["event"] == "aggregate.vote"


def test_weights_are_a_softmax_of_confidence() -> None:
    assert weights([-0.5, -0.5]) == pytest.approx([0.5, 0.5])
    low, high = weights([-0.3, -0.3 + TEMPERATURE * math.log(3)])
    assert high == pytest.approx(3 * low) and low + high == pytest.approx(1)
