"""The OpenAI-compatible backend against real llama-cpp-python servers, and hosts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from moa_local import MoA
from moa_local.backends.base import Completion, GenerateRequest
from moa_local.backends.openai import OpenAIBackend, endpoint
from moa_local.config import load_config
from moa_local.models.references import resolve_model
from moa_local.models.store import ModelStore
from moa_local.trace import read_trace
from tests.servers import LlamaServer, free_port

pytest.importorskip("llama_cpp.server.app")


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path
) -> Iterator[list[LlamaServer]]:
    logs = tmp_path_factory.mktemp("server-logs")
    started = [LlamaServer(tiny_model, logs / f"server{n}.log") for n in (1, 2)]
    try:
        yield [server.wait_ready() for server in started]
    finally:
        for server in started:
            server.stop()


def hosts_toml(*urls: str, extra: str = "") -> str:
    text = ""
    for name, url in zip(("a", "b", "c"), urls, strict=False):
        text += f'[hosts.{name}]\nurl = "{url}"\nkind = "openai"\ntimeout = 60\n\n'
        text += f'[models.tiny-{name}]\nhost = "{name}"\nmodel = "tiny"\nn_ctx = 4096\n\n'
    return text + extra


def spec_for(name: str):  # type: ignore[no-untyped-def]
    return resolve_model(name, load_config(), ModelStore(Path("home")))


def ask(spec, max_tokens: int = 12) -> GenerateRequest:  # type: ignore[no-untyped-def]
    return GenerateRequest(
        model=spec,
        messages=({"role": "user", "content": "hello"},),
        max_tokens=max_tokens,
        temperature=0.8,
        seed=3,
    )


def test_endpoint_accepts_urls_with_or_without_v1() -> None:
    assert endpoint("http://h:1", "models") == "http://h:1/v1/models"
    assert endpoint("http://h:1/v1/", "models") == "http://h:1/v1/models"


async def test_streaming_and_collected(servers: list[LlamaServer]) -> None:
    Path("models.toml").write_text(hosts_toml(servers[0].url))
    spec = spec_for("tiny-a")
    backend = OpenAIBackend()
    items = [item async for item in backend.stream(ask(spec))]
    assert isinstance(items[-1], Completion)
    assert "".join(i for i in items[:-1] if isinstance(i, str)) == items[-1].text
    assert 0 < items[-1].completion_tokens <= 12
    collected = await backend.generate(ask(spec))  # the non-streaming request
    assert collected.completion_tokens > 0 and collected.prompt_tokens > 0  # server usage
    assert await backend.host_models(spec) == ["tiny"]


async def test_connection_refused_is_a_one_line_generation_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    Path("models.toml").write_text(hosts_toml(url))
    from moa_local import GenerationError

    with pytest.raises(GenerationError, match=rf"tiny-a@a: cannot reach openai at {url}"):
        await OpenAIBackend().generate(ask(spec_for("tiny-a")))


def test_moa_spread_over_two_hosts(servers: list[LlamaServer]) -> None:
    Path("models.toml").write_text(hosts_toml(servers[0].url, servers[1].url))
    moa = MoA(proposers=["tiny-a", "tiny-b"], aggregator="tiny-a", layers=2, max_tokens=8, seed=11)
    result = moa.run_sync("hello")
    assert [[p.model for p in layer] for layer in result.layer_history] == [
        ["tiny-a", "tiny-b"],
        ["tiny-a", "tiny-b"],
    ]
    assert all(
        p.error is None or p.error == "empty answer"
        for layer in result.layer_history
        for p in layer
    )
    # one slot per host: both hosts worked, each never had two generations at once
    assert moa.scheduler.peak_slots == {"host:a": 1, "host:b": 1}


def test_a_host_dying_mid_run_becomes_proposal_errors(tmp_path: Path, tiny_model: Path) -> None:
    doomed = LlamaServer(tiny_model, tmp_path / "doomed.log").wait_ready()
    survivor = LlamaServer(tiny_model, tmp_path / "survivor.log").wait_ready()
    try:
        Path("models.toml").write_text(hosts_toml(survivor.url, doomed.url))

        def kill_before_layer_two(event: str, record: dict) -> None:  # type: ignore[type-arg]
            if event == "layer.start" and record["layer"] == 2:
                doomed.stop()

        moa = MoA(
            proposers=["tiny-a", "tiny-b"],
            aggregator="tiny-a",
            layers=2,
            max_tokens=8,
            seed=11,
            observers=[kill_before_layer_two],
        )
        result = moa.run_sync("hello")
    finally:
        doomed.stop()
        survivor.stop()
    layer1, layer2 = result.layer_history
    assert layer1[1].error in (None, "empty answer")
    failed = layer2[1]
    assert failed.model == "tiny-b" and failed.error
    assert "tiny-b@b" in failed.error and doomed.url in failed.error
    assert result.aggregator.model == "tiny-a" and result.aggregator.error is None
    events = read_trace(result.trace_file)
    errors = [
        e
        for e in events
        if e["event"] == "proposal.done" and e["layer"] == 2 and e["model"] == "tiny-b"
    ]
    assert errors and "tiny-b@b" in errors[0]["error"]
    assert events[-1]["event"] == "run.done"


# -- error shapes, from a local HTTP server ------------------------------------

from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Request, Response  # noqa: E402

from moa_local import GenerationError  # noqa: E402
from moa_local.backends import remote  # noqa: E402


def sse(*chunks: dict | str) -> str:  # type: ignore[type-arg]
    import json

    return "".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks)


def delta(text: str, finish: str | None = None) -> dict:  # type: ignore[type-arg]
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


@pytest.fixture
def fake(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    Path("models.toml").write_text(
        hosts_toml(httpserver.url_for("/").rstrip("/")).replace("timeout = 60", "timeout = 1")
    )
    return httpserver


async def test_usage_from_the_stream_when_the_server_sends_it(fake: HTTPServer) -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    fake.expect_request("/v1/chat/completions").respond_with_data(
        sse(delta("a"), delta("b", "stop"), usage, "[DONE]"), content_type="text/event-stream"
    )
    items = [i async for i in OpenAIBackend().stream(ask(spec_for("tiny-a")))]
    done = items[-1]
    assert items[:2] == ["a", "b"] and isinstance(done, Completion)
    assert (done.prompt_tokens, done.completion_tokens) == (7, 2)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(
            {"error": {"message": "model 'tiny' does not exist"}},
            404,
            "model 'tiny' not found on .*does not exist",
            id="not-found",
        ),
        pytest.param(
            {}, 503, r"busy \(503, queue full\) after 4 tries", id="busy-after-every-retry"
        ),
    ],
)
async def test_an_http_error_status(
    fake: HTTPServer, body: dict[str, object], status: int, message: str
) -> None:
    fake.expect_request("/v1/chat/completions").respond_with_json(body, status=status)
    with pytest.raises(GenerationError, match=message):
        await OpenAIBackend().generate(ask(spec_for("tiny-a")))


async def test_busy_then_served(fake: HTTPServer) -> None:
    fake.expect_oneshot_request("/v1/chat/completions").respond_with_json({}, status=503)
    fake.expect_request("/v1/chat/completions").respond_with_data(
        sse(delta("ok", "stop"), "[DONE]"), content_type="text/event-stream"
    )
    items = [i async for i in OpenAIBackend().stream(ask(spec_for("tiny-a")))]
    assert items[0] == "ok"


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(
            sse(delta("par"), {"error": {"message": "out of memory"}}),
            "tiny-a@a: .*: out of memory",
            id="error-in-the-middle-of-the-stream",
        ),
        pytest.param(
            sse(delta("half an ans")),
            "ended before it was complete",
            id="stream-cut-off-before-the-end",
        ),
    ],
)
async def test_a_broken_stream(fake: HTTPServer, stream: str, message: str) -> None:
    fake.expect_request("/v1/chat/completions").respond_with_data(
        stream, content_type="text/event-stream"
    )
    with pytest.raises(GenerationError, match=message):
        await OpenAIBackend()._collect(ask(spec_for("tiny-a")))


async def test_a_web_page_instead_of_the_api(fake: HTTPServer) -> None:
    fake.expect_request("/v1/chat/completions").respond_with_data(
        "<html><body>router login</body></html>", content_type="text/html"
    )
    with pytest.raises(GenerationError, match="did not answer as an openai server would"):
        await OpenAIBackend()._collect(ask(spec_for("tiny-a")))
    with pytest.raises(GenerationError, match="did not answer as an openai server would"):
        await OpenAIBackend().generate(ask(spec_for("tiny-a")))


async def test_slow_server_times_out(fake: HTTPServer) -> None:
    import threading

    answer = threading.Event()

    def slow(_: Request) -> Response:
        answer.wait(timeout=60)  # after the test: a backend that waited would get "late"
        return Response(sse(delta("late", "stop"), "[DONE]"), content_type="text/event-stream")

    fake.expect_request("/v1/chat/completions").respond_with_handler(slow)
    try:
        with pytest.raises(GenerationError, match="did not answer within 1 s"):
            await OpenAIBackend().generate(ask(spec_for("tiny-a")))
    finally:
        answer.set()


def test_a_server_that_gives_logprobs_gives_them_per_token(
    tmp_path: Path, tiny_model: Path
) -> None:
    server = LlamaServer(tiny_model, tmp_path / "server.log", "--logits_all", "true")
    try:
        server.wait_ready()
        Path("models.toml").write_text(
            hosts_toml(server.url).replace('kind = "openai"', 'kind = "openai"\nlogprobs = true')
        )
        spec = spec_for("tiny-a")
        backend = OpenAIBackend()
        streamed = asyncio.run(_last(backend.stream(ask(spec))))
        collected = asyncio.run(backend.generate(ask(spec)))
    finally:
        server.stop()
    for completion in (streamed, collected):
        assert completion.token_logprobs and all(lp <= 0 for lp in completion.token_logprobs)
    # One per token the server counted (its stream sends more chunks than tokens).
    assert collected.token_logprobs is not None
    assert len(collected.token_logprobs) == collected.completion_tokens


async def _last(items):  # type: ignore[no-untyped-def]
    return [item async for item in items][-1]


async def test_logprobs_are_asked_for_only_where_the_host_says(fake: HTTPServer) -> None:
    fake.expect_request("/v1/chat/completions").respond_with_data(
        sse(delta("a", "stop"), "[DONE]"), content_type="text/event-stream"
    )
    done = [i async for i in OpenAIBackend().stream(ask(spec_for("tiny-a")))][-1]
    assert isinstance(done, Completion) and done.token_logprobs is None
    body = fake.log[-1][0].get_json()
    assert "logprobs" not in body
    Path("models.toml").write_text(
        Path("models.toml")
        .read_text()
        .replace('kind = "openai"', 'kind = "openai"\nlogprobs = true')
    )
    fake.clear_all_handlers()
    chunk = delta("b", "stop")
    chunk["choices"][0]["logprobs"] = {"content": [{"token": "b", "logprob": -0.25}]}
    fake.expect_request("/v1/chat/completions").respond_with_data(
        sse(chunk, "[DONE]"), content_type="text/event-stream"
    )
    done = [i async for i in OpenAIBackend().stream(ask(spec_for("tiny-a")))][-1]
    assert fake.log[-1][0].get_json()["logprobs"] is True
    assert isinstance(done, Completion) and done.token_logprobs == (-0.25,)
