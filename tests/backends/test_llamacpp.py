"""The llama.cpp backend on a tiny random-weight GGUF written at test time."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from moa_local import MoA
from moa_local.backends.base import Completion, GenerateRequest
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.config import apply_overrides, load_config
from moa_local.errors import BackendUnavailable, ContextOverflowError, ModelError
from moa_local.models.references import ModelSpec, resolve_model
from moa_local.models.store import ModelStore
from moa_local.trace import read_trace

pytest.importorskip("llama_cpp")


def spec_for(path: Path) -> ModelSpec:
    config = load_config()
    return resolve_model(f"path:{path}", config, ModelStore(Path("home")))


def request(spec: ModelSpec, max_tokens: int = 24, **kwargs: object) -> GenerateRequest:
    return GenerateRequest(
        model=spec,
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}),
        max_tokens=max_tokens,
        seed=1,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def backend() -> LlamaCppBackend:
    instance = LlamaCppBackend()
    yield instance
    await instance.close()


async def test_generate_reports_usage_and_time(backend: LlamaCppBackend, tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    completion = await backend.generate(request(spec))
    assert completion.text
    assert 0 < completion.completion_tokens <= 24
    prompt = await backend.count_tokens(spec, "hello")
    assert completion.prompt_tokens > prompt  # the chat template adds tokens
    assert completion.seconds > 0


async def test_stream_yields_pieces_then_one_completion(
    backend: LlamaCppBackend, tiny_model: Path
) -> None:
    spec = spec_for(tiny_model)
    items = [item async for item in backend.stream(request(spec, max_tokens=12))]
    assert isinstance(items[-1], Completion)
    pieces = items[:-1]
    assert all(isinstance(p, str) for p in pieces) and pieces
    assert "".join(pieces) == items[-1].text  # type: ignore[union-attr]


async def test_model_is_loaded_once_and_reused(backend: LlamaCppBackend, tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    first = await backend.loaded_model(spec)
    await backend.generate(request(spec))
    assert await backend.loaded_model(spec) is first
    assert backend.loaded() == [spec]


async def test_count_tokens_uses_the_model_vocabulary(
    backend: LlamaCppBackend, tiny_model: Path
) -> None:
    # the tiny model's vocabulary is bytes: one token per byte
    assert await backend.count_tokens(spec_for(tiny_model), "hello") == 5


async def test_cancelling_a_stream_stops_the_worker_promptly(
    backend: LlamaCppBackend, tiny_model: Path
) -> None:
    spec = spec_for(tiny_model)
    model = await backend.loaded_model(spec)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(request(spec, max_tokens=400, temperature=1.0)):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the worker thread has let go of the model: nothing is generating any more
    assert model.lock.acquire(blocking=False)
    model.lock.release()
    # and it stopped long before its 400 tokens (the tiny model streams slowly)
    assert model.llama.n_tokens < 200


async def test_context_overflow_is_a_generation_error(
    backend: LlamaCppBackend, tiny_model: Path
) -> None:
    spec = spec_for(tiny_model)
    long = GenerateRequest(
        model=spec, messages=({"role": "user", "content": "x" * 5000},), max_tokens=8
    )
    with pytest.raises(ContextOverflowError, match="exceed context window"):
        await backend.generate(long)


def test_templateless_gguf_is_refused_before_loading(templateless_model: Path) -> None:
    with pytest.raises(ModelError, match="has no chat template.*chat_format"):
        spec_for(templateless_model)


def test_templateless_gguf_works_with_chat_format(templateless_model: Path) -> None:
    Path("models.toml").write_text(
        f'[models.base]\npath = "{templateless_model}"\nchat_format = "chatml"\n'
    )
    moa = MoA(proposers=["base"], aggregator="base", layers=1, max_tokens=8, seed=3, trace_dir="")
    result = moa.run_sync("hi")
    assert result.layer_history[0][0].completion_tokens > 0


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    with pytest.raises(ModelError, match="not a GGUF model file"):
        spec_for(fake)


def test_missing_llama_cpp_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'moa-local\[llamacpp\]'"):
        LlamaCppBackend()


def test_a_moa_over_the_tiny_model(tiny_model: Path) -> None:
    moa = MoA(
        proposers=[f"path:{tiny_model}"],
        strategy="temperature",
        n=2,
        aggregator=f"path:{tiny_model}",
        layers=2,
        max_tokens=16,
        seed=5,
    )
    result = moa.run_sync("hello")
    assert [len(layer) for layer in result.layer_history] == [2, 2]
    assert all(p.ok for layer in result.layer_history for p in layer)
    assert [p.temperature for p in result.layer_history[0]] == [0.3, 1.0]
    assert result.trace_file and Path(result.trace_file).exists()


def test_one_file_under_two_names_is_loaded_and_budgeted_once(tiny_model: Path) -> None:
    Path("models.toml").write_text(
        f'[models.first]\npath = "{tiny_model}"\n\n[models.second]\npath = "{tiny_model}"\n'
    )
    moa = MoA(proposers=["first", "second"], aggregator="first", layers=1, max_tokens=8, seed=1)
    result = moa.run_sync("hello")
    # Both names answered, from the one model loaded for the first of them.
    assert [(p.model, p.ok) for p in result.layer_history[0]] == [
        ("first", True),
        ("second", True),
    ]
    assert all(p.completion_tokens > 0 for p in result.layer_history[0])
    events = read_trace(result.trace_file)
    assert [e["model"] for e in events if e["event"] == "model.load"] == ["first"]
    assert not any(e["event"] == "model.unload" for e in events)
    assert len(moa.scheduler.resident) == 1
    (resident,) = moa.scheduler.resident.values()
    assert moa.scheduler.used["cpu"] == resident.estimate.per_device["cpu"]


def _tiny_moa(tiny_model: Path, **kwargs: object) -> MoA:
    settings: dict[str, object] = {
        "proposers": [f"path:{tiny_model}"],
        "aggregator": f"path:{tiny_model}",
        "max_tokens": 12,
        "seed": 3,
        "trace_dir": "traces",
    }
    settings.update(kwargs)
    return MoA(**settings)  # type: ignore[arg-type]


def test_strategies_run_on_the_tiny_model(tiny_model: Path) -> None:
    # Self-MoA-Seq: four samples read two at a time.
    seq = _tiny_moa(
        tiny_model,
        strategy="temperature",
        n=4,
        layers=1,
        config=apply_overrides(load_config(), {"aggregate_window": 2}),
    ).run_sync("hello")
    events = [e["event"] for e in read_trace(seq.trace_file)]
    assert events.count("aggregate.window") == 3

    # Greedy samples of one model agree: the router stops after layer 1.
    agreed = _tiny_moa(
        tiny_model, strategy="model", n=2, layers=3, temperature=0.0, router="agree"
    ).run_sync("hello")
    assert len(agreed.layer_history) == 1
    assert agreed.decisions[-1]["action"] == "stop"

    # A simple question goes to the aggregator alone.
    alone = _tiny_moa(tiny_model, n=2, layers=2, router="on").run_sync("What is 2 plus 2?")
    assert alone.layer_history == [] and alone.decisions[0]["action"] == "single"

    # Verification on a code question runs even when the answers hold no code.
    verified = _tiny_moa(tiny_model, strategy="temperature", n=2, layers=1, verify=True).run_sync(
        "Write a Python function add(a, b).\n>>> add(1, 2)\n3"
    )
    names = [e["event"] for e in read_trace(verified.trace_file)]
    assert "verify.tests" in names and "verify.selected" in names


class _FakeParams:
    use_extra_bufts = True


class _FakeLowLevel:
    @staticmethod
    def llama_model_default_params() -> _FakeParams:
        return _FakeParams()


class _FakeLlamaCpp:
    """Just enough of the llama_cpp module for the AMX decision."""

    llama_cpp = _FakeLowLevel

    def __init__(self, system_info: str) -> None:
        self.info = system_info

    def llama_print_system_info(self) -> bytes:
        return self.info.encode()


@pytest.mark.parametrize(
    ("system_info", "env", "expected_extra_buffers"),
    [
        ("CPU : AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 |", None, False),
        ("CPU : AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 |", "1", True),
        ("CPU : AVX2 = 1 | REPACK = 1 |", None, True),
    ],
)
def test_amx_builds_load_models_without_extra_buffers(
    monkeypatch: pytest.MonkeyPatch, system_info: str, env: str | None, expected_extra_buffers: bool
) -> None:
    from moa_local.backends import llamacpp

    fake = _FakeLlamaCpp(system_info)
    monkeypatch.setattr(
        _FakeLowLevel, "llama_model_default_params", _FakeLowLevel.llama_model_default_params
    )
    monkeypatch.setattr(llamacpp, "_extra_buffers_off", False)
    if env is not None:
        monkeypatch.setenv(llamacpp.AMX_ENV, env)
    llamacpp._avoid_amx_tiles(fake)
    params = fake.llama_cpp.llama_model_default_params()
    assert params.use_extra_bufts is expected_extra_buffers
    assert llamacpp.extra_buffers_off() is not expected_extra_buffers
