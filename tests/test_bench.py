"""`moa-local bench` on the tiny GGUF: naive recomputes, optimized reuses, both reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_local.bench import run_bench
from moa_local.config import apply_overrides, load_config
from moa_local.errors import ConfigError

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
    assert result.speedup == pytest.approx(result.naive_s / result.optimized_s, rel=0.02)
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
