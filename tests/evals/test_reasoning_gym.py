"""`moa-local eval reasoning-gym`: seeded items, the package's scorer, task names, the extra.

Most tests use the real ``reasoning-gym`` package (the ``[reasoning]`` extra)
and are skipped, with the pip command, where it is not installed; the
missing-extra test makes its import fail and runs everywhere. The tests that
list a whole split use quick tasks (``zebra_puzzles`` takes about 0.1 s an
item to make).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.errors import ConfigError
from moa_local.evals.reasoning_gym import (
    DEFAULT_TASKS,
    DEV_ITEMS,
    EXTRA_HINT,
    ReasoningGymSuite,
    known_tasks,
)

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("reasoning_gym") is None,
    reason="needs the reasoning extra: pip install 'moa-local[reasoning]'",
)
QUICK = ["calendar_arithmetic", "leg_counting"]
CONFIG = """
[defaults]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 1
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG)
    return path


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["eval", *args])


def _items(suite: ReasoningGymSuite, split: str = "dev") -> list[tuple[str, str, str]]:
    return [(p.id, p.prompt, p.data["entry"]["answer"]) for p in suite.problems(split)]


@needs_package
def test_the_same_seed_gives_the_same_items_and_another_seed_others() -> None:
    first = _items(ReasoningGymSuite(QUICK, seed=0))
    assert first == _items(ReasoningGymSuite(QUICK, seed=0))
    assert len(first) == 2 * DEV_ITEMS
    assert [i[0] for i in first[:2]] == [
        "calendar_arithmetic/seed0/0",
        "calendar_arithmetic/seed0/1",
    ]
    assert first[DEV_ITEMS][0] == "leg_counting/seed0/0"
    # The dev split is the first items of "all": item i does not depend on how many are made.
    assert _items(ReasoningGymSuite(QUICK, seed=0), "all")[:DEV_ITEMS] == first[:DEV_ITEMS]
    # The confirmation split is the next hundred items of each task.
    confirm = [i[0] for i in _items(ReasoningGymSuite(QUICK, seed=0), "confirm")]
    assert confirm[0] == f"calendar_arithmetic/seed0/{DEV_ITEMS}" and len(confirm) == 2 * DEV_ITEMS
    # Another seed: other ids (the log keeps the seeds apart) and other questions.
    other = _items(ReasoningGymSuite(QUICK, seed=1))
    assert other[0][0] == "calendar_arithmetic/seed1/0"
    assert sum(a[1] == b[1] for a, b in zip(first, other, strict=True)) < len(first) // 4
    # Each item asks for the final line the answer reader reads.
    assert all(i[1].endswith('"Answer: ...", giving only the final answer.') for i in first)


@needs_package
@pytest.mark.parametrize("task", DEFAULT_TASKS)
def test_the_scorer_passes_the_gold_answer_in_a_reply_and_fails_a_wrong_one(task: str) -> None:
    suite = ReasoningGymSuite([task])
    for index in range(3):
        problem = suite.problem(task, index)
        gold = problem.data["entry"]["answer"]
        for reply in (
            f"Let me work through it.\nStep 1: ...\nAnswer: {gold}",
            f"Reasoning first.\n\n**Answer:** {gold}.",  # markdown and a full stop
            f'The final answer is: "{gold}"',
        ):
            score = suite.score(problem, reply)
            assert score.passed and score.value == 1.0, (reply, score)
            assert score.details["seed"] == 0 and score.details["reward"] == 1.0
        wrong = suite.score(problem, f"I think so.\nAnswer: {gold}{gold}7")
        assert wrong.outcome == "wrong" and wrong.value == 0.0
        # The answer line decides, not a right answer mentioned earlier in the reasoning.
        assert not suite.score(problem, f"Maybe {gold}?\nAnswer: 12345 zzz").passed
        assert suite.score(problem, "   ").outcome == "no_answer"


