"""Benchmark the memory-aware scheduler.

Measures, on this machine:

1. the scheduler's own overhead per lease (acquire + release, no model work),
   for a model already resident and for one that must be admitted and evicted;
2. estimated vs measured memory (process RSS delta at load, each load in a
   fresh process) for every installed catalog model, and any GGUF given with
   --gguf;
3. the wall time of the default ``ask`` (proposers qwen2.5-coder-0.5b and
   smollm2-135m, 2 layers, aggregator qwen2.5-coder-0.5b) with a plain
   one-at-a-time scheduler (issue 2's behaviour: load lazily, never unload),
   with the memory-aware scheduler and a roomy budget, and with a budget
   too small to hold both models (700 MiB).

Usage:  python scripts/bench_scheduler.py [--leases 20000] [--max-tokens 128]
        [--skip-ask] [--gguf FILE ...]
Models are pulled into $MOA_LOCAL_HOME if missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from moa_local import MoA
from moa_local.backends.base import BackendRegistry
from moa_local.backends.echo import EchoBackend
from moa_local.config import load_config, moa_home
from moa_local.machine.scheduler import Lease, Scheduler
from moa_local.models.catalog import CATALOG
from moa_local.models.estimate import MIB
from moa_local.models.references import ModelSpec, resolve_model
from moa_local.models.store import ModelStore

PROMPT = "Explain in a short paragraph why the sky is blue."


class PlainScheduler:
    """Issue 2's scheduler: one generation at a time, models loaded lazily and kept."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None

    def check_fits(self, spec: ModelSpec, estimate: Any) -> None:
        return None

    def is_resident(self, spec: ModelSpec) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def lease(self, spec: ModelSpec, emit: Any = None) -> AsyncIterator[Lease]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            yield Lease(spec, None)

    async def close(self, emit: Any = None) -> None:
        return None


async def lease_overhead(count: int) -> dict[str, float]:
    """Microseconds per lease: resident model, and admit-with-eviction."""
    echo = EchoBackend()
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 1000 * MIB})
    config = load_config()
    store = ModelStore(Path("."))
    a = resolve_model("echo:a?size_mb=600", config, store)
    b = resolve_model("echo:b?size_mb=600", config, store)
    async with scheduler.lease(a):
        pass
    started = time.perf_counter()
    for _ in range(count):
        async with scheduler.lease(a):
            pass
    resident = (time.perf_counter() - started) / count * 1e6
    swaps = max(1, count // 10)
    started = time.perf_counter()
    for index in range(swaps):
        async with scheduler.lease(b if index % 2 == 0 else a):
            pass
    swapping = (time.perf_counter() - started) / swaps * 1e6
    return {"resident_us": resident, "evict_and_admit_us": swapping}


_MEASURE = """
import asyncio, dataclasses, json, sys
from pathlib import Path
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.models.references import ModelSpec
path, n_ctx = Path(sys.argv[1]), int(sys.argv[2])
spec = ModelSpec(name=path.name, backend="llamacpp", path=path, n_ctx=n_ctx, chat_format="chatml")
async def main():
    backend = LlamaCppBackend()
    estimate = await backend.estimate(spec)
    report = await backend.load(spec)
    print(json.dumps({"estimate": estimate.total, "measured": report.measured["cpu"]}))
asyncio.run(main())
"""


def memory_table(extra: list[Path]) -> list[dict[str, Any]]:
    """Estimate vs measured RSS delta, each load in a fresh process.

    A fresh process matters: after a model is freed, the allocator keeps its
    pages, so a second load in the same process shows a smaller RSS delta.
    """
    store = ModelStore(moa_home())
    files = [
        (entry.name, store.path_for(entry))
        for entry in CATALOG.values()
        if store.is_installed(entry)
    ]
    files += [(path.name, path.resolve()) for path in extra]
    rows = []
    for name, path in files:
        for n_ctx in (4096, 8192):
            output = subprocess.run(
                [sys.executable, "-c", _MEASURE, str(path), str(n_ctx)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            estimate, measured = figures["estimate"], figures["measured"]
            rows.append(
                {
                    "model": name,
                    "n_ctx": n_ctx,
                    "estimate_mb": estimate / MIB,
                    "measured_mb": measured / MIB,
                    "error_pct": (estimate - measured) / measured * 100,
                }
            )
    return rows


async def ask_once(max_tokens: int, plain: bool, budget_mb: float | None) -> dict[str, Any]:
    moa = MoA(
        proposers=["qwen2.5-coder-0.5b", "smollm2-135m"],
        aggregator="qwen2.5-coder-0.5b",
        layers=2,
        max_tokens=max_tokens,
        seed=7,
        budget_mb=budget_mb,
        auto_pull=True,
        trace_dir="",
    )
    await asyncio.to_thread(moa.prepare)
    if plain:
        moa.scheduler = PlainScheduler()  # type: ignore[assignment]
    events: list[str] = []
    moa.observers.append(lambda event, record: events.append(event))
    started = time.perf_counter()
    result = await moa.run(PROMPT)
    seconds = time.perf_counter() - started
    await moa.aclose()
    gc.collect()
    return {
        "seconds": seconds,
        "tokens": result.usage["completion_tokens"],
        "loads": events.count("model.load"),
        "unloads": events.count("model.unload"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leases", type=int, default=20000)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-ask", action="store_true")
    parser.add_argument("--gguf", type=Path, nargs="*", default=[])
    args = parser.parse_args()

    overhead = await lease_overhead(args.leases)
    print(
        f"scheduler overhead per lease: {overhead['resident_us']:.1f} us (model resident), "
        f"{overhead['evict_and_admit_us']:.1f} us (evict one model, admit another)"
    )

    if not args.skip_ask:
        # Pull first so that downloads do not count in the timings.
        await ask_once(8, plain=False, budget_mb=None)
        print(f"\ndefault ask, max_tokens {args.max_tokens}, best of {args.repeats}:")
        for label, plain, budget in (
            ("plain one-at-a-time scheduler", True, None),
            ("memory-aware, computed budget", False, None),
            ("memory-aware, 700 MiB budget ", False, 700.0),
        ):
            runs = [await ask_once(args.max_tokens, plain, budget) for _ in range(args.repeats)]
            best = min(runs, key=lambda run: run["seconds"])
            print(
                f"  {label}: {best['seconds']:.1f} s (median "
                f"{statistics.median(r['seconds'] for r in runs):.1f} s), "
                f"{best['tokens']} tokens, {best['loads']} loads, {best['unloads']} unloads"
            )

    print("\nestimated vs measured memory (RSS delta at load):")
    print(f"  {'model':<22} {'n_ctx':>6} {'estimate':>10} {'measured':>10} {'error':>7}")
    for row in memory_table(args.gguf):
        print(
            f"  {row['model']:<22} {row['n_ctx']:>6} {row['estimate_mb']:>7.0f} MiB "
            f"{row['measured_mb']:>7.0f} MiB {row['error_pct']:>+6.1f}%"
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
