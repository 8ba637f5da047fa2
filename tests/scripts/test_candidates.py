"""scripts/candidates.py: every way of choosing scored on the candidates a run logged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from moa_local.evals.gsm8k import GSM8KSuite
from moa_local.evals.suite import Problem

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "candidates.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("candidates_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TwoSums(GSM8KSuite):
    """Two GSM8K-style items scored by the real GSM8K scorer, without the wheel."""

    def __init__(self) -> None:
        self.items = [
            Problem("gsm8k", 0, "gsm8k/0", "What is 6 + 7?", {"gold": "13"}),
            Problem("gsm8k", 1, "gsm8k/1", "What is 2,000 + 125?", {"gold": "2,125"}),
        ]

    def problems(self, split: str = "dev") -> list[Problem]:
        return list(self.items)


def _candidate(text: str, temperature: float) -> dict[str, Any]:
    return {"layer": 1, "agent": "a", "temperature": temperature, "content": text,
            "error": None, "mean_logprob": -0.5}  # fmt: skip


def test_greedy_vote_and_oracle_are_scored_by_the_suite_scorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    monkeypatch.setattr(script, "load_suite", lambda name, **_: TwoSums())
    records = [
        # Item 0: the greedy sample is wrong, the two others agree on the right answer.
        {"config": "moa", "id": "gsm8k/0", "seconds": 3.0, "answer": "Answer: 13",
         "candidates": [_candidate("6 + 7 = 12.\nAnswer: 12", 0.0),
                        _candidate("So it is 13.\nAnswer: 13", 0.7),
                        _candidate("The answer is 13.", 0.7)]},
        # Item 1: all wrong but one sample, which the vote cannot find.
        {"config": "moa", "id": "gsm8k/1", "seconds": 5.0, "answer": "Answer: 2100",
         "candidates": [_candidate("Answer: 2100", 0.0), _candidate("Answer: 2100", 0.7),
                        _candidate("Answer: 2,125", 0.7)]},
    ]  # fmt: skip
    (tmp_path / "gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    assert script.main(["gsm8k", "--configs", "moa", "--log-dir", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["config"] == "moa" and row["n"] == 2
    assert row["answer"] == 50.0 and row["greedy"] == 0.0
    assert row["vote"] == 50.0 and row["oracle"] == 100.0
    assert row["s_per_item"] == 4.0


def test_the_vote_leaves_out_cut_and_slipped_candidates_as_the_real_one_does() -> None:
    script = _script()
    wrong_twice = [
        {**_candidate("2 * 160 = 330, so 534.\nAnswer: 534", 0.0), "slip": "2 * 160 = 320"},
        {**_candidate("Answer: 534", 0.4), "finish_reason": "length"},
        _candidate("Answer: 694", 0.8),
    ]
    assert script.vote(wrong_twice, "What is the total?", False) == 2
    # Every candidate that states an answer slipped: they all count again.
    all_slipped = [{**c, "slip": "a step"} for c in wrong_twice[:1] * 2]
    assert script.vote(all_slipped, "What is the total?", False) == 0
