"""The machine identity each eval record carries: CPU model and llama.cpp's kernels."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_local.evals.host import build_features, cpu_model, host_identity

# As llama.cpp prints it, a CUDA build's line on a CPU without AMX.
SYSTEM_INFO = (
    "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | "
    "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 0 | OPENMP = 1 | "
)


def test_the_build_line_keeps_the_features_that_are_on_per_backend() -> None:
    assert build_features(SYSTEM_INFO) == (
        "CUDA: ARCHS=890 USE_GRAPHS PEER_MAX_BATCH_SIZE=128; CPU: SSE3 AVX AVX2 OPENMP"
    )
    assert build_features("") == ""


def test_the_cpu_model_comes_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9554\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 9554"
    # Elsewhere (macOS, Windows) platform's own answer, never an empty name.
    assert cpu_model(tmp_path / "missing")


def test_the_identity_names_this_llama_cpp_build() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    build = host_identity()["llama_cpp"]
    assert build.startswith(llama_cpp.__version__)
    assert "CPU:" in build
