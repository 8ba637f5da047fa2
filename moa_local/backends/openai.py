"""Any server that speaks OpenAI's ``/v1/chat/completions``: llama.cpp's
llama-server or llama-cpp-python's server, vLLM, LM Studio, and the like.

Requests stream (server-sent events) through httpx with explicit timeouts.
Usage comes from the server when it sends it (``stream_options.include_usage``);
otherwise completion tokens are counted from the streamed chunks. The error
rules are those of the Ollama backend: connection refused, 404, 503 (retried
with backoff), an ``error`` object mid-stream, and timeouts each become one
readable :class:`GenerationError` naming the host.

Memory on such a server is the server's business (its models are loaded when
it starts); the scheduler still gives each host its own slots (``slots`` in
``[hosts.NAME]``, default 1), so one host is never sent more than it serves
while other hosts work in parallel.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..errors import GenerationError
from ..models.references import ModelSpec
from . import remote
from .base import BaseBackend, Completion, GenerateRequest, StreamItem, now


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` + ``/v1/...``, whether or not the URL already ends in ``/v1``."""
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return f"{base}/{path}"


class OpenAIBackend(BaseBackend):
    """Chats with a model on an OpenAI-compatible server."""

    name = "openai"

    def _headers(self, spec: ModelSpec) -> dict[str, str]:
        assert spec.host is not None
        return {"Authorization": f"Bearer {spec.host.api_key}"} if spec.host.api_key else {}

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

    async def generate(self, request: GenerateRequest) -> Completion:
        """One chat completion without streaming (proposers need no stream), usage included."""
        spec = request.model
        assert spec.host is not None
        url = endpoint(spec.host.url, "chat/completions")
        started = now()
        try:
            async with httpx.AsyncClient(timeout=remote.generation_timeout(spec)) as client:
                for delay in (*remote.RETRY_DELAYS, None):
                    response = await client.post(
                        url, json=self._body(request, stream=False), headers=self._headers(spec)
                    )
                    if response.status_code != 503 or delay is None:
                        break
                    await asyncio.sleep(delay)
        except remote.TRANSPORT_ERRORS as exc:
            raise remote.translate(spec, exc) from None
        if response.status_code >= 400:
            raise self._status_error(spec, response.status_code, response.text)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise remote.not_the_api(spec, exc) from None
        usage = data.get("usage") or {}
        logprobs = token_logprobs(choice)
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=now() - started,
            finish_reason=choice.get("finish_reason") or "stop",
            token_logprobs=tuple(logprobs) if logprobs else None,
        )

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Stream one chat completion, retrying a 503 before anything was produced."""
        spec = request.model
        assert spec.host is not None
        body = self._body(request, stream=True)
        started = now()
        pieces: list[str] = []
        logprobs: list[float] = []
        usage: dict[str, Any] = {}
        finish_reason = ""
        done = False
        url = endpoint(spec.host.url, "chat/completions")
        for delay in (*remote.RETRY_DELAYS, None):
            try:
                async with (
                    httpx.AsyncClient(timeout=remote.generation_timeout(spec)) as client,
                    client.stream("POST", url, json=body, headers=self._headers(spec)) as response,
                ):
                    if response.status_code == 503 and delay is not None:
                        await asyncio.sleep(delay)
                        continue
                    if response.status_code >= 400:
                        raise self._status_error(
                            spec,
                            response.status_code,
                            (await response.aread()).decode("utf-8", "replace"),
                        )
                    async for line in response.aiter_lines():
                        data = (
                            line.removeprefix("data:").strip() if line.startswith("data:") else ""
                        )
                        if not data:
                            continue
                        if data == "[DONE]":
                            done = True
                            break
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
                break
            except (*remote.TRANSPORT_ERRORS, AttributeError) as exc:
                raise remote.translate(spec, exc) from None
        if not (done or finish_reason):
            # No [DONE] and no finish_reason: the server went away mid-answer,
            # or this was never an OpenAI-compatible stream (e.g. a web page).
            raise GenerationError(
                f"{spec.label}: the answer from {spec.host.url} ended before it was complete"
                if pieces
                else f"{spec.label}: {spec.host.url} did not answer as an openai server would; "
                "check the url"
            )
        yield Completion(
            text="".join(pieces),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or len(pieces)),
            seconds=now() - started,
            finish_reason=finish_reason or "stop",
            token_logprobs=tuple(logprobs) if logprobs else None,
        )

    def _status_error(self, spec: ModelSpec, status: int, text: str) -> GenerationError:
        assert spec.host is not None
        try:
            detail = _message(json.loads(text).get("error", text))
        except (json.JSONDecodeError, AttributeError):
            detail = text.strip()[:200]
        if status == 503:
            return remote.busy(spec)
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
        async with httpx.AsyncClient(timeout=remote.QUICK_TIMEOUT) as client:
            response = await client.get(
                endpoint(spec.host.url, "models"), headers=self._headers(spec)
            )
            response.raise_for_status()
        return [str(item.get("id")) for item in response.json().get("data", [])]


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
