"""Load-test `moa-local serve`: N concurrent clients, loopback only, bounded in count and time.

Starts the server as a subprocess on a free 127.0.0.1 port for each scenario:

- ``echo``: echo models with a delay per proposer (the queue and the
  streaming path under load, no compute);
- ``tiny``: the random-weight tiny GGUF of the test suite, through
  llama.cpp (real generation, one run at a time on the CPU);
- ``replicas``: three ``llama_cpp.server`` processes serving the tiny GGUF
  as the hosts of one model (``host = ["a", "b", "c"]``), with ``serve`` in
  front: host b is killed a quarter of the way through (--seconds) and
  started again on its port halfway; the requests each host served
  and the replicas' states come from ``/api/ps``.

Each client sends its requests one after another, alternating the OpenAI
and Ollama routes and streaming or not; a 429/503 is counted and the client
goes on after the Retry-After it was given (bounded by --seconds). Reports
p50/p95 latency of the answered requests, throughput, busy answers,
errors, the server's RSS before and after, and the CPU seconds the server
and the clients spent per answered request. Every request must end in an
answer or an immediate busy status: anything else is an error.

On a small machine the clients, not the server, saturate first (100 clients
of the official async libraries in one process spent 11.8 s of CPU against
the server's 1.5 s for 500 requests): ``--processes N`` spreads the clients
over N processes, and the CPU figures say which side was the limit.

Usage: python scripts/load_serve.py [--clients 16] [--requests 4] [--seconds 120]
       [--max-queue 8] [--scenarios echo,tiny,replicas] [--processes 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve_process import running_server
from tests.servers import LlamaServer
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

REPLICATED = """
[hosts.a]
url = "{a}"
kind = "openai"
slots = 2

[hosts.b]
url = "{b}"
kind = "openai"
slots = 2

[hosts.c]
url = "{c}"
kind = "openai"
slots = 2

[models.tiny]
host = ["a", "b", "c"]
model = "tiny"
n_ctx = 2048

[defaults]
proposers = ["tiny"]
aggregator = "tiny"
strategy = "temperature"
num_proposers = 3
layers = 1
router = "off"
aggregate = "vote"
max_tokens = 16
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


async def clients_of(
    url: str, first: int, count: int, requests: int, seconds: float
) -> dict[str, Any]:
    """Run clients ``first`` .. ``first + count - 1`` against ``url``; what they saw."""
    deadline = time.monotonic() + seconds
    seen: dict[str, Any] = {"latencies": [], "busy": 0, "errors": [], "busy_answer_s": []}
    cpu_before = time.process_time()

    async def client_loop(client_index: int) -> None:
        async with httpx.AsyncClient(timeout=max(5.0, seconds)) as client:
            sent = 0
            while sent < requests and time.monotonic() < deadline:
                outcome, took, retry = await one_request(
                    client, url, client_index * requests + sent
                )
                if outcome == "ok":
                    seen["latencies"].append(took)
                    sent += 1
                elif outcome == "busy":
                    seen["busy"] += 1
                    seen["busy_answer_s"].append(took)
                    await asyncio.sleep(min(retry, max(0.0, deadline - time.monotonic())))
                else:
                    seen["errors"].append(outcome)
                    sent += 1

    await asyncio.gather(*(client_loop(i) for i in range(first, first + count)))
    seen["cpu_s"] = time.process_time() - cpu_before
    return seen


def clients_in_a_process(url: str, first: int, count: int, requests: int, seconds: float) -> Any:
    """:func:`clients_of` in a process of its own (``--processes``)."""
    return asyncio.run(clients_of(url, first, count, requests, seconds))


def _shares(clients: int, processes: int) -> list[tuple[int, int]]:
    """(first client, count) for each process, as even as they come."""
    size, extra = divmod(clients, processes)
    shares, first = [], 0
    for index in range(processes):
        count = size + (1 if index < extra else 0)
        if count:
            shares.append((first, count))
        first += count
    return shares


