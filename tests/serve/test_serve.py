"""`moa-local serve` in a subprocess, spoken to by the official openai and ollama clients."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import ollama
import pytest
from openai import OpenAI

from moa_local.trace import read_trace
from tests.serve_process import Server, running_server

KEY = "s3cret-key"

ECHO_CONFIG = """
[defaults]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 2
strategy = "model"
num_proposers = 0
router = "off"
aggregator_temperature = -1.0
layout = "references"
aggregate = "synthesize"
trace_dir = "{traces}"

[presets.shown]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 1
strategy = "model"
num_proposers = 0
router = "off"
show_proposals = true

[presets.slow]
proposers = ["echo:slow?delay=30"]
aggregator = "echo:agg"
layers = 1
strategy = "model"
num_proposers = 0
router = "off"

[presets.steady]
proposers = ["echo:steady?delay=3"]
aggregator = "echo:agg"
layers = 1
strategy = "model"
num_proposers = 0
router = "off"
"""


def write_config(directory: Path, text: str = ECHO_CONFIG) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "models.toml"
    path.write_text(text.format(traces=directory / "traces"))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One echo server for the module's protocol tests."""
    root = tmp_path_factory.mktemp("serve")
    env = {"MOA_LOCAL_HOME": str(root / "home")}
    with running_server(write_config(root), env=env) as running:
        yield running


def traces(server: Server) -> list[list[dict]]:
    directory = Path(server.log).parent / "traces"
    return [read_trace(path) for path in sorted(directory.glob("*.jsonl"))]


# -- OpenAI ----------------------------------------------------------------------


def test_openai_lists_the_mixture_and_its_presets(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "moa"
    assert {"moa:shown", "moa:self-moa"} <= set(ids)


def test_openai_chat_without_streaming(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    response = client.chat.completions.create(
        model="moa", messages=[{"role": "user", "content": "What is two plus two?"}]
    )
    choice = response.choices[0]
    # two layers of two echo proposers, then the aggregator, which saw both
    assert choice.message.content == "[agg t=0.70 refs=2] What is two plus two?"
    assert choice.finish_reason == "stop"
    assert response.object == "chat.completion" and response.model == "moa"
    assert response.usage.completion_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


def test_openai_chat_streams_chunks_and_usage(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="moa",
        messages=[{"role": "user", "content": "Stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.2,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[agg t=0.20 refs=2] Stream me please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_openai_max_tokens_and_stop_are_honoured(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    short = client.chat.completions.create(
        model="moa", messages=[{"role": "user", "content": "one two three four five"}], max_tokens=3
    )
    assert len(short.choices[0].message.content.split()) == 3
    assert short.choices[0].finish_reason == "length"
    stopped = client.chat.completions.create(
        model="moa", messages=[{"role": "user", "content": "alpha STOP beta"}], stop=["STOP"]
    )
    assert stopped.choices[0].message.content.rstrip().endswith("alpha")


def test_a_conversation_reaches_the_agents_as_chat_turns(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    response = client.chat.completions.create(
        model="moa",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "What is my name?"},
        ],
        seed=5,
    )
    assert response.choices[0].message.content.endswith("What is my name?")
    (start,) = [
        e for trace in traces(server) for e in trace if e["event"] == "run.start" and e["seed"] == 5
    ]
    assert start["turns"] == 2 and start["prompt"] == "What is my name?"


def test_openai_streams_the_proposals_as_reasoning_when_the_preset_says_so(
    server: Server,
) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    chunks = list(
        client.chat.completions.create(
            model="moa:shown", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    answer = "".join(d.content or "" for d in deltas)
    # each proposal whole, under its own heading, before the answer
    assert (
        reasoning
        == "[layer 1, echo:a]\n[a t=0.70 refs=0] Hi\n\n[layer 1, echo:b]\n[b t=0.70 refs=0] Hi"
    )
    assert answer == "[agg t=0.70 refs=2] Hi"
    first_answer = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(
        i for i, d in enumerate(deltas) if (d.model_extra or {}).get("reasoning_content")
    )
    assert last_reasoning < first_answer
    # off by default
    plain = client.chat.completions.create(
        model="moa", messages=[{"role": "user", "content": "Hi"}]
    )
    assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})


def test_openai_errors_have_openai_shape_and_status(server: Server) -> None:
    url = f"{server.url}/v1/chat/completions"
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"model": "moa", "messages": []}).encode(), 400, "messages is empty"),
        (
            json.dumps(
                {"model": "moa", "messages": [{"role": "user", "content": "x"}], "temperature": 5}
            ).encode(),
            400,
            "temperature must be between 0 and 2",
        ),
        (
            json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).encode(),
            404,
            "no model 'nope'",
        ),
        (b"x" * (5 * 1024 * 1024), 413, "larger than"),
    ]
    for body, status, message in cases:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert message in error["message"] and "\n" not in error["message"]
        assert set(error) == {"message", "type", "param", "code"}
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(Exception) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert getattr(caught.value, "status_code", None) == 404


