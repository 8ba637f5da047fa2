"""Each sample's worked arithmetic is checked as it arrives: a wrong last step is
repaired (and a streamed answer visibly corrected), a wrong earlier step takes the
sample out of the vote, and nothing changes with the check off or for code (scripted
echo models)."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local.trace import read_trace
from tests.engine.test_first_answer import ask, make
from tests.engine.test_settle import InTurn

QUESTION = "A shop sells 3 cakes at $204, $160 and $330. What is the total? End with 'Answer: N'."
SLIPPED_SUM = "Total = $204 + $160 + $330 = $794.\nAnswer: 794"
RIGHT_SUM = "Adding the three prices gives $694.\nAnswer: 694"
EARLY_SLIP = "First, 2 * 160 = 330.\nThen the total is 204 plus that, 534.\nAnswer: 534"
OTHER = "The prices add up to $534.\nAnswer: 534"


def events(result: Any, event: str) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == event]


async def test_a_wrong_last_step_is_repaired_and_the_streamed_answer_corrected() -> None:
    backend = InTurn([SLIPPED_SUM, RIGHT_SUM, RIGHT_SUM])
    result, shown = await ask(make(backend, max_samples=3), QUESTION)
    assert result.final_response == "Total = $204 + $160 + $330 = $694.\nAnswer: 694"
    # The repaired first sample and the second agree: the vote settles at two.
    assert backend.samples == 2
    [stop] = events(result, "settle.stop")
    assert stop["reason"] == "all 2 samples give the same answer"
    [repaired] = events(result, "arithmetic.repaired")
    assert repaired["step"] == "$204 + $160 + $330 = 694, not $794"
    assert shown.startswith(SLIPPED_SUM)
    assert "[the answer above is corrected: $204 + $160 + $330 = 694, not $794]" in shown
    assert shown.endswith(result.final_response)
    first = result.layer_history[0][0]
    assert first.repaired == repaired["step"] and first.slip == ""


async def test_a_wrong_earlier_step_takes_the_sample_out_of_the_vote() -> None:
    # Without the check, the first two agree on 534 and the vote stops there.
    backend = InTurn([EARLY_SLIP, OTHER, RIGHT_SUM, RIGHT_SUM])
    result, _ = await ask(make(backend, max_samples=4), QUESTION)
    assert backend.samples == 4
    assert result.final_response == RIGHT_SUM
    [slip] = events(result, "arithmetic.slip")
    assert slip["step"] == "2 * 160 = 320, not 330"
    assert result.layer_history[0][0].slip == slip["step"]
    [vote] = events(result, "aggregate.vote")
    assert vote["answers"][slip["agent"]] == "(a wrong step of arithmetic: no vote)"
    assert "2 of 4 candidates" in vote["reason"]


async def test_every_sample_slipped_still_gives_an_answer() -> None:
    backend = InTurn([EARLY_SLIP, EARLY_SLIP, EARLY_SLIP])
    result, _ = await ask(make(backend, max_samples=3), QUESTION)
    assert backend.samples == 3
    assert result.final_response == EARLY_SLIP
    [stop] = events(result, "settle.stop")
    assert stop["reason"] == "3 samples drawn"


async def test_with_the_check_off_nothing_is_read() -> None:
    backend = InTurn([SLIPPED_SUM, SLIPPED_SUM])
    result, shown = await ask(make(backend, max_samples=3, check_arithmetic=False), QUESTION)
    assert result.final_response == SLIPPED_SUM == shown
    assert not events(result, "arithmetic.repaired")


async def test_code_answers_are_not_read() -> None:
    program = "```python\ndef total():\n    return 204 + 160 + 330  # = 794\n```"
    backend = InTurn([program, program, program])
    result, _ = await ask(make(backend, verify=False), "Write a Python function total().")
    assert not events(result, "arithmetic.repaired") and not events(result, "arithmetic.slip")


async def test_an_answer_stated_before_its_wrong_step_is_marked_not_repaired() -> None:
    # Repairing the step alone would leave the answer above it contradicting it.
    before = "Answer: 794\n\nThe total: $204 + $160 + $330 = $794."
    backend = InTurn([before, RIGHT_SUM, RIGHT_SUM])
    result, _ = await ask(make(backend, max_samples=3), QUESTION)
    assert not events(result, "arithmetic.repaired")
    [slip] = events(result, "arithmetic.slip")
    assert slip["step"] == "$204 + $160 + $330 = 694, not $794"
    assert result.final_response == RIGHT_SUM


async def test_a_reader_that_fails_leaves_the_sample_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(text: str) -> list[object]:
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr("moa_local.checks.arithmetic.find_slips", broken)
    backend = InTurn([SLIPPED_SUM, SLIPPED_SUM])
    result, shown = await ask(make(backend, max_samples=3), QUESTION)
    assert result.final_response == SLIPPED_SUM == shown
    warnings = events(result, "trace.warning")
    assert len(warnings) == 2  # one for each sample
    assert all("arithmetic check skipped" in w["message"] for w in warnings)