async def scenario(
    name: str,
    config: Path,
    clients: int,
    requests: int,
    seconds: float,
    max_queue: int,
    processes: int = 1,
    chaos: Any = None,
) -> dict[str, object]:
    """Run one scenario against a fresh server; the figures as a dict.

    ``chaos``, when given, is a coroutine function run beside the clients
    (the replicas scenario kills and restarts a host with it).
    """
    with running_server(config, "--max-queue", str(max_queue), "--no-singles") as server:
        process = psutil.Process(server.process.pid)
        rss_before = process.memory_info().rss
        server_cpu = process.cpu_times()
        started = time.perf_counter()
        beside = asyncio.ensure_future(chaos()) if chaos else None
        if processes == 1:
            parts = [await clients_of(server.url, 0, clients, requests, seconds)]
        else:
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(processes) as pool:
                parts = await asyncio.gather(
                    *(
                        loop.run_in_executor(
                            pool, clients_in_a_process, server.url, first, count, requests, seconds
                        )
                        for first, count in _shares(clients, processes)
                    )
                )
        wall = time.perf_counter() - started
        if beside is not None:
            await beside
        replicas = httpx.get(f"{server.url}/api/ps", timeout=10).json().get("replicas", [])
        after = process.cpu_times()
        server_cpu_s = (after.user - server_cpu.user) + (after.system - server_cpu.system)
        rss_after = process.memory_info().rss
    latencies = sorted(x for part in parts for x in part["latencies"])
    errors = [e for part in parts for e in part["errors"]]
    busy_answer_s = [x for part in parts for x in part["busy_answer_s"]]
    answered = max(1, len(latencies))
    return {
        "scenario": name,
        "clients": clients,
        "processes": processes,
        "answered": len(latencies),
        "unanswered": clients * requests - len(latencies) - len(errors),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 2),
        "busy_answers": sum(part["busy"] for part in parts),
        "busy_answer_max_s": round(max(busy_answer_s), 3) if busy_answer_s else None,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "server_cpu_ms_per_request": round(1000 * server_cpu_s / answered, 1),
        "client_cpu_ms_per_request": round(
            1000 * sum(part["cpu_s"] for part in parts) / answered, 1
        ),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "wall_s": round(wall, 1),
        "served_per_host": {r["host"]: r["served"] for r in replicas} or None,
        "host_states": {r["host"]: r["state"] for r in replicas} or None,
    }


def replicated_hosts(directory: Path, seconds: float) -> tuple[str, list[LlamaServer], Any]:
    """Three tiny-model servers, the config naming them, and the chaos that kills b."""
    model = write_tiny_gguf(directory / "tiny.gguf", context_length=2048)
    servers = [LlamaServer(model, directory / f"{n}.log") for n in "abc"]
    for server in servers:
        server.wait_ready()

    async def kill_and_restart_b() -> None:
        await asyncio.sleep(seconds / 4)
        print("killing host b", file=sys.stderr)
        servers[1].stop()
        await asyncio.sleep(seconds / 4)
        print("starting host b again", file=sys.stderr)
        servers[1] = LlamaServer(model, directory / "b.log", port=servers[1].port)
        await asyncio.to_thread(servers[1].wait_ready)

    text = REPLICATED.format(a=servers[0].url, b=servers[1].url, c=servers[2].url)
    return text, servers, kill_and_restart_b


def main() -> None:
    """Parse the options, run the scenarios, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="per client")
    parser.add_argument("--seconds", type=float, default=120, help="per scenario, at most")
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--scenarios", default="echo,tiny")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if not 1 <= options.clients <= 256:
        parser.error("--clients must be between 1 and 256")
    if not 1 <= options.processes <= 32:
        parser.error("--processes must be between 1 and 32")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in options.scenarios.split(","):
            directory = root / name
            directory.mkdir()
            chaos, servers = None, []
            if name == "echo":
                text = ECHO
            elif name == "replicas":
                text, servers, chaos = replicated_hosts(directory, options.seconds)
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
            try:
                results.append(
                    asyncio.run(
                        scenario(
                            name,
                            config,
                            options.clients,
                            options.requests,
                            options.seconds,
                            options.max_queue,
                            options.processes,
                            chaos,
                        )
                    )
                )
            finally:
                for server in servers:
                    server.stop()
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
        "server_cpu_ms_per_request",
        "client_cpu_ms_per_request",
        "rss_before_mb",
        "rss_after_mb",
        "wall_s",
        "served_per_host",
    ]
    print(" | ".join(keys))
    for row in results:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
