"""`moa-local eval bigbench`: task files from the archive, the dev split, scoring, the CLI.

The archive is a small fake ``bigbench-1.0.0.tar.gz`` built here with the real
one's layout, placed where the suite caches the download. One test, run only
with ``MOA_LOCAL_TEST_BIGBENCH=1``, downloads the real 358 MB archive with pip.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from moa_local.answers import answer_text as final_answer
from moa_local.answers import numbers_in
from moa_local.cli import main
from moa_local.errors import ConfigError, PullError
from moa_local.evals import bigbench_data, downloads
from moa_local.evals.bigbench import DEFAULT_TASKS, BigBenchSuite, choose_option, score_answer
from moa_local.evals.bigbench_data import ARCHIVE_NAME, TASKS_ROOT, BigBenchData
from moa_local.evals.runner import first_of_each_group
from moa_local.evals.suite import Problem
from moa_local.evals.summary import summarize

CONFIG = """
[defaults]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 1
"""


def _choice(question: str, right: str, *wrong: str) -> dict[str, Any]:
    return {"input": question, "target_scores": {right: 1, **dict.fromkeys(wrong, 0)}}


LEGS = {
    "name": "legs",
    "task_prefix": "Count the legs.\n\n",
    "examples": [
        _choice("How many legs does a tripod have?", "three", "four", "two"),
        _choice("How many legs does a bird have?", "two", "four", "six"),
        _choice("How many legs does a stool with no back have?", "four", "three", "one"),
        _choice("How many legs does a spider have?", "eight", "six", "ten"),
    ],
}
COUNTING = {
    "name": "three_items",
    "examples": [
        {"input": "I have a pen, a cup and a hat. How many things?", "target": ["three", "3"]},
        {"input": "Is a hat a thing?", "target": "yes"},
        {"input": "I have a fig, a plum and a pear. How many fruits?", "target": ["three", "3"]},
        {"input": "How many days are in three weeks?", "target": ["twenty-one", "21"]},
        {"input": "Is a fig a fruit?", "target": "yes"},
    ],
}  # fmt: skip
TASKS = {
    "legs": LEGS,
    "counting": {"name": "counting", "description": "subtasks only"},
    "counting/three_items": COUNTING,
    "open_ended": {"name": "open_ended", "examples": [{"input": "Write a poem."}]},
}


def build_archive(path: Path, tasks: dict[str, Any], programs: tuple[str, ...]) -> Path:
    """A .tar.gz laid out as bigbench-1.0.0.tar.gz: JSON tasks and programmatic ones."""

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, "bigbench-1.0.0/PKG-INFO", b"Name: bigbench\n")
        for name, task in tasks.items():
            add(tar, f"{TASKS_ROOT}{name}/task.json", json.dumps(task).encode())
            add(tar, f"{TASKS_ROOT}{name}/README.md", b"# a task\n")
        for name in programs:
            add(tar, f"{TASKS_ROOT}{name}/task.py", b"class Task: ...\n")
    return path


def _data_dir() -> Path:
    return Path(os.environ["MOA_LOCAL_HOME"]) / "data"


@pytest.fixture
def archive() -> Path:
    """The fake archive, where the suite keeps the downloaded one."""
    _data_dir().mkdir(parents=True)
    return build_archive(_data_dir() / ARCHIVE_NAME, TASKS, programs=("programmatic",))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG)
    return path


def test_the_dev_split_takes_the_even_examples_of_each_task(archive: Path) -> None:
    suite = BigBenchSuite(["legs", "counting/three_items"])
    dev = suite.problems("dev")
    assert [p.id for p in dev] == [
        "legs/0",
        "legs/2",
        "counting/three_items/0",
        "counting/three_items/2",
        "counting/three_items/4",
    ]
    assert [p.group for p in dev] == ["legs"] * 2 + ["counting/three_items"] * 3
    assert len(suite.problems("all")) == 9
    confirm = suite.problems("confirm")
    assert [p.id for p in confirm] == [
        "legs/1",
        "legs/3",
        "counting/three_items/1",
        "counting/three_items/3",
    ]
    # --limit counts per task.
    assert [p.id for p in first_of_each_group(dev, 1)] == ["legs/0", "counting/three_items/0"]


def test_a_choice_prompt_letters_the_options_in_a_fixed_shuffled_order(archive: Path) -> None:
    (first, *_) = BigBenchSuite(["legs"]).problems("all")
    assert first.prompt.startswith("Count the legs.\n\nHow many legs does a tripod have?\n\n")
    options = first.data["options"]
    assert sorted(options) == ["four", "three", "two"]
    for letter, option in zip("ABC", options, strict=True):
        assert f"\n({letter}) {option}\n" in first.prompt
    assert first.prompt.rstrip().endswith(
        '"Answer: (X)", where X is the letter of the right option.'
    )
    assert first.data["right"] == ["ABC"[options.index("three")]]
    # The same order every time (it does not depend on the run), and not always the
    # file's order, in which the right option comes first.
    again = BigBenchSuite(["legs"], BigBenchData()).problems("all")
    assert [p.data for p in again] == [p.data for p in BigBenchSuite(["legs"]).problems("all")]
    assert {p.data["right"][0] for p in again} != {"A"}


def test_a_choice_answer_is_read_as_a_letter_or_as_the_options_text(archive: Path) -> None:
    problem = BigBenchSuite(["legs"]).problems("all")[0]  # a tripod: "three"
    right = problem.data["right"][0]
    wrong = next(letter for letter in "ABC" if letter != right)
    passing = [
        f"Three legs.\nAnswer: ({right})",
        f"Answer: {right}",
        f"answer: {right.lower()}.",
        f"**Answer:** ({right}) three",
        f"Final answer:\n({right})",
        "It stands on three.\nAnswer: Three.",
        f"So the answer is ({right}).",
        f"Answer: ({wrong})?\nNo, wait.\nAnswer: option {right}",
    ]
    suite = BigBenchSuite(["legs"])
    for answer in passing:
        assert suite.score(problem, answer).outcome == "pass", answer
    assert score_answer(problem.data, f"Answer: ({wrong})").outcome == "wrong"
    assert score_answer(problem.data, "Answer: four").outcome == "wrong"
    assert score_answer(problem.data, "Answer: (D)").outcome == "no_answer"  # past the options
    assert score_answer(problem.data, "Answer: many").outcome == "no_answer"
    assert score_answer(problem.data, "   ").outcome == "no_answer"
    assert choose_option("(A) or (B)", ["x", "y"]) is None  # two letters: no choice


def test_an_exact_target_answer_is_normalized_and_numbers_compare_by_value() -> None:
    three = {"targets": ["three", "3"]}
    for answer in (
        "Answer: 3",
        "Answer: three",
        "answer:  THREE.",
        "A pen, a cup, a hat: 1, 2, 3.\nAnswer: I have 3 things.",
        "Answer: `3`",
        "Answer: $\\boxed{3}$",
        "I count them.\n3",
    ):
        assert score_answer(three, answer).outcome == "pass", answer
    for answer in ("Answer: 4", "Answer: four", "Answer: 3 or 4", "Answer: 33"):
        assert score_answer(three, answer).outcome == "wrong", answer
    assert score_answer({"targets": ["twenty-one", "21"]}, "Answer: twenty one").passed
    assert score_answer({"targets": ["21"]}, "Answer: Twenty-one days").passed
    assert score_answer({"targets": ["yes"]}, "Hmm.\nAnswer: Yes.").passed
    assert not score_answer({"targets": ["yes"]}, "Answer: yes, probably").passed
    assert score_answer({"targets": ["yes"]}, "").outcome == "no_answer"
    assert numbers_in("1,024 ants, three bees and forty-two wasps") == [1024, 3, 42]
    assert final_answer("Answer: (B)\n\nI hope that helps!") == "(B)"
    assert final_answer("reasoning\nso: 7") == "so: 7"  # no Answer line: the last line


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["eval", *args])


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("nope", "error: unknown BIG-bench task 'nope': name a folder under"),
        ("leg", "error: unknown BIG-bench task 'leg' (did you mean legs?)"),
        ("programmatic", "error: BIG-bench task 'programmatic' is programmatic (a task.py,"),
        (
            "counting",
            "error: BIG-bench task 'counting' has no examples of its own: name one of its "
            "subtasks (counting/three_items)",
        ),
        ("open_ended", "error: BIG-bench task 'open_ended' is not exact-answer: its example 0"),
        ("../legs", "error: '../legs' is not a BIG-bench task name"),
    ],
)
def test_a_task_that_cannot_be_run_is_a_one_line_error(
    archive: Path, config_file: Path, task: str, message: str
) -> None:
    # Twice: the first run reads the archive, the second its index.
    for _ in range(2):
        result = _invoke("bigbench", "--config", str(config_file), "--tasks", f"legs,{task}")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(message)
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
        assert not Path("logs/eval/bigbench.jsonl").exists()  # nothing was run


def test_tasks_is_a_usage_error_for_another_suite(config_file: Path) -> None:
    result = _invoke("humaneval", "--config", str(config_file), "--tasks", "legs")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --tasks only applies to the bigbench and reasoning-gym suites, not humaneval\n"
    )


def test_eval_bigbench_end_to_end_with_echo_models(archive: Path, config_file: Path) -> None:
    reply = "single:echo:a?reply=Answer: three"
    args = ["bigbench", "--config", str(config_file), "--configs", f"{reply},single:echo:b"]
    result = _invoke(*args, "--tasks", "legs,counting/three_items", "--json")
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert first["config"] == reply and first["n"] == 5
    # legs dev: a tripod (three: right), a stool (four: wrong); counting dev: three,
    # three, yes. The score is the mean of the two task scores.
    assert first["groups"] == {
        "legs": {"score": 50.0, "n": 2},
        "counting/three_items": {"score": 66.7, "n": 3},
    }
    assert first["score"] == 58.3
    assert first["failures"] == {"wrong": 2}
    # An echo answer repeats the question: no "Answer:" line, no option picked.
    assert second["groups"]["legs"]["score"] == 0.0 and second["failures"]["no_answer"] == 2
    records = [
        json.loads(line) for line in Path("logs/eval/bigbench.jsonl").read_text().splitlines()
    ]
    assert {r["group"] for r in records} == {"legs", "counting/three_items"}
    assert Path("logs/eval/bigbench-dev.png").exists()

    # The table shows each task's score; --limit counts per task (and reuses the log).
    result = _invoke(*args, "--tasks", "legs,counting/three_items", "--limit", "1")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.split("\n\n")[1].splitlines()
    assert header.split()[:3] == ["GROUP", "N", "single:echo:a?reply=Answer:"]
    assert [row.split()[:3] for row in rows] == [
        ["legs", "1", "100.0"],
        ["counting/three_items", "1", "100.0"],
    ]


def test_task_files_are_read_from_the_cache_after_the_first_run(archive: Path) -> None:
    data = BigBenchData()
    assert data.load(["counting/three_items"])["counting/three_items"] == COUNTING
    cached = _data_dir() / "bigbench" / "counting" / "three_items" / "task.json"
    assert json.loads(cached.read_text()) == COUNTING
    index = json.loads((_data_dir() / "bigbench" / "index.json").read_text())
    assert index == {
        "json": ["counting", "counting/three_items", "legs", "open_ended"],
        "programmatic": ["programmatic"],
    }
    archive.write_bytes(b"no longer a tar file")
    assert BigBenchData().load(["counting/three_items"])["counting/three_items"] == COUNTING
    with pytest.raises(ConfigError, match="unknown BIG-bench task 'nope'"):
        BigBenchData().load(["nope"])  # known from the index, without the archive
    with pytest.raises(PullError, match="cannot read the BIG-bench archive .*: delete it and run"):
        BigBenchData().load(["legs"])


def test_the_default_tasks_are_the_dev_tasks() -> None:
    assert (
        BigBenchSuite().tasks
        == list(DEFAULT_TASKS)
        == [
            "date_understanding",
            "logical_deduction/three_objects",
            "tracking_shuffled_objects/three_objects",
            "object_counting",
        ]
    )


def test_a_withdrawn_archive_says_where_to_put_it_and_what_replaces_it(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip with no index and a folder of links holding only bigbench 0.0.1, as
    # PyPI has since 2026-12: pip fails at once, offline, and the index says why.
    links = tmp_path / "links"
    links.mkdir()
    (links / "bigbench-0.0.1.tar.gz").write_bytes(b"")
    _pip_only_looks_in(monkeypatch, str(links))
    result = _invoke("bigbench", "--config", str(config_file), "--tasks", "legs")
    assert result.exit_code == 1, result.output
    # The line of the download's progress (stderr is not a terminal), then the error.
    *_, line = result.stderr.splitlines()
    assert line == (
        "error: bigbench==1.0.0 (BIG-bench data) is no longer on the package index "
        "(since 2026-12 only bigbench 0.0.1 is listed; versions listed here: 0.0.1): "
        "if you have the archive, put bigbench-1.0.0.tar.gz (358,249,635 bytes, sha256 "
        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2) at "
        f"{_data_dir() / ARCHIVE_NAME}; otherwise run the gsm8k, arc or reasoning-gym suite instead"
    )
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output
    assert list(_data_dir().iterdir()) == []


def test_a_download_that_failed_otherwise_keeps_what_pip_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The only place pip looks is a folder that is not there: nobody can say it is gone.
    _pip_only_looks_in(monkeypatch, str(tmp_path / "unmounted"))
    with pytest.raises(PullError) as caught:
        BigBenchData().load(["legs"])
    message = str(caught.value)
    assert "\n" not in message and "no longer on the package index" not in message
    assert message.startswith("pip could not download bigbench==1.0.0 (BIG-bench data): ")
    assert "(check the network or pip's index settings): if you have the archive, put " in message
    replaced = "otherwise run the gsm8k, arc or reasoning-gym suite instead"
    assert message.endswith(f"at {_data_dir() / ARCHIVE_NAME}; {replaced}")


def _pip_only_looks_in(monkeypatch: pytest.MonkeyPatch, links: str) -> None:
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", links)


def test_a_download_with_the_wrong_hash_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_pip(requirement: str, destination: Path, scratch: Path, poll: Any, **_: Any) -> None:
        destination.mkdir(parents=True)
        (destination / ARCHIVE_NAME).write_bytes(b"something else")

    monkeypatch.setattr(downloads, "pip_download", fake_pip)
    with pytest.raises(PullError, match="with sha256 [0-9a-f]{64}, not 1bb398a5"):
        BigBenchData().load(["legs"])
    assert list(_data_dir().iterdir()) == []


def test_summaries_of_a_grouped_suite_average_the_groups() -> None:
    def record(number: int, group: str, score: float) -> dict[str, Any]:
        outcome = "pass" if score else "wrong"
        return {
            "id": f"{group}/{number}",
            "group": group,
            "score": score,
            "outcome": outcome,
            "seconds": 1.0,
        }

    records = [record(0, "a", 1.0), record(1, "a", 0.0), record(2, "a", 0.0), record(0, "b", 1.0)]
    summary = summarize("cfg", "toy", "dev", records)
    assert summary.groups == {"a": {"score": 33.3, "n": 3}, "b": {"score": 100.0, "n": 1}}
    assert summary.score == 66.7  # not 50.0, the mean over items
    plain = summarize("cfg", "toy", "dev", [{**r, "group": ""} for r in records])
    assert plain.groups is None and plain.score == 50.0
    problems = [Problem("toy", i, str(i), "", group=g) for i, g in enumerate("aabab")]
    assert [p.id for p in first_of_each_group(problems, 2)] == ["0", "1", "2", "4"]


@pytest.mark.skipif(
    os.environ.get("MOA_LOCAL_TEST_BIGBENCH") != "1",
    reason="downloads the 358 MB bigbench archive: set MOA_LOCAL_TEST_BIGBENCH=1",
)
def test_the_real_archive_has_the_dev_tasks() -> None:
    suite = BigBenchSuite()
    counts = {task: 0 for task in DEFAULT_TASKS}
    for problem in suite.problems("all"):
        counts[problem.group] += 1
    assert counts == {
        "date_understanding": 369,
        "logical_deduction/three_objects": 300,
        "tracking_shuffled_objects/three_objects": 750,
        "object_counting": 1000,
    }
    assert (_data_dir() / ARCHIVE_NAME).stat().st_size == bigbench_data.ARCHIVE_SIZE
    assert len(suite.problems("dev")) == 185 + 150 + 375 + 500
    assert len(suite.data.index()["json"]) == 1041
