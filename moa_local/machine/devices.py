"""What this machine has: devices with their memory, CPU cores, and the budgets derived.

Devices are found without ever failing: a missing library, driver or file
means that kind of device is absent.

- NVIDIA GPUs through nvidia-ml-py (``pynvml``), when installed and a driver
  answers: total and free memory per GPU (``cuda:N``);
- AMD GPUs through sysfs, ``/sys/class/drm/card*/device/mem_info_vram_total``
  and ``_used`` (``rocm:N``);
- Apple silicon through ``sysctl hw.memsize``: unified memory, of which macOS
  lets the GPU wire about three quarters (``APPLE_GPU_FRACTION``) (``metal``);
- CPU RAM through psutil: ``available`` (what can be used without swapping),
  not ``free`` (which leaves out reclaimable cache).

A device's budget is its free memory minus a reserve (default 512 MiB), capped
at a fraction of its total (default 0.9). ``--budget-mb``,
``MOA_LOCAL_BUDGET_MB`` or ``[resources] budget_mb`` replace the computed
figure (for every device).
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

MIB = 1 << 20
APPLE_GPU_FRACTION = 0.75
DEFAULT_RESERVE_MB = 512
DEFAULT_FRACTION = 0.9


@dataclass(frozen=True)
class Device:
    """One memory pool models can be placed in."""

    name: str  # "cpu", "cuda:0", "rocm:0", "metal"
    kind: str  # "cpu", "nvidia", "amd", "apple"
    total: int
    free: int
    description: str = ""


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp gains nothing from hyper-threads)."""
    try:
        cores = psutil.cpu_count(logical=False)
    except Exception:  # psutil can fail inside odd containers
        cores = None
    return cores or os.cpu_count() or 1


def cpu_device() -> Device:
    """System RAM, with ``available`` as its free memory."""
    memory = psutil.virtual_memory()
    return Device(
        "cpu", "cpu", memory.total, memory.available, f"{physical_cores()} physical cores"
    )


def nvidia_devices() -> list[Device]:
    """NVIDIA GPUs seen by NVML; none when nvidia-ml-py or the driver is missing."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: NVML raises its own error types
        return []
    devices = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode()
            devices.append(
                Device(f"cuda:{index}", "nvidia", int(memory.total), int(memory.free), str(name))
            )
    except Exception:
        return devices
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return devices


def nvidia_used_bytes(index: int = 0) -> int | None:
    """Memory in use on one NVIDIA GPU, for measuring what a load took."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def amd_devices(root: str = "/sys/class/drm") -> list[Device]:
    """AMD GPUs with VRAM counters in sysfs."""
    devices = []
    for index, total_path in enumerate(
        sorted(glob.glob(f"{root}/card*/device/mem_info_vram_total"))
    ):
        folder = Path(total_path).parent
        try:
            total = int((folder / "mem_info_vram_total").read_text().strip())
            used = int((folder / "mem_info_vram_used").read_text().strip())
        except (OSError, ValueError):
            continue
        devices.append(
            Device(f"rocm:{index}", "amd", total, max(0, total - used), folder.parent.name)
        )
    return devices


def apple_devices() -> list[Device]:
    """Apple silicon's GPU share of unified memory."""
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return []
    try:
        output = subprocess.run(
            ["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        total = int(output.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    usable = int(total * APPLE_GPU_FRACTION)
    free = min(usable, psutil.virtual_memory().available)
    return [Device("metal", "apple", usable, free, "unified memory (GPU share)")]


def detect_devices() -> list[Device]:
    """Every device found, CPU first."""
    return [cpu_device(), *nvidia_devices(), *amd_devices(), *apple_devices()]


@dataclass(frozen=True)
class Budget:
    """How many bytes moa-local may use on one device, and why."""

    device: Device
    bytes: int
    source: str  # "computed" or where the override came from

    @property
    def mb(self) -> float:
        """``bytes`` in MiB."""
        return self.bytes / MIB


def budget_for(
    device: Device,
    *,
    reserve_mb: float = DEFAULT_RESERVE_MB,
    fraction: float = DEFAULT_FRACTION,
    override_mb: float | None = None,
    override_source: str = "",
) -> Budget:
    """The budget of ``device``: free minus reserve, capped at ``fraction`` of total."""
    if override_mb is not None and override_mb > 0:
        return Budget(device, int(override_mb * MIB), override_source or "override")
    computed = min(device.free - int(reserve_mb * MIB), int(device.total * fraction))
    return Budget(device, max(0, computed), "computed")


def process_rss() -> int:
    """Resident memory of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)
