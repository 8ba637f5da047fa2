"""The moa-local command: output streams, JSON, exit codes and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.trace import read_trace
from tests.conftest import RESULT_KEYS


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def ask(runner: CliRunner, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(main, ["ask", *args], input=input)


ECHO = ["-m", "echo:a", "-m", "echo:b", "--aggregator", "echo:agg"]


def test_ask_streams_the_answer_and_reports_progress(runner: CliRunner) -> None:
    result = ask(runner, *ECHO, "Why is the sky blue?")
    assert result.exit_code == 0, result.output
    assert result.stdout == "[agg t=0.70 refs=2] Why is the sky blue?\n"
    assert "layer 1/2: 2 proposers working" in result.stderr
    assert "+ echo:a:" in result.stderr and "tok/s" in result.stderr
    assert "aggregating with echo:agg" in result.stderr
    trace = next(Path("logs/moa").glob("*.jsonl"))
    events = [e["event"] for e in read_trace(trace)]
    assert events[0] == "run.start" and events[-1] == "run.done"
    assert events.count("proposal.done") == 4 and "aggregate.done" in events
    assert str(trace) in result.stderr


def test_aggregate_select_returns_the_answer_the_aggregator_picks(runner: CliRunner) -> None:
    picks = ["-m", "echo:a?reply=Red", "-m", "echo:b?reply=Blue", "--layers", "1"]
    result = ask(
        runner, *picks, "--aggregator", "echo:agg?reply=2", "--aggregate", "select", "--json", "Q?"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["final_response"] == "Blue"
    assert [d["event"] for d in data["decisions"]][-1] == "aggregate.select"
    wrong = ask(runner, *picks, "--aggregate", "average", "Q?")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip().splitlines() == [
        "error: --aggregate must be one of synthesize, select, auto, vote, confidence, "
        "consensus, got 'average'"
    ]


def test_json_prints_the_documented_keys_and_nothing_else(runner: CliRunner) -> None:
    result = ask(runner, *ECHO, "--json", "Q?")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    for key in RESULT_KEYS:
        assert key in data
    assert data["final_response"] == "[agg t=0.70 refs=2] Q?"
    assert data["num_proposals"] == 4 and data["layers"] == 2
    proposal = data["layer_history"][0][0]
    assert set(proposal) >= {
        "agent",
        "model",
        "temperature",
        "content",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "seconds",
    }


def test_prompt_from_stdin_and_quiet(runner: CliRunner) -> None:
    result = ask(runner, *ECHO, "-q", "--no-stream", "-", input="from stdin\n")
    assert result.exit_code == 0
    assert result.stdout == "[agg t=0.70 refs=2] from stdin\n"
    assert result.stderr == ""


def test_trace_dir_empty_turns_traces_off(runner: CliRunner) -> None:
    result = ask(runner, *ECHO, "--trace-dir", "", "Q")
    assert result.exit_code == 0
    assert not Path("logs").exists()


def test_strategy_and_layers_flags(runner: CliRunner) -> None:
    result = ask(
        runner,
        "-m",
        "echo:self",
        "--aggregator",
        "echo:self",
        "--strategy",
        "temperature",
        "-n",
        "3",
        "--layers",
        "1",
        "--json",
        "Q",
    )
    data = json.loads(result.stdout)
    assert [p["temperature"] for p in data["layer_history"][0]] == [0.3, 0.65, 1.0]


def test_all_proposers_failing_exits_1_with_each_failure(runner: CliRunner) -> None:
    result = ask(
        runner,
        "-m",
        "echo:x?fail=broken",
        "-m",
        "echo:y?fail=melted",
        "--aggregator",
        "echo:agg",
        "Q",
    )
    assert result.exit_code == 1
    assert "error: layer 1: 0 of 2 proposers succeeded" in result.stderr
    assert "broken" in result.stderr and "melted" in result.stderr
    assert "Traceback" not in result.output


def one_line_error(result, code: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("models_toml", "args", "expected"),
    [
        pytest.param(
            b"[defaults]\nlayers = = 2\n",
            [],
            ["models.toml: invalid TOML", "line 2"],
            id="toml-syntax-error",
        ),
        pytest.param(
            b"[defaults]\nlayer = 2\n", [], ["[defaults] unknown key 'layer'"], id="unknown-key"
        ),
        pytest.param(
            b"[defaults]\nproposers = []\n", [], ["proposers is empty"], id="zero-proposers"
        ),
        pytest.param(
            b"\xff\xfe[defaults]\n",
            ECHO,
            ["models.toml: invalid TOML: not UTF-8"],
            id="config-that-is-not-utf8",
        ),
        pytest.param(
            b"[defaults]\ntemperature_range = [0.9, 0.1]\n",
            ECHO,
            ["[defaults] temperature_range must be [low, high]"],
            id="reversed-temperature-range-names-the-table",
        ),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it(
    runner: CliRunner, models_toml: bytes, args: list[str], expected: list[str]
) -> None:
    Path("models.toml").write_bytes(models_toml)
    one_line_error(ask(runner, *args, "Q"), 2, *expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["-m", "gpt-17", "Q"], ["unknown model 'gpt-17'"], id="unknown-model-name"),
        pytest.param(
            ["-m", "gemma3-270m", "Q"],
            ["base model without a chat template"],
            id="catalog-base-model-without-chat-format",
        ),
        pytest.param([*ECHO, "--layers", "0", "Q"], ["--layers must be >= 1"], id="layers-zero"),
        pytest.param(
            [*ECHO, "--temperature", "-1", "Q"],
            ["--temperature must be between 0.0 and 2.0"],
            id="negative-temperature",
        ),
        pytest.param(
            [*ECHO, "--strategy", "vote", "Q"], ["--strategy must be one of"], id="unknown-strategy"
        ),
        pytest.param([*ECHO, "   "], ["the prompt is empty"], id="empty-prompt"),
        pytest.param(
            ["-m", "smollm2-135m", "--no-pull", "Q"],
            ["not pulled yet", "moa-local pull smollm2-135m"],
            id="model-not-pulled-with-no-pull",
        ),
        pytest.param(
            [*ECHO, "-n", "0", "Q"], ["--num-proposers must be >= 1"], id="zero-num-proposers"
        ),
    ],
)
def test_a_bad_flag_or_model_is_one_line_naming_it(
    runner: CliRunner, args: list[str], expected: list[str]
) -> None:
    one_line_error(ask(runner, *args), 2, *expected)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ["ask", *ECHO, "--layers", "0", "Q"], "--layers must be >= 1, got 0", id="layers"
        ),
        pytest.param(
            ["ask", "-m", " ", "Q"],
            "-m/--proposer is empty: give at least one proposer model",
            id="proposers",
        ),
        pytest.param(
            ["ask", *ECHO, "--verify", "--router", "maybe", "Q"],
            "--router must be one of off, agree, on, got 'maybe'",
            id="router",
        ),
        pytest.param(
            ["chat", "-m", "echo:a", "--trace-dir", "x", "--budget-mb", "-1"],
            "--budget-mb must be >= 0.0, got -1.0",
            id="chat-budget",
        ),
        pytest.param(
            ["doctor", "--budget-mb", "-5"], "--budget-mb must be >= 0.0, got -5.0", id="doctor"
        ),
    ],
)
def test_the_library_names_the_keyword_and_the_cli_the_flag(
    runner: CliRunner, args: list[str], line: str
) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == f"error: {line}"


def test_a_bad_value_from_the_file_or_environment_is_not_blamed_on_the_flag(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_LOCAL_TEMPERATURE", "9")
    result = ask(runner, *ECHO, "--temperature", "0.5", "Q")
    one_line_error(result, 2, "error: MOA_LOCAL_TEMPERATURE must be between 0.0 and 2.0, got 9")
    monkeypatch.delenv("MOA_LOCAL_TEMPERATURE")
    Path("models.toml").write_text("[defaults]\nlayers = 0\n", encoding="utf-8")
    result = ask(runner, *ECHO, "--layers", "2", "Q")
    one_line_error(result, 2, "error: models.toml: [defaults] layers must be >= 1, got 0")


def test_setting_flags_take_their_help_from_the_declaration() -> None:
    from moa_local.cli.common import SettingOption
    from moa_local.config import SETTINGS

    seen = set()
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, SettingOption) and param.name != "n":  # -n: at least 1
                assert SETTINGS[param.setting].help in (param.help or ""), param.opts
                seen.add(param.setting)
    assert {"layers", "aggregate", "verify", "budget_mb", "max_tokens"} <= seen


def test_corrupt_file_given_as_a_model(runner: CliRunner, tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"\x00" * 64)
    one_line_error(ask(runner, "-m", f"path:{bogus}", "Q"), 2, "is not a GGUF model file")


def test_templateless_model_without_chat_format(
    runner: CliRunner, templateless_model: Path
) -> None:
    one_line_error(
        ask(runner, "-m", f"path:{templateless_model}", "Q"),
        2,
        "has no chat template",
        "chat_format",
    )


def test_missing_llama_cpp_python(
    runner: CliRunner, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    one_line_error(
        ask(runner, "-m", f"path:{tiny_model}", "Q"), 2, "pip install 'moa-local[llamacpp]'"
    )


def test_debug_env_shows_the_traceback(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_LOCAL_DEBUG", "1")
    result = ask(runner, "-m", "gpt-17", "Q")
    assert result.exit_code != 0
    assert result.exception is not None and "unknown model" in str(result.exception)


def test_models_lists_catalog_and_configured(runner: CliRunner, tiny_model: Path) -> None:
    Path("models.toml").write_text(f'[models.tiny]\npath = "{tiny_model}"\n')
    result = runner.invoke(main, ["models"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "FAMILY",
        "PARAMS",
        "QUANT",
        "SIZE",
        "INSTALLED",
        "REACHABLE",
        "SOURCE",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["qwen2.5-coder-0.5b"][1:4] == ["qwen", "0.5B", "Q4_K_M"]
    assert rows["qwen2.5-coder-0.5b"][6] == "no"
    assert rows["gemma3-270m"][1] == "gemma"
    assert rows["tiny"][1] == "llama" and rows["tiny"][6] == "yes"
    data = json.loads(runner.invoke(main, ["models", "--json"]).stdout)
    assert {row["name"] for row in data} >= {"smollm2-135m", "qwen2.5-coder-1.5b", "tiny"}


def test_pull_unknown_model(runner: CliRunner) -> None:
    result = runner.invoke(main, ["pull", "llama-9000"])
    one_line_error(result, 2, "unknown model 'llama-9000'")


def test_model_larger_than_the_budget(runner: CliRunner) -> None:
    result = ask(
        runner,
        "-m",
        "echo:big?size_mb=5000",
        "--aggregator",
        "echo:agg",
        "--budget-mb",
        "1000",
        "Q",
    )
    one_line_error(result, 2, "needs about 5000 MiB on cpu", "budget is 1000 MiB", "--budget-mb")
    assert not Path("logs").exists() or not any(Path("logs").rglob("*.jsonl"))


def test_verbose_shows_loads_with_estimate_and_measurement(runner: CliRunner) -> None:
    result = ask(
        runner,
        "-v",
        "-m",
        "echo:a?size_mb=300",
        "-m",
        "echo:b?size_mb=300",
        "--aggregator",
        "echo:a?size_mb=300",
        "--budget-mb",
        "500",
        "--layers",
        "1",
        "Q",
    )
    assert result.exit_code == 0, result.output
    assert "loaded echo:a?size_mb=300 on cpu" in result.stderr
    assert "estimated 300.0 MiB, measured 300.0 MiB" in result.stderr
    assert "unloaded echo:a?size_mb=300 (lru)" in result.stderr


def test_answer_streams_before_the_run_ends(tmp_path: Path) -> None:
    """Read the real command's stdout while it is still running."""
    import os
    import subprocess

    words = " ".join(f"w{i}" for i in range(30))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moa_local",
            "ask",
            "-q",
            "--trace-dir",
            "",
            "-m",
            "echo:a",
            "--router",
            "off",
            # A synthesized answer streams (a selected one is printed when chosen).
            "--aggregate",
            "synthesize",
            "--aggregator",
            f"echo:agg?word_delay=0.1&reply={words}",
            "Q",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "MOA_LOCAL_HOME": str(tmp_path)},
    )
    assert process.stdout is not None
    first = process.stdout.read1(64)  # type: ignore[attr-defined]
    still_running = process.poll() is None
    rest = process.stdout.read()
    process.wait(timeout=30)
    assert first.startswith(b"w0") and still_running
    assert (first + rest).decode().strip() == words


