"""Shared fixtures: every test gets its own MOA_LOCAL_HOME and working directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from moa_local.backends.echo import EchoBackend
from moa_local.config import BUILTIN_DEFAULTS
from tests.tiny_gguf import write_tiny_gguf

REPO_ROOT = Path(__file__).resolve().parent.parent

# The keys issue #2 documents for a result (Python dict access and --json).
RESULT_KEYS = (
    "final_response",
    "layer_history",
    "aggregator",
    "models_used",
    "num_proposals",
    "layers",
    "usage",
    "seconds",
    "trace_file",
)


# The mixture shape the engine, CLI and backend tests exercise: two layers of
# one proposer per model, aggregated at the run's temperature, no router, no
# verification (test_verify_default.py covers it). The
# shipped defaults (Self-MoA, chosen by `moa-local eval`) are tested on their
# own in test_config.py (marker `shipped_defaults`), so changing them from the
# evidence does not silently change what every other test covers.
ENGINE_TEST_SHAPE = {
    "proposers": ["qwen2.5-coder-0.5b", "smollm2-135m"],
    "aggregator": "auto",
    "layers": 2,
    "strategy": "model",
    "num_proposers": 0,
    "temperature_range": [0.3, 1.0],
    "aggregator_temperature": -1.0,
    "router": "off",
    "layout": "references",
    "aggregate": "synthesize",
    "verify": False,
}


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """A private home and cwd, no MOA_LOCAL_* settings from the outside, the test shape."""
    for name in list(os.environ):
        if name.startswith("MOA_LOCAL_"):
            monkeypatch.delenv(name)
    if request.node.get_closest_marker("shipped_defaults") is None:
        for key, value in ENGINE_TEST_SHAPE.items():
            monkeypatch.setitem(BUILTIN_DEFAULTS, key, value)
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("MOA_LOCAL_HOME", str(home))
    monkeypatch.chdir(work)
    yield work


@pytest.fixture
def echo() -> EchoBackend:
    """A fresh echo backend whose stats a test can read."""
    return EchoBackend()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight llama GGUF with a ChatML template (a few hundred KB)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", context_length=4096)


@pytest.fixture(scope="session")
def templateless_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model without a chat template."""
    return write_tiny_gguf(
        tmp_path_factory.mktemp("gguf") / "no-template.gguf",
        chat_template=None,
        context_length=4096,
    )
