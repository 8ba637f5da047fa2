"""aggregate = "consensus" (and auto on free text): the candidate that agrees most with
the others is returned as written, with no model judging; ties go to the greedy one."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local import MoA
from moa_local.engine.choose.consensus import consensus_scores
from moa_local.trace import read_trace
from tests.engine.test_vote import Scripted

SHARED = "Rayleigh scattering sends blue light across the sky more than red light."
CLOSE = "Rayleigh scattering sends more blue light across the sky than red light."
ODD = "Because the ocean reflects its colour onto the air above it."


async def run(
    replies: dict[str, str], aggregate: str = "consensus", **settings: Any
) -> tuple[Any, Scripted]:
    backend = Scripted({**replies, "judge": "1"})
    moa = MoA(
        **settings,
        proposers=[f"echo:{name}" for name in replies],
        aggregator="echo:judge",
        layers=1,
        strategy="model",
        aggregate=aggregate,
        router="off",
        backends={"echo": backend},
        trace_dir="traces",
    )
    return await moa.run("Why is the sky blue? Explain in a sentence."), backend


def decision(result: Any, event: str) -> dict[str, Any]:
    (found,) = [e for e in read_trace(result.trace_file) if e["event"] == event]
    return found


def test_the_text_that_shares_most_words_with_the_rest_scores_highest() -> None:
    scores = consensus_scores([ODD, SHARED, CLOSE])
    assert scores[1] > scores[0] and scores[2] > scores[0]
    assert consensus_scores(["same words", "same words"]) == [1.0, 1.0]
    assert consensus_scores(["only one"]) == [0]


async def test_the_outlier_loses_even_when_it_is_the_greedy_candidate() -> None:
    result, backend = await run({"a": ODD, "b": SHARED, "c": CLOSE})
    assert result.final_response == SHARED  # b and c agree; b is the greedier of them
    # no model judged: only the three proposers ran
    assert sorted(r.model.name for r in backend.stats.requests) == ["echo:a", "echo:b", "echo:c"]
    event = decision(result, "aggregate.consensus")
    assert event["chosen"] == "echo:b"
    assert event["agreement"]["echo:a"] < event["agreement"]["echo:c"]


async def test_a_candidate_cut_at_max_tokens_is_not_chosen_while_a_whole_one_is_there() -> None:
    cut = SHARED + " And then a long tail that the budget cuts off before it ends."
    also = "Rayleigh scattering sends blue light across the sky, more than the red light."
    result, _ = await run({"a": ODD, "b": cut, "c": CLOSE, "d": also}, max_tokens=14)
    event = decision(result, "aggregate.consensus")
    assert event["chosen"] in ("echo:c", "echo:d") and "echo:b" not in event["agreement"]
    assert "1 cut at max_tokens set aside" in event["reason"]


async def test_a_tie_keeps_the_greedy_candidate() -> None:
    result, _ = await run({"a": "first answer", "b": "second reply", "c": "third text"})
    assert result.final_response == "first answer"
    assert decision(result, "aggregate.consensus")["chosen"] == "echo:a"


async def test_auto_takes_the_consensus_of_free_text_without_asking_the_aggregator() -> None:
    result, backend = await run({"a": ODD, "b": SHARED, "c": CLOSE}, aggregate="auto")
    assert decision(result, "aggregate.auto")["chooser"] == "consensus"
    assert result.final_response == SHARED
    assert not [r for r in backend.stats.requests if r.tag == "select"]


def test_how_the_answer_was_chosen_is_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moa_local.cli.progress import ProgressPrinter

    reason = "echo:b's answer agrees most with the other 2"
    ProgressPrinter(verbose=False)("aggregate.consensus", {"chosen": "echo:b", "reason": reason})
    assert capsys.readouterr().err == f"chose echo:b: {reason}\n"
