"""`moa-local bench` on the tiny GGUF: naive recomputes, optimized reuses, both reported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.config import Config, apply_overrides, load_config
from moa_local.errors import ConfigError
from moa_local.evals.bench import PROMPTS, RecordingBackend, run_bench
from moa_local.evals.bench_profile import profile_ask
from moa_local.moa import MoA

pytest.importorskip("llama_cpp")


def tiny_config(tiny_model: Path, **presets: dict[str, Any]) -> Config:
    """The default Self-MoA over the tiny model, and ``presets``."""
    model = f"path:{tiny_model}"
    config = apply_overrides(load_config(), {"proposers": [model], "aggregator": model})
    return replace(config, presets=presets)


@pytest.mark.shipped_defaults  # the real default, not the engine tests' shape
def test_the_real_default_is_timed_on_equal_tokens(tiny_model: Path) -> None:
    # Without written tests, which would test the code prompt's samples one at a time
    # (under bubblewrap) instead of in one layer.
    greedy = {"temperature_range": [0.0, 0.0], "write_tests": False}
    config = tiny_config(tiny_model, greedy=greedy)
    results = run_bench(config, plans=["moa", "greedy"], prompts=["fact", "code"], max_tokens=24)
    sampled, greedy = results
    assert [r.plan for r in results] == ["moa", "greedy"]
    for result in results:
        # Every generation decoded exactly 24 tokens in both runs: equal work.
        assert result.decode_tokens + 24 * result.greedy_twins == result.naive_decode_tokens
        assert result.naive_decode_tokens == 24 * result.generations
        assert result.lower_bound_s > 0 and result.bound_ratio > 0 and result.tokens_per_s > 0
        assert result.naive_prefill_tokens > result.prefill_tokens  # the shared prompt, once
    # The default samples at 0.0, 0.4 and 0.8: no request repeats another.
    assert sampled.greedy_twins == 0
    # The fact prompt is free text: its first answer is kept (one generation). The code
    # prompt's three greedy samples are one generation and two copies.
    assert greedy.generations == 4 and greedy.samples_per_prompt == 2.0
    assert greedy.greedy_twins == 2 and greedy.identical_outputs == 1.0
    assert set(sampled.to_dict()) >= {
        "plan",
        "naive_s",
        "optimized_s",
        "speedup",
        "lower_bound_s",
        "bound_ratio",
        "tokens_per_s",
        "prefill_tokens",
        "decode_tokens",
        "naive_decode_tokens",
        "greedy_twins",
        "samples_per_prompt",
    }


def test_unknown_plan_or_prompt_is_a_config_error(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="unknown bench prompt"):
        run_bench(load_config(), prompts=["nope"])
    with pytest.raises(ConfigError, match="unknown bench plan 'nope'; choose from moa, "):
        run_bench(load_config(), plans=["nope"], prompts=["fact"])


@pytest.mark.shipped_defaults
def test_the_profile_splits_one_ask_into_stages(tiny_model: Path) -> None:
    config = tiny_config(tiny_model, pick={"aggregate": "select"})
    (profile,) = profile_ask(config, plan="pick", prompts=["fact"], max_tokens=16)
    names = [s.stage for s in profile.stages]
    assert names == ["load", "layer 1", "select", "choose and check"]
    layer = profile.stages[1]
    assert layer.generations == 3 and 0 < layer.decoded_tokens <= 48
    assert layer.prefill_s is not None and layer.decode_s is not None
    assert layer.prefill_s + layer.decode_s == pytest.approx(layer.seconds, abs=0.002)
    # The stages account for the run's time, and nothing is counted twice.
    assert sum(s.seconds for s in profile.stages) <= profile.total_s + 0.01
    assert profile.to_dict()["stages"][0]["stage"] == "load"


async def first_refinement(tiny_model: Path, plan: str) -> tuple[int, int]:
    """Prefilled and prompt tokens of layer 2's first generation in bench ``plan``."""
    model = f"path:{tiny_model}"
    config = apply_overrides(
        load_config(),
        {
            "proposers": [model],
            "aggregator": model,
            "temperature_range": [0.0, 0.0],
            "num_proposers": 3,
            "layers": 2,
            "router": "off",
            "aggregate": "synthesize",
            "layout": plan,
            "max_tokens": 8,
            "seed": 0,
        },
    )
    inner = LlamaCppBackend(reuse=True, lookup=False)
    recorder = RecordingBackend(inner)
    try:
        await MoA(config=config, backends={"llamacpp": recorder}).run(PROMPTS["fact"])
    finally:
        await inner.close()
    assert len(recorder.generations) == 7  # 3 samples x 2 layers + the aggregator
    layer_two = recorder.generations[3]
    return layer_two.prefilled_tokens, layer_two.prompt_tokens


async def test_continue_layout_prefills_only_the_new_turn(tiny_model: Path) -> None:
    continued, continued_prompt = await first_refinement(tiny_model, "continue")
    listed, listed_prompt = await first_refinement(tiny_model, "references")
    # the references layout puts the answers first, so little of layer 1 is reused
    assert listed > 0.8 * listed_prompt
    # the continue layout reuses the question and the agent's own answer
    assert continued < continued_prompt - 30
    assert continued < listed - 20


@pytest.mark.shipped_defaults
def test_the_bench_command_prints_plans_or_a_profile_as_json(tiny_model: Path) -> None:
    import json

    from click.testing import CliRunner

    from moa_local.cli import main

    Path("models.toml").write_text(
        f'[defaults]\nproposers = ["path:{tiny_model}"]\naggregator = "path:{tiny_model}"\n'
    )
    runner = CliRunner()
    timed = runner.invoke(
        main, ["bench", "--plans", "moa", "--prompts", "fact", "--max-tokens", "8", "--json"]
    )
    assert timed.exit_code == 0, timed.output
    (plan,) = json.loads(timed.stdout)
    assert plan["plan"] == "moa" and plan["naive_decode_tokens"] == 8 * plan["generations"]
    profiled = runner.invoke(main, ["bench", "--profile", "--prompts", "code", "--json"])
    assert profiled.exit_code == 0, profiled.output
    (profile,) = json.loads(profiled.stdout)
    assert profile["plan"] == "moa" and profile["prompt"] == "code"
    assert profile["stages"][0]["stage"] == "load" and profile["stages"][1]["stage"] == "layer 1"
    bad = runner.invoke(main, ["bench", "--plans", "fast", "--prompts", "fact"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown bench plan 'fast'")
