"""The Ollama backend against a local HTTP server that answers as Ollama's API does."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from moa_local import GenerationError, MoA
from moa_local.backends import remote
from moa_local.backends.base import GenerateRequest
from moa_local.backends.ollama import OllamaBackend
from moa_local.cli import main
from moa_local.config import load_config
from moa_local.models.estimate import MIB
from moa_local.models.references import resolve_model
from moa_local.models.store import ModelStore
from moa_local.trace import read_trace
from tests.ollama_fake import (
    RESIDENT_SIZE,
    SIZE,
    TAG,
    chat_lines,
    ndjson,
    pull_lines,
    serve_chat,
    serve_error,
    serve_facts,
)
from tests.servers import free_port


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.01, 0.01, 0.01))


def configure(url: str, timeout: float = 5, budget_mb: float | None = None) -> None:
    budget = f"budget_mb = {budget_mb}\n" if budget_mb else ""
    Path("models.toml").write_text(
        f'[hosts.box]\nurl = "{url}"\nkind = "ollama"\ntimeout = {timeout}\n{budget}'
        'keep_alive = "10m"\n\n'
        f'[models.q]\nhost = "box"\nmodel = "{TAG}"\nn_ctx = 2048\n\n'
        f'[models.q2]\nhost = "box"\nmodel = "{TAG}"\n'
    )


def base_url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def spec(name: str = "q"):  # type: ignore[no-untyped-def]
    return resolve_model(name, load_config(), ModelStore(Path("home")))


def request(max_tokens: int = 32) -> GenerateRequest:
    return GenerateRequest(
        model=spec(),
        messages=({"role": "user", "content": "hi"},),
        temperature=0.4,
        top_p=0.9,
        max_tokens=max_tokens,
        seed=5,
        stop=("END",),
    )


async def test_chat_streams_with_options_and_usage(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_chat(httpserver, ["Hel", "lo", "!"])
    items = [item async for item in OllamaBackend().stream(request())]
    assert items[:3] == ["Hel", "lo", "!"]
    completion = items[-1]
    assert completion.text == "Hello!"  # type: ignore[union-attr]
    assert (completion.prompt_tokens, completion.completion_tokens) == (12, 3)  # type: ignore[union-attr]
    assert completion.seconds == pytest.approx(1.5)  # type: ignore[union-attr]
    chat = next(r for r, _ in httpserver.log if r.path == "/api/chat")
    sent = json.loads(chat.get_data())
    assert sent["model"] == TAG and sent["stream"] is True and sent["keep_alive"] == "10m"
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["options"] == {
        "temperature": 0.4,
        "top_p": 0.9,
        "num_ctx": 2048,
        "num_predict": 32,
        "seed": 5,
        "stop": ["END"],
    }


async def test_estimate_from_show_and_tags(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_facts(httpserver)
    estimate = await OllamaBackend().estimate(spec())
    kv = 24 * (64 + 64) * 2 * 2 * 2048  # layers x (k+v) x kv heads x f16 x n_ctx
    assert estimate.weights == SIZE and estimate.kv_cache == kv
    assert set(estimate.per_device) == {"host:box"}


async def test_estimate_of_a_resident_model_is_what_ps_reports(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_facts(httpserver, resident=True)
    estimate = await OllamaBackend().estimate(spec())
    assert estimate.per_device == {"host:box": RESIDENT_SIZE}


def test_moa_on_ollama_traces_load_with_host_figures(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver), budget_mb=2000)
    serve_facts(httpserver)
    serve_chat(httpserver, ["Paris", "."])
    moa = MoA(proposers=["q", "q2"], aggregator="q", layers=2, max_tokens=16)
    result = moa.run_sync("Capital of France?")
    assert result.final_response == "Paris."
    assert all(p.ok for layer in result.layer_history for p in layer)
    loads = [e for e in read_trace(result.trace_file) if e["event"] == "model.load"]
    assert {e["device"] for e in loads} == {"host:box"}
    assert all(e["measured_mb"] is None for e in loads)  # not resident in /api/ps
    assert moa.scheduler.budgets["host:box"] == 2000 * MIB


def test_model_not_found_says_how_to_pull(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    for path in ("/api/show", "/api/generate", "/api/chat"):
        serve_error(httpserver, path, 404, f"model '{TAG}' not found")
    moa = MoA(proposers=["q", "echo:other"], aggregator="echo:agg", layers=1)
    result = moa.run_sync("hi")
    assert result.layer_history[0][0].error == (
        f"q@box: model '{TAG}' is not on Ollama at {base_url(httpserver)}; run `moa-local pull q`"
    )


def test_auto_pull_pulls_a_missing_model_with_a_bar_per_layer(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_facts(httpserver, pulled=False)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(pull_lines()), content_type="application/x-ndjson"
    )
    serve_chat(httpserver, ["ok"])
    bars: dict[str, list[int]] = {}

    class Bar:
        def __init__(self, name: str, total: int) -> None:
            self.name = name
            bars[name] = [total, 0]

        def update(self, n: int) -> None:
            bars[self.name][1] += n

        def close(self) -> None:
            pass

    moa = MoA(proposers=["q"], aggregator="q", layers=1, auto_pull=True, progress=Bar)
    assert moa.run_sync("hi").final_response == "ok"
    assert sorted(bars.values()) == [[50, 50], [1000, 1000]]
    pulled = [r for r, _ in httpserver.log if r.path == "/api/pull"]
    assert json.loads(pulled[0].get_data())["model"] == TAG


def test_busy_server_is_retried_then_answers(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_facts(httpserver)
    serve_error(httpserver, "/api/chat", 503, "server busy, please try again.", oneshot=True)
    serve_error(httpserver, "/api/chat", 503, "server busy, please try again.", oneshot=True)
    serve_chat(httpserver, ["fine"])
    result = MoA(proposers=["q"], aggregator="echo:agg", layers=1).run_sync("hi")
    assert result.layer_history[0][0].content == "fine"
    assert sum(r.path == "/api/chat" for r, _ in httpserver.log) == 3


async def test_busy_server_after_every_retry_is_an_error(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_error(httpserver, "/api/chat", 503, "server busy, please try again.")
    with pytest.raises(GenerationError, match=r"busy \(503, queue full\) after 4 tries"):
        await OllamaBackend().generate(request())


async def test_error_line_in_the_middle_of_a_stream(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    lines = [*chat_lines(["partial"])[:1], {"error": "an error was encountered while running"}]
    httpserver.expect_request("/api/chat").respond_with_data(ndjson(lines))
    with pytest.raises(GenerationError, match="q@box: Ollama at .*: an error was encountered"):
        await OllamaBackend().generate(request())


async def test_slow_answer_past_the_timeout(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver), timeout=1)
    answer = threading.Event()

    def slow(_: Request) -> Response:
        # Answers once the test is over (or after 60 s): a backend that waited
        # for it would get "late" instead of the timeout.
        answer.wait(timeout=60)
        return Response(ndjson(chat_lines(["late"])), content_type="application/x-ndjson")

    httpserver.expect_request("/api/chat").respond_with_handler(slow)
    try:
        with pytest.raises(GenerationError, match="did not answer within 1 s"):
            await OllamaBackend().generate(request())
    finally:
        answer.set()


def test_connection_refused_is_a_proposal_error_and_the_moa_goes_on() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    configure(url)
    result = MoA(proposers=["q", "echo:local"], aggregator="echo:agg", layers=1).run_sync("hi")
    failed = result.layer_history[0][0]
    assert failed.error == (f"q@box: cannot reach ollama at {url}; is `ollama serve` running?")
    assert result.layer_history[0][1].ok and result.final_response


def test_cli_pull_of_an_ollama_model(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(pull_lines()), content_type="application/x-ndjson"
    )
    result = CliRunner().invoke(main, ["pull", "q"])
    assert result.exit_code == 0, result.output
    assert f"q: pulled {TAG} on Ollama at {base_url(httpserver)}" in result.stderr


def test_doctor_lists_hosts_reachability_and_models(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    serve_facts(httpserver)
    dead = f"http://127.0.0.1:{free_port()}"
    with open("models.toml", "a") as handle:
        handle.write(f'\n[hosts.gone]\nurl = "{dead}"\nkind = "openai"\n')
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert f"ok box        ollama  {base_url(httpserver)}: {TAG}" in result.stdout
    assert f"-- gone       openai  {dead}: unreachable" in result.stdout
    report = json.loads(CliRunner().invoke(main, ["doctor", "--json"]).stdout)
    assert [h["reachable"] for h in report["hosts"]] == [True, False]


def test_ollama_budget_from_total_less_what_others_hold(httpserver: HTTPServer) -> None:
    other = {
        "name": "llama3:8b",
        "model": "llama3:8b",
        "size": 1000 * MIB,
        "digest": "b" * 64,
        "details": {},
        "expires_at": "2099-01-01T00:00:00Z",
        "size_vram": 0,
    }
    mine = {**other, "name": TAG, "model": TAG, "size": 300 * MIB}
    httpserver.expect_request("/api/ps").respond_with_json({"models": [other, mine]})
    Path("models.toml").write_text(
        f'[hosts.box]\nurl = "{base_url(httpserver)}"\nkind = "ollama"\ntotal_mb = 4000\n\n'
        f'[models.q]\nhost = "box"\nmodel = "{TAG}"\n'
    )
    moa = MoA(proposers=["q"], aggregator="q", layers=1)
    moa.prepare()
    assert moa.scheduler.budgets["host:box"] == 3000 * MIB  # only llama3's 1000 MiB taken


def test_ollama_and_gguf_proposers_in_one_moa(httpserver: HTTPServer, tiny_model: Path) -> None:
    configure(base_url(httpserver))
    with open("models.toml", "a") as handle:
        handle.write(f'\n[models.tiny]\npath = "{tiny_model}"\n')
    serve_facts(httpserver)
    serve_chat(httpserver, ["from", " ollama"])
    result = MoA(proposers=["q", "tiny"], aggregator="q", layers=2, max_tokens=8, seed=2).run_sync(
        "hi"
    )
    assert [p.model for p in result.layer_history[1]] == ["q", "tiny"]
    assert result.layer_history[0][0].content == "from ollama"
    assert result.layer_history[0][1].completion_tokens > 0  # the GGUF ran in-process
    assert result.final_response == "from ollama"


def test_a_host_that_is_not_ollama_is_one_line_not_a_traceback(httpserver: HTTPServer) -> None:
    configure(base_url(httpserver))
    page = "<html><body>Welcome to nginx!</body></html>"
    for path in ("/api/show", "/api/tags", "/api/ps", "/api/generate", "/api/chat"):
        httpserver.expect_request(path).respond_with_data(page, content_type="text/html")
    moa = MoA(proposers=["q", "echo:local"], aggregator="echo:agg", layers=1, auto_pull=True)
    result = moa.run_sync("hi")
    assert result.layer_history[0][0].error == (
        f"q@box: {base_url(httpserver)} did not answer as an ollama server would "
        "(JSONDecodeError); check the url"
    )
    report = CliRunner().invoke(main, ["doctor"])
    assert report.exit_code == 0 and "-- box" in report.stdout
