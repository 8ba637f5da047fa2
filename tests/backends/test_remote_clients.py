"""Remote backends keep one client per host: connections reused, closed with the backend
or with the event loop they belong to; busy answers retried by the one helper.

The server here speaks HTTP/1.1 and keeps connections open (pytest-httpserver
answers HTTP/1.0 and closes each one), and counts the connections it accepts
and those the client closed, so reuse and closing are seen from the outside.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from moa_local.backends import remote
from moa_local.backends.base import Backend, Completion, GenerateRequest
from moa_local.backends.ollama import OllamaBackend
from moa_local.backends.openai import OpenAIBackend
from moa_local.config import load_config
from moa_local.errors import GenerationError
from moa_local.models.references import ModelSpec, resolve_model
from moa_local.models.store import ModelStore
from tests.ollama_fake import TAG, chat_lines, fact_answers, ndjson

Answer = tuple[int, str, bytes]
# (method, path, request body) -> (status, content type, body)
Route = Callable[[str, str, bytes], Answer]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a held answer: what the test wanted


class KeepAliveServer:
    """An HTTP/1.1 server on the loopback that keeps each connection open until the
    client closes it, counting connections accepted and connections closed."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.opened = 0
        self.requests: list[str] = []
        self.closed = threading.Semaphore(0)  # released once per connection that ended
        # Handlers that must not answer yet wait on this; set when the test ends.
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.opened += 1

            def finish(self) -> None:
                super().finish()
                server.closed.release()

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append(f"{self.command} {self.path}")
                status, kind, data = server.route(self.command, self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def connection_closed(self) -> bool:
        """Wait (10 s at most, far more than a close takes) for a connection to end."""
        return self.closed.acquire(timeout=10)

    def stop(self) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def as_json(data: Any, status: int = 200) -> Answer:
    return status, "application/json", json.dumps(data).encode()


def openai_route(method: str, path: str, body: bytes) -> Answer:
    """Answers as an OpenAI-compatible server: a chat (streamed or not), the model list."""
    if path == "/v1/models":
        return as_json({"data": [{"id": "tiny"}]})
    if json.loads(body).get("stream"):
        chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
        return 200, "text/event-stream", f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    message = {"role": "assistant", "content": "hi"}
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return as_json({"choices": [choice], "usage": usage})


def ollama_route(method: str, path: str, body: bytes) -> Answer:
    """Answers as Ollama does: a streamed chat, and the facts of one model."""
    if path == "/api/chat":
        return 200, "application/x-ndjson", ndjson(chat_lines(["hi"])).encode()
    return as_json(fact_answers()[path])


@pytest.fixture
def served() -> Iterator[Callable[[Route], KeepAliveServer]]:
    servers: list[KeepAliveServer] = []

    def start(route: Route) -> KeepAliveServer:
        servers.append(KeepAliveServer(route))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def configure(url: str, kind: str, timeout: float = 60) -> ModelSpec:
    model = "tiny" if kind == "openai" else TAG
    Path("models.toml").write_text(
        f'[hosts.box]\nurl = "{url}"\nkind = "{kind}"\ntimeout = {timeout}\n\n'
        f'[models.m]\nhost = "box"\nmodel = "{model}"\n'
    )
    return resolve_model("m", load_config(), ModelStore(Path("home")))


def ask(spec: ModelSpec) -> GenerateRequest:
    return GenerateRequest(model=spec, messages=({"role": "user", "content": "hello"},))


async def streamed(backend: Backend, spec: ModelSpec) -> Completion:
    items = [item async for item in backend.stream(ask(spec))]
    assert isinstance(items[-1], Completion)
    return items[-1]


# -- one client per host -------------------------------------------------------------


async def test_an_openai_backend_sends_every_request_over_one_connection(
    served: Callable[[Route], KeepAliveServer],
) -> None:
    server = served(openai_route)
    spec = configure(server.url, "openai")
    backend = OpenAIBackend()
    assert (await backend.generate(ask(spec))).text == "hi"
    assert (await backend.generate(ask(spec))).text == "hi"
    assert (await streamed(backend, spec)).text == "hi"
    assert await backend.host_models(spec) == ["tiny"]
    assert len(server.requests) == 4 and server.opened == 1
    assert not server.closed.acquire(blocking=False)  # kept open for the next request
    await backend.close()
    assert await asyncio.to_thread(server.connection_closed)


async def test_an_ollama_backend_sends_every_request_over_one_connection(
    served: Callable[[Route], KeepAliveServer],
) -> None:
    server = served(ollama_route)
    spec = configure(server.url, "ollama")
    backend = OllamaBackend()
    assert (await streamed(backend, spec)).text == "hi"
    await backend.estimate(spec)  # show, tags, ps: quick calls, the same client
    await backend.load(spec)
    assert (await backend.generate(ask(spec))).text == "hi"
    await backend.unload(spec)
    assert server.requests == [
        "POST /api/chat",
        "POST /api/show",
        "GET /api/tags",
        "GET /api/ps",
        "POST /api/generate",
        "GET /api/ps",
        "POST /api/chat",
        "POST /api/generate",
    ]
    assert server.opened == 1
    assert not server.closed.acquire(blocking=False)
    await backend.close()
    assert await asyncio.to_thread(server.connection_closed)


@pytest.mark.parametrize(
    ("backend_class", "kind", "route"),
    [(OpenAIBackend, "openai", openai_route), (OllamaBackend, "ollama", ollama_route)],
    ids=["openai", "ollama"],
)
def test_a_backend_used_from_one_event_loop_after_another(
    served: Callable[[Route], KeepAliveServer],
    backend_class: Callable[[], Backend],
    kind: str,
    route: Route,
) -> None:
    """As ``MoA`` uses one: facts in short ``asyncio.run`` calls, then a loop per run."""
    server = served(route)
    spec = configure(server.url, kind)
    backend = backend_class()
    assert asyncio.run(backend.generate(ask(spec))).text == "hi"
    # The loop has ended: its client was closed with it, not left to the collector.
    assert server.connection_closed()
    # A client of the ended loop could not run here: the backend made a new one.
    assert asyncio.run(backend.generate(ask(spec))).text == "hi"
    assert server.opened == 2
    asyncio.run(backend.close())
    assert server.connection_closed()


@pytest.mark.parametrize(
    ("backend_class", "kind", "route"),
    [(OpenAIBackend, "openai", openai_route), (OllamaBackend, "ollama", ollama_route)],
    ids=["openai", "ollama"],
)
async def test_a_backend_used_from_a_second_loop_while_the_first_runs(
    served: Callable[[Route], KeepAliveServer],
    backend_class: Callable[[], Backend],
    kind: str,
    route: Route,
) -> None:
    """As ``MoA.run`` does: it plans in a thread, whose ``asyncio.run`` is a second loop."""
    server = served(route)
    spec = configure(server.url, kind)
    backend = backend_class()
    assert (await backend.generate(ask(spec))).text == "hi"
    in_thread = await asyncio.to_thread(asyncio.run, backend.generate(ask(spec)))
    assert in_thread.text == "hi" and server.opened == 2  # a client of its own
    assert await asyncio.to_thread(server.connection_closed)  # closed as its loop ended
    assert (await backend.generate(ask(spec))).text == "hi"
    assert server.opened == 2  # this loop's client, still open
    await backend.close()
    assert await asyncio.to_thread(server.connection_closed)


async def test_closing_closes_only_the_running_loops_clients_and_a_closed_backend_reopens(
    served: Callable[[Route], KeepAliveServer],
) -> None:
    server = served(openai_route)
    spec = configure(server.url, "openai")
    backend = OpenAIBackend()
    await backend.generate(ask(spec))
    await backend.close()
    assert await asyncio.to_thread(server.connection_closed)
    # A MoA closes its backends after each eval configuration and may run again.
    assert (await backend.generate(ask(spec))).text == "hi"
    assert server.opened == 2
    await backend.close()


async def test_ollama_facts_take_the_quick_timeout_on_the_shared_client(
    served: Callable[[Route], KeepAliveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client serves chats (patient) and facts (quick): each request gets its own."""
    monkeypatch.setattr(remote, "QUICK_TIMEOUT", httpx.Timeout(0.2))

    def route(method: str, path: str, body: bytes) -> Answer:
        if path == "/api/tags":
            server.released.wait(timeout=30)  # answers only after the test, far too late
        if path == "/api/chat":
            # Slower than the quick timeout: a chat that took it would fail.
            server.released.wait(timeout=1.0)
        return ollama_route(method, path, body)

    server = served(route)
    spec = configure(server.url, "ollama", timeout=60)
    backend = OllamaBackend()
    assert await backend.is_pulled(spec) is None  # the host did not say in time
    assert (await backend.generate(ask(spec))).text == "hi"
    await backend.close()


# -- the one retry helper ----------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
async def test_retry_busy_asks_again_then_gives_one_line(
    status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.0, 0.0))
    spec = configure("http://box:1", "openai")
    tries = 0

    async def always_busy() -> str:
        nonlocal tries
        tries += 1
        raise remote.Busy(status)

    with pytest.raises(GenerationError) as raised:
        await remote.retry_busy(spec, always_busy)
    reason = {503: "queue full", 429: "too many requests"}[status]
    assert str(raised.value) == f"m@box: http://box:1 is busy ({status}, {reason}) after 3 tries"
    assert tries == 3

    async def busy_once() -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise remote.Busy(status)
        return "served"

    tries = 0
    assert await remote.retry_busy(spec, busy_once) == "served" and tries == 2


@pytest.mark.parametrize("status", [503, 429])
@pytest.mark.parametrize(
    ("kind", "call"),
    [
        ("openai", lambda spec: OpenAIBackend().generate(ask(spec))),
        ("openai", lambda spec: streamed(OpenAIBackend(), spec)),
        ("ollama", lambda spec: OllamaBackend().generate(ask(spec))),
        ("ollama", lambda spec: OllamaBackend().load(spec)),
    ],
    ids=["openai-generate", "openai-stream", "ollama-chat", "ollama-load"],
)
async def test_every_remote_request_retries_a_busy_server_then_says_so(
    served: Callable[[Route], KeepAliveServer],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    call: Callable[[ModelSpec], Any],
    status: int,
) -> None:
    monkeypatch.setattr(remote, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    server = served(lambda method, path, body: as_json({"error": "server busy"}, status))
    spec = configure(server.url, kind)
    reason = {503: "queue full", 429: "too many requests"}[status]
    with pytest.raises(GenerationError) as raised:
        await call(spec)
    assert str(raised.value) == f"m@box: {server.url} is busy ({status}, {reason}) after 4 tries"
    assert len(server.requests) == 4
    assert server.opened == 1  # a busy answer is read, and its connection reused