# -- Ollama ----------------------------------------------------------------------


def test_ollama_lists_shows_and_reports_its_version(server: Server) -> None:
    client = ollama.Client(host=server.url)
    names = [m.model for m in client.list().models]
    assert names[0] == "moa:latest" and "moa:shown" in names
    shown = client.show("moa")
    assert shown.details.family == "moa"
    assert shown.modelinfo["moa_local.layers"] == 2
    assert httpx.get(f"{server.url}/api/version").json()["version"]


def test_ollama_chat_without_streaming(server: Server) -> None:
    client = ollama.Client(host=server.url)
    response = client.chat(
        model="moa",
        messages=[{"role": "user", "content": "Count the sheep"}],
        stream=False,
        options={"temperature": 0.4},
    )
    assert response.message.content == "[agg t=0.40 refs=2] Count the sheep"
    assert response.done and response.done_reason == "stop"
    assert response.eval_count > 0 and response.prompt_eval_count > 0
    assert response.total_duration >= response.eval_duration > 0


def test_ollama_chat_streams_ndjson_ending_with_the_counters(server: Server) -> None:
    client = ollama.Client(host=server.url)
    parts = list(
        client.chat(
            model="moa",
            messages=[{"role": "user", "content": "one two three four five six"}],
            options={"num_predict": 4, "seed": 3},
            stream=True,
        )
    )
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason == "length"
    text = "".join(p.message.content for p in parts)
    assert len(text.split()) == 4
    assert parts[-1].eval_count > 0 and parts[-1].total_duration > 0


def test_ollama_generate_and_thinking(server: Server) -> None:
    client = ollama.Client(host=server.url)
    response = client.generate(model="moa", prompt="Say hi", system="Be kind.")
    assert response.response == "[agg t=0.70 refs=2] Say hi" and response.done
    parts = list(
        client.chat(model="moa:shown", messages=[{"role": "user", "content": "Yo"}], stream=True)
    )
    thinking = "".join(p.message.thinking or "" for p in parts)
    assert "[layer 1, echo:a]\n[a t=0.70 refs=0] Yo" in thinking
    assert "".join(p.message.content for p in parts) == "[agg t=0.70 refs=2] Yo"


def test_ollama_ps_lists_the_resident_models(server: Server) -> None:
    client = ollama.Client(host=server.url)
    client.chat(model="moa", messages=[{"role": "user", "content": "warm up"}], stream=False)
    resident = {m.model for m in client.ps().models}
    assert {"echo:a", "echo:agg"} <= resident


def test_ollama_errors_are_one_line_json(server: Server) -> None:
    response = httpx.post(f"{server.url}/api/chat", json={"model": "moa", "messages": "hi"})
    assert response.status_code == 400
    assert response.json() == {"error": "messages must be a list of {role, content} objects"}
    response = httpx.post(f"{server.url}/api/generate", json={"model": "ghost", "prompt": "hi"})
    assert response.status_code == 404 and "no model 'ghost'" in response.json()["error"]
    client = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="moa", messages=[{"role": "assistant", "content": "hi"}], stream=False)
    assert caught.value.status_code == 400 and "last message must be the user's" in str(
        caught.value
    )