@needs_package
def test_partial_credit_from_the_package_does_not_pass() -> None:
    suite = ReasoningGymSuite(["leg_counting"])
    problem = suite.problem("leg_counting", 0)
    gold = problem.data["entry"]["answer"]
    score = suite.score(problem, f"Answer: {gold} legs")
    # The package rewards a reply containing the number (0 < reward < 1): not a pass here.
    assert score.outcome == "wrong" and 0 < score.details["reward"] < 1


@needs_package
def test_the_default_tasks_exist_and_an_unknown_task_is_a_one_line_error() -> None:
    assert set(DEFAULT_TASKS) <= set(known_tasks())
    with pytest.raises(ConfigError) as caught:
        ReasoningGymSuite(["calendar_arithmetic", "calender_arithmetic"])
    message = str(caught.value)
    assert message.startswith(
        "unknown reasoning-gym task 'calender_arithmetic' (did you mean calendar_arithmetic"
    )
    assert "zebra_puzzles" in message and "\n" not in message
    with pytest.raises(ConfigError, match="cannot be generated with its default settings"):
        ReasoningGymSuite(["composite"])  # needs a config naming its parts
    with pytest.raises(ConfigError, match="--tasks is empty"):
        ReasoningGymSuite([])


@needs_package
def test_an_unknown_task_on_the_command_line(config_file: Path) -> None:
    result = _invoke("reasoning-gym", "--config", str(config_file), "--tasks", "leg_countin")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: unknown reasoning-gym task 'leg_countin' (did you mean leg_counting"
    )
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert not Path("logs/eval/reasoning-gym.jsonl").exists()


def test_a_missing_extra_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # importing it raises ImportError
    with pytest.raises(ConfigError) as caught:
        ReasoningGymSuite()
    assert str(caught.value) == EXTRA_HINT
    assert "pip install 'moa-local[reasoning]'" in EXTRA_HINT
    result = _invoke("reasoning-gym", "--config", str(config_file), "--configs", "moa")
    assert result.exit_code == 2
    assert result.stderr == f"error: {EXTRA_HINT}\n"


@needs_package
def test_eval_reasoning_gym_end_to_end_names_the_data_seed(config_file: Path) -> None:
    # Item 0 of calendar_arithmetic with seed 0 asks whether 2020 is a leap year.
    assert ReasoningGymSuite(QUICK).problem("calendar_arithmetic", 0).data["entry"]["answer"] == (
        "Yes"
    )
    reply = "single:echo:a?reply=Answer: Yes"
    args = ["reasoning-gym", "--config", str(config_file), "--configs", reply]
    result = _invoke(*args, "--tasks", ",".join(QUICK), "--limit", "1")
    assert result.exit_code == 0, result.output
    heading, table = result.stdout.split("\n", 1)
    assert heading == (
        "reasoning-gym 0.1.25, data seed 0 (the dev seed); tasks: calendar_arithmetic, leg_counting"
    )
    assert "calendar_arithmetic" in table and "leg_counting" in table

    result = _invoke(*args, "--tasks", ",".join(QUICK), "--limit", "1", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["n"] == 2 and set(summary["groups"]) == set(QUICK)
    assert "reasoning-gym 0.1.25, data seed 1 (not the dev seed 0)" in result.stderr
    records = [
        json.loads(line) for line in Path("logs/eval/reasoning-gym.jsonl").read_text().splitlines()
    ]
    # Both seeds are in the log, apart: each record names its seed.
    assert sorted((r["id"], r["details"]["seed"]) for r in records) == [
        ("calendar_arithmetic/seed0/0", 0),
        ("calendar_arithmetic/seed1/0", 1),
        ("leg_counting/seed0/0", 0),
        ("leg_counting/seed1/0", 1),
    ]
    seed0 = {r["id"]: r for r in records}
    assert seed0["calendar_arithmetic/seed0/0"]["outcome"] == "pass"
    assert seed0["leg_counting/seed0/0"]["outcome"] == "wrong"
