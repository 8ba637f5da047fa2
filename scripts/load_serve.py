"""Load-test `moa-local serve`: N concurrent clients, loopback only, bounded in count and time.

Starts the server as a subprocess on a free 127.0.0.1 port for each scenario:

- ``echo``: echo models with a delay per proposer (the queue and the
  streaming path under load, no compute);
- ``tiny``: the random-weight tiny GGUF of the test suite, through
  llama.cpp (real generation, one run at a time on the CPU).

Each client sends its requests one after another, alternating the OpenAI
and Ollama routes and streaming or not; a 429/503 is counted and the client
goes on after the Retry-After it was given (bounded by --seconds). Reports
p50/p95 latency of the answered requests, throughput, busy answers,
errors, and the server's RSS before and after. Every request must end in an
answer or an immediate busy status: anything else is an error.

Usage: python scripts/load_serve.py [--clients 16] [--requests 4] [--seconds 120]
       [--max-queue 8] [--scenarios echo,tiny] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve_process import running_server
from tests.tiny_gguf import write_tiny_gguf

ECHO = """
[defaults]
proposers = ["echo:a?delay=0.2", "echo:b?delay=0.2", "echo:c?delay=0.2"]
aggregator = "echo:agg?delay=0.1"
layers = 1
strategy = "model"
num_proposers = 0
router = "off"
trace_dir = ""
"""

TINY = """
[defaults]
proposers = ["path:{model}"]
aggregator = "path:{model}"
strategy = "temperature"
num_proposers = 3
layers = 1
router = "off"
max_tokens = 24
trace_dir = ""
"""


async def one_request(client: httpx.AsyncClient, url: str, index: int) -> tuple[str, float, float]:
    """Send request ``index``; (outcome, seconds, retry-after) where outcome is ok/busy/error."""
    messages = [{"role": "user", "content": f"Question number {index}: name a colour."}]
    stream = index % 2 == 1
    started = time.perf_counter()
    if index % 4 < 2:
        path, body = "/v1/chat/completions", {"model": "moa", "messages": messages}
        if stream:
            body["stream"] = True
    else:
        path, body = "/api/chat", {"model": "moa", "messages": messages, "stream": stream}
    try:
        async with client.stream("POST", url + path, json=body) as response:
            text = (await response.aread()).decode()
    except httpx.HTTPError as exc:
        return f"error: {type(exc).__name__}", time.perf_counter() - started, 0
    seconds = time.perf_counter() - started
    if response.status_code in (429, 503):
        return "busy", seconds, float(response.headers.get("Retry-After", "1"))
    if response.status_code != 200:
        return f"error: HTTP {response.status_code}", seconds, 0
    complete = (
        "data: [DONE]" in text
        if path.startswith("/v1") and stream
        else '"done": true' in text or '"done":true' in text or '"choices"' in text
    )
    return ("ok" if complete else "error: incomplete answer"), seconds, 0


async def scenario(
    name: str, config: Path, clients: int, requests: int, seconds: float, max_queue: int
) -> dict[str, object]:
    """Run one scenario against a fresh server; the figures as a dict."""
    with running_server(config, "--max-queue", str(max_queue), "--no-singles") as server:
        process = psutil.Process(server.process.pid)
        rss_before = process.memory_info().rss
        deadline = time.monotonic() + seconds
        latencies: list[float] = []
        busy = 0
        errors: list[str] = []
        busy_answer_s: list[float] = []

        async def client_loop(client_index: int) -> None:
            nonlocal busy
            async with httpx.AsyncClient(timeout=max(5.0, seconds)) as client:
                sent = 0
                while sent < requests and time.monotonic() < deadline:
                    outcome, took, retry = await one_request(
                        client, server.url, client_index * requests + sent
                    )
                    if outcome == "ok":
                        latencies.append(took)
                        sent += 1
                    elif outcome == "busy":
                        busy += 1
                        busy_answer_s.append(took)
                        await asyncio.sleep(min(retry, max(0.0, deadline - time.monotonic())))
                    else:
                        errors.append(outcome)
                        sent += 1

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(i) for i in range(clients)))
        wall = time.perf_counter() - started
        rss_after = process.memory_info().rss
    latencies.sort()
    return {
        "scenario": name,
        "clients": clients,
        "answered": len(latencies),
        "unanswered": clients * requests - len(latencies) - len(errors),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 2),
        "busy_answers": busy,
        "busy_answer_max_s": round(max(busy_answer_s), 3) if busy_answer_s else None,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    """Parse the options, run the scenarios, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="per client")
    parser.add_argument("--seconds", type=float, default=120, help="per scenario, at most")
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--scenarios", default="echo,tiny")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if not 1 <= options.clients <= 256:
        parser.error("--clients must be between 1 and 256")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in options.scenarios.split(","):
            directory = root / name
            directory.mkdir()
            if name == "echo":
                text = ECHO
            elif name == "tiny":
                model = write_tiny_gguf(directory / "tiny.gguf", context_length=2048)
                text = TINY.format(model=model)
            else:
                parser.error(f"unknown scenario {name!r}")
            config = directory / "models.toml"
            config.write_text(text)
            print(
                f"running {name}: {options.clients} clients x {options.requests}", file=sys.stderr
            )
            results.append(
                asyncio.run(
                    scenario(
                        name,
                        config,
                        options.clients,
                        options.requests,
                        options.seconds,
                        options.max_queue,
                    )
                )
            )
    if options.json:
        print(json.dumps(results, indent=2))
        return
    keys = [
        "scenario",
        "clients",
        "answered",
        "p50_s",
        "p95_s",
        "throughput_rps",
        "busy_answers",
        "busy_answer_max_s",
        "errors",
        "rss_before_mb",
        "rss_after_mb",
        "wall_s",
    ]
    print(" | ".join(keys))
    for row in results:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