def test_an_answer_cut_at_max_tokens_says_so(runner: CliRunner) -> None:
    alone = ["-m", "echo:a?reply=one two three four five six", "--aggregator", "echo:a"]
    cut = ask(runner, *alone, "--layers", "1", "--max-tokens", "3", "--json", "Q?")
    assert cut.exit_code == 0, cut.output
    assert json.loads(cut.stdout)["truncated"] is True
    assert "note: the answer was cut at max_tokens (3); raise --max-tokens" in cut.stderr
    whole = ask(runner, *alone, "--layers", "1", "--max-tokens", "50", "--json", "Q?")
    assert json.loads(whole.stdout)["truncated"] is False
    assert "cut at max_tokens" not in whole.stderr


def test_a_streamed_first_answer_then_its_replacement_read_right(runner: CliRunner) -> None:
    # The first answer (one sentence) streams, misses the three sentences asked for, and
    # the second model's answer replaces it: the terminal shows both with a note between,
    # --json holds only the final one.
    one = "Air scatters blue light most."
    three = "Sunlight holds every colour. Air scatters blue most. So the sky looks blue."
    flags = [
        *("-m", f"echo:a?reply={one}", "-m", f"echo:b?reply={three}"),
        *("--aggregator", f"echo:a?reply={one}", "--strategy", "model", "--layers", "1"),
        *("--aggregate", "auto", "--router", "agree"),
    ]
    question = "Why is the sky blue? Answer in exactly three sentences."
    shown = ask(runner, *flags, question)
    assert shown.exit_code == 0, shown.output
    second = f"echo:b?reply={three}"  # an echo model's name holds its options
    assert (
        shown.stdout == f"{one}\n\n[the answer above is replaced; {second}'s answer:]\n\n{three}\n"
    )
    assert "more samples: the first answer does not settle it" in shown.stderr
    assert f"is replaced by {second}'s" in shown.stderr
    as_json = ask(runner, *flags, "--json", question)
    assert json.loads(as_json.stdout)["final_response"] == three
