"""The OpenAI chat API: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Shapes follow OpenAI's API reference: a ``chat.completion`` object, or with
``stream`` server-sent events of ``chat.completion.chunk`` objects ending in
``data: [DONE]`` (usage in a last chunk with empty ``choices`` when
``stream_options.include_usage``). Errors are ``{"error": {"message",
"type", "param", "code"}}`` with the matching status; a full queue is 429
with ``Retry-After``. Usage counts every generation of the mixture.
With ``show_proposals`` the proposals stream first as ``reasoning_content``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..result import MoAResult
from .http import (
    RETRY_AFTER_S,
    BadRequest,
    bool_field,
    message_list,
    number_field,
    one_line,
    read_json,
    status_of,
    stop_field,
    text_field,
)
from .runtime import ChatRequest, ServeRuntime, split_messages
from .streaming import LiveRun, Piece

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "server_busy"),
    500: ("server_error", None),
}


def error_response(exc: BaseException, status: int | None = None) -> JSONResponse:
    """OpenAI's error JSON for ``exc``."""
    status = status or status_of(exc)
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    body = {
        "error": {
            "message": one_line(exc),
            "type": kind,
            "param": getattr(exc, "param", None),
            "code": code,
        }
    }
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 429 else None
    return JSONResponse(body, status_code=status, headers=headers)


def routes(runtime: ServeRuntime) -> list[Route]:
    """The OpenAI routes over ``runtime``."""

    async def models(request: Request) -> Response:
        """``GET /v1/models``: every offered model."""
        created = int(runtime.started)
        data = [
            {"id": offer.name, "object": "model", "created": created, "owned_by": "moa-local"}
            for offer in runtime.offers
        ]
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Response:
        """``POST /v1/chat/completions``: one chat, streamed as SSE or answered whole."""
        try:
            chat, stream, include_usage = await _parse(request, runtime)
            reasoning = runtime.show_proposals(chat.model)
            ticket = runtime.queue.reserve()
        except Exception as exc:
            return error_response(exc)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        run = LiveRun(runtime, chat, ticket, request, reasoning=reasoning)
        if stream:
            body = _chunks(run.pieces(), chat, completion_id, include_usage)
            return StreamingResponse(body, media_type="text/event-stream")
        thinking: list[str] = []
        try:
            async for item in run.pieces():
                if isinstance(item, MoAResult):
                    return JSONResponse(
                        _completion(item, chat, completion_id, "".join(thinking) or None)
                    )
                if item.kind == "reasoning":
                    thinking.append(item.text)
        except Exception as exc:
            return error_response(exc)
        return error_response(RuntimeError("the run ended without a result"))

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    ]


async def _parse(request: Request, runtime: ServeRuntime) -> tuple[ChatRequest, bool, bool]:
    data = await read_json(request)
    model = text_field(data, "model", required=True)
    assert model is not None
    runtime.offer(model)
    system, history, prompt = split_messages(message_list(data))
    max_tokens = number_field(data, "max_completion_tokens", 1, 1 << 20, integer=True)
    if max_tokens is None:
        max_tokens = number_field(data, "max_tokens", 1, 1 << 20, integer=True)
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", param="stream_options")
    chat = ChatRequest(
        model=model,
        prompt=prompt,
        history=history,
        system=system,
        temperature=number_field(data, "temperature", 0.0, 2.0),
        max_tokens=max_tokens,
        seed=number_field(data, "seed", -(1 << 63), (1 << 63) - 1, integer=True),
        stop=stop_field(data),
    )
    return chat, bool_field(data, "stream", False), bool_field(options, "include_usage", False)


def _usage(result: MoAResult) -> dict[str, int]:
    prompt = int(result.usage.get("prompt_tokens", 0))
    completion = int(result.usage.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def finish_reason(result: MoAResult) -> str:
    """ "length" when the answer's generation ran out of tokens, else "stop"."""
    return "length" if result.aggregator.finish_reason == "length" else "stop"


def _completion(
    result: MoAResult, chat: ChatRequest, completion_id: str, reasoning: str | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.final_response}
    if reasoning:
        message["reasoning_content"] = reasoning
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": _usage(result),
        "system_fingerprint": None,
        "moa": {"run_id": result.run_id, "trace_file": result.trace_file, "layers": result.layers},
    }


async def _chunks(
    events: AsyncIterator[Piece | MoAResult],
    chat: ChatRequest,
    completion_id: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any] | None, reason: str | None = None, **extra: Any) -> str:
        """One SSE chunk; ``delta`` None sends no choice (the usage chunk)."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "system_fingerprint": None,
            "choices": [] if delta is None else [choice],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for item in events:
            if isinstance(item, MoAResult):
                yield chunk({}, finish_reason(item))
                if include_usage:
                    yield chunk(None, usage=_usage(item))
            elif item.kind == "text":
                yield chunk({"content": item.text})
            elif item.kind == "reasoning":
                yield chunk({"reasoning_content": item.text})
    except Exception as exc:
        # The status line has gone: the error travels as an event, as OpenAI's does.
        response = error_response(exc)
        yield f"data: {bytes(response.body).decode()}\n\n"
    yield "data: [DONE]\n\n"
