"""Votes that sample until settled: two agreeing samples stop, a split draws more, free
text draws the layer as before (scripted echo models)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.base import GenerateRequest
from moa_local.backends.echo import EchoBackend
from moa_local.engine.settle import majority_probability, settled
from moa_local.trace import read_trace

QUESTION = "What is 3 + 4? End with 'Answer: N'."


class InTurn(EchoBackend):
    """One echo model whose samples are ``replies`` in the order they are asked for."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies, self.samples = replies, 0

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        self.samples += 1
        return self.replies[min(self.samples, len(self.replies)) - 1]


def make(backend: EchoBackend, **settings: Any) -> MoA:
    defaults: dict[str, Any] = {
        "proposers": ["echo:x"],
        "aggregator": "echo:x",
        "strategy": "temperature",
        "num_proposers": 3,
        "layers": 1,
        "aggregate": "auto",
        "router": "off",
        "max_samples": 5,
        "trace_dir": "traces",
    }
    return MoA(backends={"echo": backend}, **{**defaults, **settings})


def stops(result: Any) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == "settle.stop"]


def test_the_beta_rule_and_the_lead_that_cannot_be_caught() -> None:
    assert majority_probability(2, 0) == pytest.approx(0.875)
    assert majority_probability(4, 0) == pytest.approx(1 - 1 / 32)
    assert majority_probability(3, 1) == pytest.approx(1 - 6 / 32)
    assert settled(Counter({"7": 2}), 3) == "all 2 samples give the same answer"
    assert settled(Counter({"7": 1, "8": 1}), 3) is None
    assert settled(Counter({"7": 2, "8": 1}), 2) is None
    assert "can no longer lose" in (settled(Counter({"7": 3, "8": 1}), 1) or "")
    assert "probability 0.96" in (settled(Counter({"7": 6, "9": 1}), 9) or "")


async def test_two_agreeing_samples_settle_the_vote() -> None:
    backend = InTurn(["So 7.\nAnswer: 7", "Answer: 7", "Answer: 9"])
    result = await make(backend).run(QUESTION)
    assert backend.samples == 2 and result.final_response == "So 7.\nAnswer: 7"
    assert stops(result)[0]["reason"] == "all 2 samples give the same answer"


def test_the_terminal_says_when_the_vote_settled(capsys: pytest.CaptureFixture[str]) -> None:
    from moa_local.cli.progress import ProgressPrinter

    reason = "all 2 samples give the same answer"
    ProgressPrinter(verbose=False)("settle.stop", {"samples": 2, "reason": reason, "layer": 1})
    ProgressPrinter(verbose=False)("settle.stop", {"samples": 3, "reason": "free text"})
    assert capsys.readouterr().err == f"stopped after 2 samples: {reason}\n"


async def test_a_split_draws_more_until_the_leader_cannot_lose() -> None:
    backend = InTurn(["Answer: 8", "Answer: 7", "Answer: 7", "Answer: 7", "Answer: 8"])
    result = await make(backend).run(QUESTION)
    # 8, 7 (split); 7 (2 to 1, 2 more allowed); 7 (3 to 1, 1 more allowed): settled.
    assert backend.samples == 4
    assert result.final_response == "Answer: 7"
    assert "can no longer lose" in stops(result)[0]["reason"]
    extra = [p.agent for p in result.layer_history[0]][3:]
    assert extra == [f"{result.layer_history[0][2].agent}+1"]  # beyond the plan's three


async def test_free_text_draws_the_layer_as_before() -> None:
    prose = ["Paris is lovely in spring.", "Spring in Paris is mild.", "Go in May."]
    backend = InTurn(prose)
    result = await make(backend).run("Tell me about spring in Paris.")
    assert backend.samples == 3 and stops(result)[0]["reason"] == "free text"


async def test_off_draws_every_agent_at_once() -> None:
    backend = InTurn(["Answer: 7", "Answer: 7", "Answer: 7"])
    result = await make(backend, max_samples=0).run(QUESTION)
    assert backend.samples == 3 and stops(result) == []
