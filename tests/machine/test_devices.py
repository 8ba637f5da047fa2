"""Device detection, budgets, estimates and the doctor report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.machine import devices
from moa_local.machine.devices import Device, budget_for
from moa_local.models.catalog import CATALOG
from moa_local.models.estimate import MIB, estimate, shape_from_gguf
from moa_local.models.gguf_meta import read_metadata


def test_cpu_device_reports_available_memory() -> None:
    device = devices.cpu_device()
    assert device.name == "cpu" and 0 < device.free <= device.total


def test_missing_nvml_means_no_nvidia_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert devices.nvidia_devices() == []


def test_amd_vram_from_sysfs(tmp_path: Path) -> None:
    card = tmp_path / "card1" / "device"
    card.mkdir(parents=True)
    (card / "mem_info_vram_total").write_text(str(16 * 1024 * MIB))
    (card / "mem_info_vram_used").write_text(str(1024 * MIB))
    (found,) = [devices.amd_devices(str(tmp_path))]
    assert found == [Device("rocm:0", "amd", 16 * 1024 * MIB, 15 * 1024 * MIB, "card1")]


def test_budget_is_free_minus_reserve_capped_by_fraction() -> None:
    device = Device("cpu", "cpu", total=10_000 * MIB, free=9_800 * MIB)
    assert budget_for(device, reserve_mb=500, fraction=0.9).bytes == 9_000 * MIB
    assert budget_for(device, reserve_mb=2_000, fraction=0.9).bytes == 7_800 * MIB
    override = budget_for(device, override_mb=1234, override_source="--budget-mb")
    assert override.bytes == 1234 * MIB and override.source == "--budget-mb"


def test_estimate_of_the_tiny_model_adds_up(tiny_model: Path) -> None:
    shape = shape_from_gguf(read_metadata(tiny_model))
    assert shape.n_layers == 2 and shape.n_vocab == 259
    # f32 weights: 4 bytes per parameter
    assert shape.weight_bytes == 4 * read_metadata(tiny_model).parameter_count
    # (k 16 + v 16) x 2 KV heads x 2 bytes, per layer and token
    assert shape.kv_bytes_per_token_per_layer == 128
    result = estimate(shape, 1000)
    assert result.kv_cache == 2 * 128 * 1000
    assert result.per_device == {"cpu": result.total}


def test_sliding_window_layers_are_capped() -> None:
    shape = CATALOG["gemma3-270m"].shape
    assert shape is not None
    short, long = estimate(shape, 4096), estimate(shape, 32768)
    # only 3 of 18 layers grow with the context
    assert long.kv_cache - short.kv_cache == 3 * 1024 * (32768 - 4096)


def test_gpu_offload_splits_the_estimate() -> None:
    shape = CATALOG["qwen2.5-coder-0.5b"].shape
    assert shape is not None
    whole = estimate(shape, 4096, gpu_device="cuda:0", gpu_layers=-1)
    assert set(whole.per_device) == {"cuda:0"}
    half = estimate(shape, 4096, gpu_device="cuda:0", gpu_layers=12)
    gpu_part = half.per_device["cuda:0"] - half.compute
    assert gpu_part == pytest.approx((half.weights + half.kv_cache) / 2, abs=1)
    assert half.per_device["cpu"] == pytest.approx((half.weights + half.kv_cache) / 2, abs=1)


def test_doctor_reports_waves_under_a_tight_budget() -> None:
    Path("models.toml").write_text(
        '[defaults]\nproposers = ["echo:a?size_mb=400", "echo:b?size_mb=400", '
        '"echo:c?size_mb=100"]\n'
    )
    result = CliRunner().invoke(main, ["doctor", "--budget-mb", "600"])
    assert result.exit_code == 0, result.output
    assert "wave 1: echo:a?size_mb=400\n" in result.stdout
    assert "wave 2: echo:b?size_mb=400, echo:c?size_mb=100" in result.stdout
    assert "each layer runs in 2 waves" in result.stdout
    assert "qwen2.5-coder-1.5b" in result.stdout  # catalog models are sized too


def test_doctor_json_flags_models_that_never_fit() -> None:
    result = CliRunner().invoke(main, ["doctor", "--json", "--budget-mb", "300"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) >= {"devices", "budgets", "backends", "models", "plan"}
    assert report["budgets"]["cpu"]["mb"] == 300
    rows = {row["name"]: row for row in report["models"]}
    assert rows["smollm2-135m"]["fits"] is True
    assert rows["qwen2.5-coder-0.5b"]["fits"] is False
    assert any("qwen2.5-coder-0.5b" in p for p in report["plan"]["problems"])
