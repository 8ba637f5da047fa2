"""An answer carries the proposal it is: the result reports the candidate the chooser
chose, never one found again by its text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.echo import EchoBackend
from moa_local.engine.choose import CHOOSERS
from moa_local.engine.state import Answer, Run
from moa_local.result import Proposal
from tests.engine.test_strategies import QUESTION, RIGHT, WRONG, Scripted

SAME = "reply=Answer%3A%207&logprob=-0.5"
# Two agents give the very same text; b's model is the stronger, so b's
# answer is the greedy one every tie rule keeps.
TWINS = [f"echo:a?{SAME}", f"echo:b?{SAME}&params=9e9"]
TWO = ["echo:a", "echo:b"]


def make(backend: EchoBackend, **kwargs: Any) -> MoA:
    settings: dict[str, Any] = {"strategy": "model", "router": "off", "verify": False}
    return MoA(backends={"echo": backend}, trace_dir="", **{**settings, **kwargs})


@pytest.mark.parametrize(
    "settings",
    [
        {"aggregate": "vote"},
        {"aggregate": "consensus"},
        {"aggregate": "confidence"},
        {"aggregate": "auto"},
        {"aggregate": "select", "aggregator": "echo:agg?reply=2"},  # names candidate 2
        {"router": "agree", "layers": 2},  # the layer agrees: the strongest answer stands
    ],
    ids=["vote", "consensus", "confidence", "auto", "select", "router"],
)
async def test_of_two_identical_answers_the_chosen_one_is_reported(
    settings: dict[str, Any],
) -> None:
    settings = {"aggregator": "echo:agg", "layers": 1, **settings}
    result = await make(EchoBackend(), proposers=TWINS, **settings).run("What is 3 + 4?")
    first, second = result.layer_history[0]
    assert first.content == second.content == "Answer: 7"
    decision = result.decisions[-1]  # the router's names no agent: it stops the run
    assert (
        decision["chosen"] == second.agent if "chosen" in decision else decision["action"] == "stop"
    )
    assert result.aggregator is second
    assert result.chosen is second
    assert [id(p) for p in result.candidates] == [id(first), id(second)]
    assert result.to_dict()["chosen"] == {"layer": 1, "agent": second.agent}


class NewText:
    """A way of choosing that writes its own answer, with no model."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        return Answer("Seven.")


async def test_a_chooser_returning_new_text_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CHOOSERS, "vote", NewText())
    moa = make(EchoBackend(), proposers=TWINS, aggregator="echo:agg", layers=1, aggregate="vote")
    result = await moa.run("What is 3 + 4?")
    assert result.final_response == "Seven."
    assert result.chosen is None
    assert (result.aggregator.agent, result.aggregator.content) == ("chooser", "Seven.")
    # It used no model: only the proposers count.
    assert result.models_used == TWINS
    assert result.usage["total_tokens"] == sum(
        p.prompt_tokens + p.completion_tokens for p in result.layer_history[0]
    )


@pytest.mark.parametrize("aggregate", ["vote", "consensus", "confidence", "auto"])
async def test_a_final_agent_rewrites_a_chosen_candidate(aggregate: str) -> None:
    moa = make(
        EchoBackend(),
        proposers=TWINS,
        aggregator="echo:agg",
        final_agent="echo:fin?reply=Seven.",
        layers=1,
        aggregate=aggregate,
    )
    result = await moa.run("What is 3 + 4?")
    assert result.final_response == "Seven."
    assert result.final_agent is not None and result.final_agent.content == "Seven."
    assert result.aggregator is result.layer_history[0][1]
    assert result.chosen is result.aggregator


async def test_a_synthesis_is_new_text_and_the_whole_candidate_it_gives_way_to_is_chosen() -> None:
    broken = "```python\ndef add_one(x):\n    return y\n```"
    backend = Scripted({"a": RIGHT, "b": WRONG, "agg": broken})
    moa = make(backend, proposers=TWO, aggregator="echo:agg", layers=1, aggregate="synthesize")
    result = await moa.run(QUESTION)
    a, _ = result.layer_history[0]
    assert result.final_response == RIGHT
    assert result.chosen is a  # the whole-program check took a's
    assert result.aggregator.agent == "aggregator"  # the synthesis still stands for it
    assert result.aggregator.content == broken

    backend = Scripted({"a": RIGHT, "b": WRONG, "agg": RIGHT})
    moa = make(backend, proposers=TWO, aggregator="echo:agg", layers=1, aggregate="synthesize")
    result = await moa.run(QUESTION)
    assert result.chosen is None
    assert result.aggregator.agent == "aggregator"
    assert len(result.candidates) == 2


async def test_verified_chooses_among_the_aggregate_and_the_candidates() -> None:
    backend = Scripted({"a": WRONG, "b": RIGHT, "agg": WRONG})
    moa = make(backend, proposers=TWO, aggregator="echo:agg", layers=1, verify=True)
    result = await moa.run(QUESTION)
    _, b = result.layer_history[0]
    assert result.chosen is b
    assert result.aggregator.agent == "aggregator"
    assert result.candidates[0] is result.aggregator
    assert [id(p) for p in result.candidates[1:]] == [id(p) for p in result.layer_history[0]]
