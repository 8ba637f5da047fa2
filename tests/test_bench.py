"""`moa-local bench` on the tiny GGUF: naive recomputes, optimized reuses, both reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.bench import PROMPTS, RecordingBackend, plan_settings, run_bench
from moa_local.config import apply_overrides, load_config
from moa_local.errors import ConfigError
from moa_local.moa import MoA

pytest.importorskip("llama_cpp")


def test_self_moa_plan_reuses_the_shared_prompt(tiny_model: Path) -> None:
    model = f"path:{tiny_model}"
    config = apply_overrides(load_config(), {"proposers": [model], "aggregator": model})
    (result,) = run_bench(config, plans=["self-moa"], prompts=["fact"], model=model, max_tokens=8)
    assert result.plan == "self-moa"
    # 3 samples x 2 layers + the aggregator
    assert result.generations == 7
    # layer 1's three samples read one prompt, layer 2's three another: the
    # optimized run prefills each once, the naive run every time
    assert result.naive_prefill_tokens > 2 * result.prefill_tokens
    assert result.decode_tokens > 0 and result.lower_bound_s > 0
    assert result.naive_s > 0 and result.optimized_s > 0
    # both times are rounded to milliseconds, the speedup to hundredths
    assert result.speedup == pytest.approx(result.naive_s / result.optimized_s, rel=0.05, abs=0.006)
    assert 0.0 <= result.identical_outputs <= 1.0
    assert len(result.differences) == round((1 - result.identical_outputs) * 7)
    assert set(result.to_dict()) >= {
        "plan",
        "naive_s",
        "optimized_s",
        "speedup",
        "lower_bound_s",
        "prefill_tokens",
        "decode_tokens",
        "identical_outputs",
    }


def test_unknown_plan_or_prompt_is_a_config_error(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="unknown bench prompt"):
        run_bench(load_config(), prompts=["nope"])
    with pytest.raises(ConfigError, match="unknown bench plan"):
        run_bench(load_config(), plans=["nope"], prompts=["fact"])


async def first_refinement(tiny_model: Path, plan: str) -> tuple[int, int]:
    """Prefilled and prompt tokens of layer 2's first generation in bench ``plan``."""
    model = f"path:{tiny_model}"
    config = apply_overrides(load_config(), {"proposers": [model], "aggregator": model})
    config = apply_overrides(config, {**plan_settings(plan, config, model), "max_tokens": 8})
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
    continued, continued_prompt = await first_refinement(tiny_model, "self-moa-continue")
    listed, listed_prompt = await first_refinement(tiny_model, "self-moa")
    # the references layout puts the answers first, so little of layer 1 is reused
    assert listed > 0.8 * listed_prompt
    # the continue layout reuses the question and the agent's own answer
    assert continued < continued_prompt - 30
    assert continued < listed - 20
