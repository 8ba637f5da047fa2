"""scripts/cascade_samples.py: ways to stop the verified cascade, priced on a logged run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from moa_local.evals.suite import Problem, Score

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cascade_samples.py"
QUESTION = 'def add_one(x):\n    """Return x plus one.\n    >>> add_one(1)\n    2\n    """\n'
WRONG = "```python\ndef add_one(x):\n    return x + 2\n```"
WRONG_OTHER = "```python\ndef add_one(x):\n    return x * 5\n```"
RIGHT = "```python\ndef add_one(x):\n    return x + 1\n```"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cascade_samples_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


class OneProblem:
    """One HumanEval-like problem; a program is right when it adds one."""

    def problems(self, split: str = "dev") -> list[Problem]:
        return [Problem("humaneval", 0, "HumanEval/0", QUESTION, {})]

    def score(self, problem: Problem, answer: str) -> Score:
        right = "x + 1" in answer
        return Score("pass" if right else "wrong", 1.0 if right else 0.0)


def _candidate(text: str, agent: str) -> dict[str, Any]:
    return {"layer": 1, "agent": agent, "temperature": 0.0, "content": text, "error": None,
            "seconds": 10.0, "completion_tokens": 20}  # fmt: skip


def test_each_rule_is_scored_and_priced_on_the_logged_candidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    monkeypatch.setattr(script, "load_suite", lambda name: OneProblem())
    records = [
        # Two samples pass none of the examples; the third passes.
        {"config": "moa", "id": "HumanEval/0", "seconds": 40.0, "score": 1.0,
         "aggregator": {"seconds": 5.0},
         "candidates": [_candidate(WRONG, "a"), _candidate(WRONG_OTHER, "b"),
                        _candidate(RIGHT, "c")]},
        {"config": "single:m", "id": "HumanEval/0", "seconds": 8.0, "score": 0.0},
    ]  # fmt: skip
    (tmp_path / "humaneval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    argv = ["humaneval", "--single", "single:m", "--log-dir", str(tmp_path), "--json"]
    assert script.main(argv) == 0
    rows = {row["rule"]: row for row in json.loads(capsys.readouterr().out)}
    # Drawn to the end, the third sample passes and ends the run: 30 s of samples.
    assert (rows["as run"]["score"], rows["as run"]["s_per_item"]) == (100.0, 30.0)
    # Stalled stops after the first two (both pass nothing): wrong, 20 s, and the
    # synthesis the run made when nothing passed.
    stalled = rows["verify_stop=stalled"]
    assert (stalled["score"], stalled["s_per_item"], stalled["samples"]) == (0.0, 25.0, 2)
    assert rows["verify_stop=stalled, no synthesis"]["s_per_item"] == 20.0
    assert rows["the config's own answers"]["x_single"] == 5.0  # 40 s against 8
