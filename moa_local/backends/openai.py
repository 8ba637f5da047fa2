"""Any server that speaks OpenAI's ``/v1/chat/completions``: llama.cpp's
llama-server or llama-cpp-python's server, vLLM, LM Studio, and the like.

Requests go through one httpx client per host (a :class:`remote.ClientPool`,
so connections are reused) with explicit timeouts; answers stream as
server-sent events. Usage comes from the server when it sends it
(``stream_options.include_usage``); otherwise completion tokens are counted
from the streamed chunks. The error rules are those of the Ollama backend:
connection refused, 404, 503 or 429 (retried with backoff), an ``error``
object mid-stream, and timeouts each become one readable
:class:`GenerationError` naming the host.

Memory on such a server is the server's business (its models are loaded when
it starts); the scheduler still gives each host its own slots (``slots`` in
``[hosts.NAME]``, default 1), so one host is never sent more than it serves
while other hosts work in parallel.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import GenerationError
from ..models.references import ModelSpec
from . import remote
from .base import BaseBackend, Completion, GenerateRequest, StreamItem, now

if TYPE_CHECKING:
    from ..config import HostConfig


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` + ``/v1/...``, whether or not the URL already ends in ``/v1``."""
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return f"{base}/{path}"


class OpenAIBackend(BaseBackend):
    """Chats with a model on an OpenAI-compatible server."""

    name = "openai"

    def __init__(self) -> None:
        self._clients: remote.ClientPool[HostConfig, httpx.AsyncClient] = remote.ClientPool(
            _new_client, _close_client
        )

    async def _client(self, spec: ModelSpec) -> httpx.AsyncClient:
        assert spec.host is not None
        return await self._clients.get(spec.host)

    async def close(self) -> None:
        """Close the connections to every host."""
        await self._clients.aclose()

    def _body(self, request: GenerateRequest, stream: bool) -> dict[str, Any]:
        spec = request.model
        body: dict[str, Any] = {
            "model": spec.remote_model,
            "messages": list(request.messages),
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if spec.host is not None and spec.host.logprobs:
            # llama_cpp.server sends none without top_logprobs; OpenAI allows 0 to 20.
            body["logprobs"] = True
            body["top_logprobs"] = 1
        return body

    async def _send(self, spec: ModelSpec, body: dict[str, Any], stream: bool) -> httpx.Response:
        """POST a chat, asked again while the server is busy; the response is open when
        ``stream`` (the caller closes it), read otherwise."""
        assert spec.host is not None
        client = await self._client(spec)
        url = endpoint(spec.host.url, "chat/completions")

        async def attempt() -> httpx.Response:
            response = await client.send(
                client.build_request("POST", url, json=body), stream=stream
            )
            if response.status_code in remote.BUSY_STATUSES:
                await response.aread()  # read to the end, the connection serves the next try
                await response.aclose()
                raise remote.Busy(response.status_code)
            return response

        try:
            return await remote.retry_busy(spec, attempt)
        except remote.TRANSPORT_ERRORS as exc:
            raise remote.translate(spec, exc) from None

    async def generate(self, request: GenerateRequest) -> Completion:
        """One chat completion without streaming (proposers need no stream), usage included."""
        spec = request.model
        started = now()
        response = await self._send(spec, self._body(request, stream=False), stream=False)
        if response.status_code >= 400:
            raise self._status_error(spec, response.status_code, response.text)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise remote.not_the_api(spec, exc) from None
        usage = data.get("usage") or {}
        return remote.completion(
            text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            counted=0,
            seconds=now() - started,
            finish_reason=choice.get("finish_reason"),
            logprobs=token_logprobs(choice),
        )

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Stream one chat completion, asking again while the server is busy."""
        spec = request.model
        assert spec.host is not None
        started = now()
        pieces: list[str] = []
        logprobs: list[float] = []
        usage: dict[str, Any] = {}
        finish_reason = ""
        done = False
        response = await self._send(spec, self._body(request, stream=True), stream=True)
        try:
            if response.status_code >= 400:
                raise self._status_error(
                    spec,
                    response.status_code,
                    (await response.aread()).decode("utf-8", "replace"),
                )
            async for line in response.aiter_lines():
                data = line.removeprefix("data:").strip() if line.startswith("data:") else ""
                if not data or done:
                    # After [DONE], read the stream to its end (as openai-python does):
                    # a response closed unread takes its connection with it.
                    continue
                if data == "[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise GenerationError(
                        f"{spec.label}: {spec.host.url}: {_message(chunk['error'])}"
                    )
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    logprobs += token_logprobs(choice)
                    if text:
                        pieces.append(text)
                        yield text
                    finish_reason = choice.get("finish_reason") or finish_reason
        except (*remote.TRANSPORT_ERRORS, AttributeError) as exc:
            raise remote.translate(spec, exc) from None
        finally:
            # Back to the pool when read to the end; a stream left early closes it.
            await response.aclose()
        if not (done or finish_reason):
            # No [DONE] and no finish_reason: the server went away mid-answer,
            # or this was never an OpenAI-compatible stream (e.g. a web page).
            raise GenerationError(
                f"{spec.label}: the answer from {spec.host.url} ended before it was complete"
                if pieces
                else f"{spec.label}: {spec.host.url} did not answer as an openai server would; "
                "check the url"
            )
        yield remote.completion(
            "".join(pieces),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            counted=len(pieces),
            seconds=now() - started,
            finish_reason=finish_reason,
            logprobs=logprobs,
        )

    def _status_error(self, spec: ModelSpec, status: int, text: str) -> GenerationError:
        assert spec.host is not None
        try:
            detail = _message(json.loads(text).get("error", text))
        except (json.JSONDecodeError, AttributeError):
            detail = text.strip()[:200]
        if status == 404:
            return GenerationError(
                f"{spec.label}: model {spec.remote_model!r} not found on {spec.host.url} ({detail})"
            )
        if status in (401, 403):
            return GenerationError(
                f"{spec.label}: {spec.host.url} refused the request ({status}); check api_key"
            )
        return GenerationError(f"{spec.label}: {spec.host.url} answered {status}: {detail}")

    def compute_device(self, spec: ModelSpec) -> str | None:
        """Generations on one host share that host's slots."""
        return remote.device_of(spec)

    async def host_models(self, spec: ModelSpec) -> list[str]:
        """Model ids the server lists (for doctor)."""
        assert spec.host is not None
        client = await self._client(spec)
        response = await client.get(endpoint(spec.host.url, "models"), timeout=remote.QUICK_TIMEOUT)
        response.raise_for_status()
        return [str(item.get("id")) for item in response.json().get("data", [])]


def _new_client(host: HostConfig) -> httpx.AsyncClient:
    """The client of one host, with its key and its timeouts."""
    headers = {"Authorization": f"Bearer {host.api_key}"} if host.api_key else None
    return httpx.AsyncClient(headers=headers, timeout=remote.generation_timeout(host))


async def _close_client(client: httpx.AsyncClient) -> None:
    await client.aclose()


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def token_logprobs(choice: Any) -> list[float]:
    """The token log-probabilities of a choice (or a stream chunk's), where the server
    sent them (``logprobs.content[].logprob``, as OpenAI's API does)."""
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
    if not isinstance(content, list):
        return []
    return [
        float(entry["logprob"])
        for entry in content
        if isinstance(entry, dict) and isinstance(entry.get("logprob"), int | float)
    ]
