"""Which machine and build made an eval record: the CPU and llama.cpp's kernels.

llama.cpp picks its CPU kernels by instruction set (AVX2, AVX-512, ...), and
their rounding differs with them, so the same greedy decoding can write other
words on another CPU. Each eval record carries this identity, so that records
made on two machines are never read as one run without saying so.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
from pathlib import Path

from ..backends.llamacpp import import_llama_cpp
from ..errors import MoALocalError

CPUINFO = Path("/proc/cpuinfo")


def host_identity() -> dict[str, str]:
    """The CPU's model name and the llama.cpp build's version and kernels ("" if absent)."""
    return dict(_identity())


@functools.cache
def _identity() -> tuple[tuple[str, str], ...]:
    return (("cpu", cpu_model()), ("llama_cpp", llama_cpp_build()))


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name: Linux's ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    if match:
        return match.group(1).strip()
    return platform.processor() or platform.machine()


def llama_cpp_build() -> str:
    """llama-cpp-python's version and the features its build uses, or "" when not installed.

    For example ``0.3.36 (CPU: AVX AVX2 AVX512 ... REPACK)``.
    """
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return ""
    try:  # through the backend, so that its AMX and logging settings apply
        info = import_llama_cpp().llama_print_system_info().decode("utf-8", "replace")
    except (MoALocalError, AttributeError, OSError):
        return version
    features = build_features(info)
    return f"{version} ({features})" if features else version


def build_features(info: str) -> str:
    """llama.cpp's system-info line reduced to the features that are on, per backend.

    ``"CPU : SSE3 = 1 | AVX = 1 | AMX_INT8 = 0 |"`` becomes ``"CPU: SSE3 AVX"``;
    settings that are not on/off flags (``ARCHS = 890``) are kept as they are.
    """
    backends: list[str] = []
    for part in info.split("|"):
        part = part.strip()
        named = re.match(r"([A-Za-z][\w-]*)\s*:\s*(.*)$", part)
        if named:
            backends.append(f"{named.group(1)}:")
            part = named.group(2).strip()
        flag = re.match(r"([\w-]+)\s*=\s*(\S+)$", part)
        if not flag or not backends:
            continue
        name, value = flag.groups()
        if value == "1":
            backends[-1] += f" {name}"
        elif value != "0":
            backends[-1] += f" {name}={value}"
    return "; ".join(backends)
