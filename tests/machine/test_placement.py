"""n_gpu_layers sized by the GPU's budget: all layers when the model fits, as many as fit
when it does not, none when not one does, on a GPU that a fake NVML reports."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from moa_local.backends import llamacpp
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.machine.placement import gpu_layers_for
from moa_local.models.estimate import MIB, ModelShape, shape_from_gguf
from moa_local.models.gguf_meta import read_metadata
from moa_local.models.references import ModelSpec

# 10 layers of 100 MiB of weights; 1 MiB of KV cache per layer at 1024 tokens.
SHAPE = ModelShape(
    weight_bytes=1000 * MIB,
    n_layers=10,
    kv_bytes_per_token_per_layer=1024,
    n_vocab=32000,
    n_ff=8192,
)


def test_all_layers_when_the_model_fits_else_as_many_as_fit() -> None:
    compute = SHAPE.compute_bytes()
    whole = 1000 * MIB + SHAPE.kv_bytes(1024) + compute
    assert gpu_layers_for(SHAPE, 1024, whole) == -1
    assert gpu_layers_for(SHAPE, 1024, whole - 1) == 9
    per_layer = (1000 * MIB + SHAPE.kv_bytes(1024)) / 10
    assert gpu_layers_for(SHAPE, 1024, compute + int(4.5 * per_layer)) == 4
    assert gpu_layers_for(SHAPE, 1024, compute + int(0.5 * per_layer)) == 0
    assert gpu_layers_for(SHAPE, 1024, 0) == 0
    # A longer context needs more KV cache per layer: fewer layers fit the same budget.
    assert gpu_layers_for(SHAPE, 65536, compute + 500 * MIB) < 5


def fake_nvml(total_mib: int, free_mib: int) -> SimpleNamespace:
    """The few NVML calls moa-local makes, for one GPU of that much memory."""
    memory = SimpleNamespace(total=total_mib * MIB, free=free_mib * MIB, used=0)
    return SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetMemoryInfo=lambda handle: memory,
        nvmlDeviceGetName=lambda handle: b"Fake GPU",
    )


@pytest.mark.parametrize(
    ("free_mib", "expected"),
    [(8192, -1), (None, "some"), (1, 0)],
    ids=["fits", "partial", "no-fit"],
)
def test_the_backend_offloads_what_the_gpu_budget_holds(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path, free_mib: int | None, expected: object
) -> None:
    shape = shape_from_gguf(read_metadata(tiny_model))
    spec = ModelSpec(name="tiny", backend="llamacpp", path=tiny_model, n_ctx=65536)
    whole = shape.weight_bytes + shape.kv_bytes(spec.n_ctx) + shape.compute_bytes()
    # The budget keeps a reserve of the free memory (devices.DEFAULT_RESERVE_MB): "partial"
    # leaves room for the compute buffer and one of the model's two layers.
    from moa_local.machine.devices import DEFAULT_RESERVE_MB

    partial = int((whole - (whole - shape.compute_bytes()) / 2) / MIB + DEFAULT_RESERVE_MB + 1)
    free = partial if free_mib is None else free_mib
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(16384, free))
    monkeypatch.setattr(llamacpp, "gpu_offload_supported", lambda: True)
    backend = LlamaCppBackend()
    layers = backend._gpu_layers(spec)
    if expected == "some":
        assert layers == 1 and backend.compute_device(spec) == "cpu"
    else:
        assert layers == expected
    assert backend.compute_device(spec) == (None if layers == -1 else "cpu")
    # A configured n_gpu_layers is kept as it is.
    assert backend._gpu_layers(ModelSpec("t", "llamacpp", tiny_model, n_gpu_layers=3)) == 3


def test_no_gpu_backend_built_in_means_no_layers_offloaded(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(16384, 16384))
    monkeypatch.setattr(llamacpp, "gpu_offload_supported", lambda: False)
    assert LlamaCppBackend()._gpu_layers(ModelSpec("t", "llamacpp", tiny_model)) == 0


def test_the_gpu_backends_of_a_build_are_read_from_its_system_info() -> None:
    cuda = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | "
    assert llamacpp.gpu_backends(cuda) == ["CUDA"]
    assert llamacpp.gpu_backends("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ") == ["Metal"]
    assert llamacpp.gpu_backends("CPU : SSE3 = 1 | AVX = 1 | OPENMP = 1 | REPACK = 1 | ") == []
