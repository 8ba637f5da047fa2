"""Measure batched decoding: the samples of one Self-MoA layer, together vs one by one.

For each model, the same three chat requests (one question, temperatures
0.0, 0.4 and 0.8, fixed seeds: what the default temperature strategy sends
for one layer) go through ``LlamaCppBackend.generate_many`` twice, each in
a fresh backend: with batching (all sequences decode in one batch per step)
and without (one after another, everything else as optimized). It prints
the wall time, the decoded tokens per second, the speedup, and whether each
sample's text is the same both ways (with the same seed it is, wherever
the batch's logits agree with the lone sequence's to the last bit).

Each way runs ``--repeats`` times, alternating (times on a small shared VM
wander by tens of percent), and the median is reported.

Usage:  python scripts/bench_batch.py [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
        [--max-tokens 192] [--samples 3] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from moa_local.backends.base import GenerateRequest
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.config import load_config, moa_home
from moa_local.models.references import ModelSpec, resolve_model
from moa_local.models.store import ModelStore

QUESTION = (
    "Write a Python function `is_palindrome(s: str) -> bool` that ignores case and "
    "non-alphanumeric characters, with a short explanation."
)


def requests_for(spec: ModelSpec, samples: int, max_tokens: int) -> list[GenerateRequest]:
    """One layer's requests: the question at spread temperatures, each with its own seed."""
    temperatures = [round(0.8 * i / max(1, samples - 1), 2) for i in range(samples)]
    return [
        GenerateRequest(
            model=spec,
            messages=({"role": "user", "content": QUESTION},),
            temperature=t,
            max_tokens=max_tokens,
            seed=1000 + i,
        )
        for i, t in enumerate(temperatures)
    ]


async def run_layer(spec: ModelSpec, batch: bool, samples: int, max_tokens: int) -> dict[str, Any]:
    """Generate one layer in a fresh backend; the model load is not timed."""
    backend = LlamaCppBackend(batch=batch)
    try:
        await backend.load(spec)
        requests = requests_for(spec, samples, max_tokens)
        started = time.perf_counter()
        texts: list[str] = [""] * len(requests)
        tokens = 0
        async for index, outcome in backend.generate_many(requests):
            if isinstance(outcome, Exception):
                raise outcome
            texts[index] = outcome.text
            tokens += outcome.completion_tokens
        seconds = time.perf_counter() - started
    finally:
        await backend.close()
    return {"seconds": seconds, "tokens": tokens, "texts": texts}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (its texts and tokens go with it)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = load_config()
    store = ModelStore(moa_home())
    rows = []
    for name in args.models.split(","):
        spec = resolve_model(name.strip(), config, store)
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for batch in (False, True):
                runs[batch].append(await run_layer(spec, batch, args.samples, args.max_tokens))
        serial, batched = (median_run(runs[False]), median_run(runs[True]))
        same = sum(a == b for a, b in zip(serial["texts"], batched["texts"], strict=True))
        rows.append(
            {
                "model": spec.name,
                "samples": args.samples,
                "serial_s": round(serial["seconds"], 2),
                "batched_s": round(batched["seconds"], 2),
                "speedup": round(serial["seconds"] / batched["seconds"], 2),
                "serial_tok_s": round(serial["tokens"] / serial["seconds"], 1),
                "batched_tok_s": round(batched["tokens"] / batched["seconds"], 1),
                "serial_tokens": serial["tokens"],
                "batched_tokens": batched["tokens"],
                "identical_outputs": f"{same}/{args.samples}",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        "| model | samples | one by one s | batched s | speedup | tok/s one by one | "
        "tok/s batched | identical |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['samples']} | {r['serial_s']} | {r['batched_s']} | "
            f"{r['speedup']}x | {r['serial_tok_s']} | {r['batched_tok_s']} | "
            f"{r['identical_outputs']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
