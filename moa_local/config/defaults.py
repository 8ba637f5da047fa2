"""Built-in data beside the settings: the values choice settings may take, and presets.

Everything here is data. Each setting, with its built-in default, is declared
once in :mod:`.settings`; the tuples below are the valid values some of them
(and ``[models.NAME]`` and ``[hosts.NAME]`` keys) take, and
:data:`BUILTIN_PRESETS` the named sets of settings shipped with moa-local.
"""

from __future__ import annotations

from typing import Any

# The values a choice setting may take (settings.py and tables.py check them).
STRATEGIES = ("model", "temperature", "role")
TASKS = ("auto", "text", "code")
ROUTERS = ("off", "agree", "on")
# How a refinement layer shows an agent the previous layer: "references" puts every
# answer in the system message; "continue" continues the agent's own chat (its
# answer stays an assistant turn, so its KV cache is reused) and adds the others'.
LAYOUTS = ("references", "continue")
# Free text checked against the form its question states: not at all, by the
# constraints a program reads, or also by a checker the strongest model writes.
CHECK_FORMS = ("off", "stated", "written")
# Free text with nothing a program can check: the greedy answer, or the consensus of
# the layer's samples.
UNCHECKED_TEXT = ("greedy", "consensus")
# When the verified cascade stops drawing although no sample passed (engine/stops.py).
VERIFY_STOPS = ("never", "repeat", "stalled")
AGGREGATIONS = ("synthesize", "select", "auto", "vote", "confidence", "consensus")
BACKENDS = ("llamacpp", "echo", "ollama", "openai")
HOST_KINDS = ("ollama", "openai")

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
