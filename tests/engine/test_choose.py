"""The ways a mixture ends are found by name in one registry, and run.py asks it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from moa_local import MoA
from moa_local.backends.echo import EchoBackend
from moa_local.config import AGGREGATIONS
from moa_local.engine.choose import CHOOSERS
from moa_local.engine.state import Answer, Run
from moa_local.result import Proposal


def test_every_aggregate_setting_names_a_chooser() -> None:
    # "verified" is chosen by verification, not by the aggregate setting.
    assert set(CHOOSERS) == {*AGGREGATIONS, "verified"}


class LastCandidate:
    """A way of choosing that no built-in has: the last candidate, as it is."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        self.seen = [c.agent for c in candidates]
        return Answer.of(candidates[-1], candidates)


@pytest.mark.parametrize("name", AGGREGATIONS)
async def test_the_run_ends_with_the_registered_chooser(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chooser = LastCandidate()
    monkeypatch.setitem(CHOOSERS, name, chooser)
    moa = MoA(
        proposers=["echo:a", "echo:b"],
        aggregator="echo:agg",
        layers=1,
        aggregate=name,
        backends={"echo": EchoBackend()},
        trace_dir="",
    )
    result = await moa.run("Why is the sky blue?")
    assert len(chooser.seen) == 2  # both candidates of the last layer
    assert result.final_response == result.layer_history[-1][-1].content
    assert result.aggregator is result.layer_history[-1][-1]


async def test_select_returns_a_lone_candidate_as_it_was_written() -> None:
    backend = EchoBackend()
    moa = MoA(
        proposers=["echo:a?reply=Rivers%20run%20to%20the%20sea.", "echo:b?fail=1"],
        aggregator="echo:agg",
        layers=1,
        aggregate="select",
        backends={"echo": backend},
        trace_dir="",
    )
    result = await moa.run("Tell me about rivers, in detail.")
    assert result.final_response == "Rivers run to the sea."
    assert [r.tag for r in backend.stats.requests if r.model.name == "echo:agg"] == []
    assert result.decisions[-1] == {
        "event": "aggregate.select",
        "chosen": result.layer_history[0][0].agent,
        "reason": "the only candidate",
    }
