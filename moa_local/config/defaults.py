"""The built-in values: the [defaults] and [resources] tables, presets, and choices.

Everything here is data. :data:`BUILTIN_DEFAULTS` is the one dict every part
of the package reads (tests change its items in place, so nothing may copy it
at import time); :data:`TABLES` names the tables a config file may set key by
key, each with its built-in values.
"""

from __future__ import annotations

from typing import Any

# The values a choice setting may take (validate.py and tables.py check them).
STRATEGIES = ("model", "temperature", "role")
TASKS = ("auto", "text", "code")
ROUTERS = ("off", "agree", "on")
# How a refinement layer shows an agent the previous layer: "references" puts every
# answer in the system message; "continue" continues the agent's own chat (its
# answer stays an assistant turn, so its KV cache is reused) and adds the others'.
LAYOUTS = ("references", "continue")
AGGREGATIONS = ("synthesize", "select", "auto", "vote", "confidence", "consensus")
BACKENDS = ("llamacpp", "echo", "ollama", "openai")
HOST_KINDS = ("ollama", "openai")

# The MoA shape `moa-local ask` uses without flags. The repository's
# models.toml repeats these values with comments (a test keeps them equal).
BUILTIN_DEFAULTS: dict[str, Any] = {
    # Self-MoA on the strongest starter model, chosen by `moa-local eval` (docs/quality.md,
    # "Does the mixture help?"): the two-layer mix of the 0.5B and SmolLM2 that
    # shipped first scored 65 where the 1.5B alone scores 95 (HumanEval dev, first 17).
    "proposers": ["qwen2.5-coder-1.5b"],
    "aggregator": "qwen2.5-coder-1.5b",
    "layers": 1,
    "strategy": "temperature",
    "num_proposers": 3,
    "role_model": "",
    "final_agent": "",
    "final_agent_prompt": "",
    "temperature": 0.7,
    "temperature_range": [0.0, 0.8],
    "top_p": 0.95,
    "max_tokens": 384,
    "min_proposers": 1,
    "timeout": 0.0,
    "trace_dir": "logs/moa",
    "seed": -1,
    "aggregator_temperature": 0.0,
    "aggregate_window": 0,
    "task": "auto",
    # "auto": code questions with examples are verified when model-written code
    # runs under bubblewrap (moa_local.checks.isolation), and only then.
    "verify": "auto",
    # Verified code questions with examples: how many more samples the cascade
    # draws, one at a time, after a layer's agents while none passes the
    # question's examples (0: none).
    "verify_samples": 3,
    "router": "agree",
    # Measured by `moa-local eval` (docs/quality.md): a two-layer Self-MoA scored 95 in the
    # continue layout against 75 with every answer listed (HumanEval dev, first 20).
    "layout": "continue",
    # How the aggregator ends the mixture: "synthesize" writes a new answer from
    # the last layer's; "select" picks one of them (Universal Self-Consistency);
    # "vote" the most common final answer; "consensus" the candidate that agrees
    # most with the others; "auto" votes on programs and checkable answers and
    # takes the consensus of free text. Measured (docs/quality.md): on HumanEval a
    # rewrite broke working programs where a vote among the same candidates did
    # not; on IFBench dev a 1.5B pick named the last candidate 50 times of 60.
    "aggregate": "auto",
    # `moa-local serve`: stream the proposals before the answer, in the channel
    # chat clients fold away as reasoning.
    "show_proposals": False,
}

# [resources]: how much of the machine moa-local may use (see resources.py).
BUILTIN_RESOURCES: dict[str, Any] = {
    "budget_mb": 0,
    "reserve_mb": 512,
    "budget_fraction": 0.9,
    "keep_alive": -1.0,
    "cpu_slots": 0,
}

# Named configurations shipped with moa-local (`--configs NAME` in eval, `--preset NAME`
# in ask). The repository's models.toml repeats them with comments (a test keeps them
# equal); a [presets.NAME] table in a config file adds one or replaces one of these.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "classic": {
        "proposers": ["qwen2.5-coder-0.5b", "smollm2-135m"],
        "aggregator": "auto",
        "layers": 2,
        "strategy": "model",
        "num_proposers": 0,
        "aggregator_temperature": -1.0,
        "router": "off",
        "layout": "references",
    },
    "self-moa": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "self-moa-verify": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "verify": True,
        "router": "agree",
    },
    "self-moa-seq": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 6,
        "temperature_range": [0.2, 1.0],
        "layers": 1,
        "aggregate_window": 2,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "self-moa-select": {
        "proposers": ["qwen2.5-coder-1.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "temperature",
        "num_proposers": 3,
        "temperature_range": [0.0, 0.8],
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "agree",
        "aggregate": "auto",
    },
    "qwen-mix": {
        "proposers": ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "model",
        "num_proposers": 0,
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
    "qwen-mix-smol": {
        "proposers": ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"],
        "aggregator": "qwen2.5-coder-1.5b",
        "strategy": "model",
        "num_proposers": 0,
        "layers": 1,
        "aggregator_temperature": 0.0,
        "router": "off",
    },
}

# The tables a config file sets key by key, each with its built-in values.
TABLES: dict[str, dict[str, Any]] = {"defaults": BUILTIN_DEFAULTS, "resources": BUILTIN_RESOURCES}