# -- load: the queue and cancellation ---------------------------------------------


@pytest.fixture
def tight_server(tmp_path: Path) -> Iterator[Server]:
    """One worker and no queue: a second request while one runs is refused at once."""
    env = {"MOA_LOCAL_HOME": str(tmp_path / "home")}
    with running_server(
        write_config(tmp_path / "tight"), "--workers", "1", "--max-queue", "0", env=env
    ) as running:
        yield running


def _in_background(target) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_full_queue_is_answered_at_once(tight_server: Server) -> None:
    body = {"model": "moa:steady", "messages": [{"role": "user", "content": "hold"}]}
    results: list[int] = []
    holder = _in_background(
        lambda: results.append(
            httpx.post(f"{tight_server.url}/v1/chat/completions", json=body, timeout=60).status_code
        )
    )
    _wait_for_run(tight_server, "hold")  # the first request now holds the only worker
    refused = httpx.post(f"{tight_server.url}/v1/chat/completions", json=body, timeout=60)
    busy = httpx.post(f"{tight_server.url}/api/chat", json=body, timeout=60)
    # At once: both refused while the first run (3 s of its proposer) still
    # holds the worker, not queued until it is free.
    assert results == []
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert refused.json()["error"]["code"] == "server_busy"
    assert busy.status_code == 503 and "busy" in busy.json()["error"]
    holder.join(60)
    assert results == [200]
    # once the worker is free, requests are served again
    assert (
        httpx.post(f"{tight_server.url}/v1/chat/completions", json=body, timeout=30).status_code
        == 200
    )


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/api/chat"])
@pytest.mark.parametrize("stream", [True, False])
def test_a_disconnected_client_cancels_its_run_and_frees_the_worker(
    tight_server: Server, route: str, stream: bool
) -> None:
    slow = {
        "model": "moa:slow",
        "messages": [{"role": "user", "content": "take forever"}],
        "stream": stream,
    }
    if stream:
        with httpx.stream("POST", tight_server.url + route, json=slow, timeout=60) as r:
            assert r.status_code == 200
            running = _wait_for_run(tight_server, "take forever")  # its proposer is generating
    else:
        # The answer would come at the end of the run: hang up once it is running.
        with _raw_post(tight_server.url, route, slow):
            running = _wait_for_run(tight_server, "take forever")
    # The client is gone: its 30-second proposer is cancelled, so the worker is
    # free long before that proposer could have finished.
    quick = {"model": "moa", "messages": [{"role": "user", "content": "quick"}]}
    while True:
        response = httpx.post(f"{tight_server.url}/v1/chat/completions", json=quick, timeout=60)
        if response.status_code != 429 or time.monotonic() - running > 30:
            break
        time.sleep(0.1)
    assert response.status_code == 200 and time.monotonic() - running < 30
    (slow_trace,) = _traces_of(tight_server, "take forever")
    last = slow_trace[-1]
    assert last["event"] == "run.error" and last["kind"] == "cancelled"


