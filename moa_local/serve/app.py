"""The ASGI application of ``moa-local serve``: routes, the API key, CORS and the web page.

Built on Starlette (routing, requests, streaming responses) and served by
uvicorn: a small, maintained ASGI stack with no framework magic between a
route and the engine. Every route, the page and its event stream included,
checks the API key when one is set: ``Authorization: Bearer KEY`` (what the
OpenAI and Ollama clients send), or ``?key=KEY`` for the page a browser
opens; the comparison takes constant time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..result import MoAResult
from . import ollama_api, openai_api
from .http import BadRequest, one_line, read_json, text_field
from .runtime import ChatRequest, ServeRuntime
from .streaming import LiveRun


class ApiKeyMiddleware:
    """Refuses every HTTP request without the key (401) in the shape its API expects."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if self._allowed(scope):
            await self.app(scope, receive, send)
            return
        message = "a valid API key is required: send Authorization: Bearer KEY"
        path = scope.get("path", "")
        if path.startswith("/v1/"):
            body: dict[str, Any] = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        else:
            body = {"error": message}
        response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not given:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("key") or [""])[0].encode()
        return hmac.compare_digest(given, self.key)


def page() -> str:
    """The web page shipped in the package (no build step, no CDN)."""
    return resources.files("moa_local.serve").joinpath("static/index.html").read_text("utf-8")


def ui_routes(runtime: ServeRuntime) -> list[Route]:
    """``/`` (the page) and ``/ui/run`` (a run's engine events as server-sent events)."""

    async def index(request: Request) -> Response:
        """``GET /``: the page."""
        return HTMLResponse(page())

    async def run(request: Request) -> Response:
        """``POST /ui/run``: run a question; its engine events as server-sent events."""
        try:
            data = await read_json(request)
            model = text_field(data, "model") or "moa"
            prompt = text_field(data, "prompt", required=True) or ""
            if not prompt.strip():
                raise BadRequest("the question is empty", param="prompt")
            runtime.offer(model)
            ticket = runtime.queue.reserve()
        except Exception as exc:
            return openai_api.error_response(exc)
        chat = ChatRequest(model=model, prompt=prompt)
        live = LiveRun(runtime, chat, ticket, request, events=True)
        return StreamingResponse(_events(live), media_type="text/event-stream")

    return [Route("/", index, methods=["GET"]), Route("/ui/run", run, methods=["POST"])]


async def _events(live: LiveRun) -> AsyncIterator[str]:
    try:
        async for item in live.pieces():
            if isinstance(item, MoAResult):
                yield _sse({"event": "result", **item.to_dict()})
            elif item.kind == "event":
                yield _sse(item.record)
    except Exception as exc:
        yield _sse({"event": "error", "error": one_line(exc)})


def _sse(record: dict[str, Any]) -> str:
    return f"data: {json.dumps(record, ensure_ascii=False, default=str)}\n\n"


def create_app(
    runtime: ServeRuntime,
    *,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The application over ``runtime``; models are unloaded at shutdown."""
    middleware = []
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    if api_key:
        middleware.append(Middleware(ApiKeyMiddleware, key=api_key))

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/v1/"):
            return openai_api.error_response(BadRequest(f"no route {request.url.path}", 404))
        return JSONResponse({"error": f"no route {request.url.path}"}, status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        message = f"{request.method} is not allowed on {request.url.path}"
        if request.url.path.startswith("/v1/"):
            return openai_api.error_response(BadRequest(message, 405))
        return JSONResponse({"error": message}, status_code=405)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runtime.aclose()

    return Starlette(
        routes=[
            *openai_api.routes(runtime),
            *ollama_api.routes(runtime),
            *ui_routes(runtime),
        ],
        middleware=middleware,
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    )