@contextmanager
def _raw_post(url: str, route: str, body: dict) -> Iterator[None]:
    """Send a JSON POST on a socket of its own; hang up on leaving, unanswered."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    data = json.dumps(body).encode()
    head = (
        f"POST {route} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(head.encode() + data)
        yield


def _traces_of(server: Server, prompt: str) -> list[list[dict]]:
    directory = Path(server.log).parent / "traces"
    found = [read_trace(p) for p in directory.glob("*.jsonl")]
    return [t for t in found if t and t[0].get("prompt") == prompt]


def _wait_for_run(server: Server, prompt: str) -> float:
    """Wait until the run asked ``prompt`` has begun its first layer; return when (monotonic)."""
    deadline = time.monotonic() + 60  # returns as soon as it has: room for a loaded machine
    while time.monotonic() < deadline:
        traces = _traces_of(server, prompt)
        if traces and any(e["event"] == "layer.start" for e in traces[0]):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"the run of {prompt!r} never started")


# -- security ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("keyed")
    env = {"MOA_LOCAL_HOME": str(root / "home"), "MOA_LOCAL_API_KEY": KEY}
    with running_server(write_config(root), env=env) as running:
        yield running


def test_the_key_is_required_on_every_route(keyed_server: Server) -> None:
    url = keyed_server.url
    for method, path in [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/api/tags"),
        ("POST", "/api/chat"),
        ("GET", "/api/ps"),
        ("GET", "/"),
        ("POST", "/ui/run"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = httpx.request(method, url + path, headers=headers, json={})
            assert response.status_code == 401, (path, response.text)
    assert httpx.get(f"{url}/v1/models").json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(ollama.ResponseError):
        ollama.Client(host=url).list()


def test_the_right_key_is_accepted(keyed_server: Server) -> None:
    client = OpenAI(base_url=f"{keyed_server.url}/v1", api_key=KEY)
    answer = client.chat.completions.create(
        model="moa", messages=[{"role": "user", "content": "k"}]
    )
    assert answer.choices[0].message.content.endswith("k")
    local = ollama.Client(host=keyed_server.url, headers={"Authorization": f"Bearer {KEY}"})
    assert local.list().models
    page = httpx.get(f"{keyed_server.url}/?key={KEY}")
    assert page.status_code == 200 and "<title>moa-local</title>" in page.text


def test_other_addresses_need_a_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "moa_local",
            "serve",
            "--config",
            str(write_config(tmp_path)),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--api-key" in result.stderr


def test_a_port_in_use_is_one_clear_line(server: Server, tmp_path: Path) -> None:
    import subprocess
    import sys

    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "moa_local",
            "serve",
            "--config",
            str(write_config(tmp_path)),
            "--port",
            port,
            "-q",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.startswith("error: cannot listen on 127.0.0.1:")
        and "Traceback" not in result.stderr
    )


# -- a real model --------------------------------------------------------------------


def test_both_clients_chat_with_a_real_llama_cpp_model(tmp_path: Path, tiny_model: Path) -> None:
    pytest.importorskip("llama_cpp")
    config = f"""
[defaults]
proposers = ["path:{tiny_model}"]
aggregator = "path:{tiny_model}"
strategy = "temperature"
num_proposers = 2
layers = 1
router = "off"
max_tokens = 8
trace_dir = ""
"""
    env = {"MOA_LOCAL_HOME": str(tmp_path / "home")}
    with running_server(write_config(tmp_path, config), env=env) as server:
        openai_client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
        messages = [{"role": "user", "content": "Name a colour."}]
        answer = openai_client.chat.completions.create(model="moa", messages=messages, seed=1)
        assert answer.choices[0].message.content.strip()
        # three generations of up to 8 tokens: two samples and the aggregate
        assert 3 <= answer.usage.completion_tokens <= 24
        chunks = list(
            openai_client.chat.completions.create(
                model="moa", messages=messages, seed=1, stream=True
            )
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        # same seed, greedy aggregate: the same answer streamed
        assert streamed.strip() == answer.choices[0].message.content.strip()
        ollama_client = ollama.Client(host=server.url)
        reply = ollama_client.chat(model="moa", messages=messages, stream=False)
        assert reply.message.content.strip() and reply.eval_count > 0
        parts = list(ollama_client.chat(model="moa", messages=messages, stream=True))
        assert parts[-1].done and "".join(p.message.content for p in parts).strip()
        assert any("tiny" in m.model for m in ollama_client.ps().models)


def test_cors_is_off_unless_an_origin_is_allowed(server: Server, tmp_path: Path) -> None:
    preflight = {
        "Origin": "http://ui.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    plain = httpx.options(f"{server.url}/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in plain.headers
    assert (
        "access-control-allow-origin"
        not in httpx.get(f"{server.url}/v1/models", headers={"Origin": "http://ui.example"}).headers
    )
    env = {"MOA_LOCAL_HOME": str(tmp_path / "home")}
    with running_server(
        write_config(tmp_path / "cors"), "--cors-origin", "http://ui.example", env=env
    ) as open_server:
        allowed = httpx.options(f"{open_server.url}/v1/chat/completions", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
        other = httpx.get(f"{open_server.url}/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
