"""The Ollama API: version, tags, show, ps, and chat and generate with NDJSON streaming.

Shapes follow Ollama's API documentation (docs/api.md): streaming is on
unless ``"stream": false``; each line is a JSON object, the last with
``done: true``, ``done_reason`` and the counters (durations in
nanoseconds). ``options`` may set temperature, num_predict, seed and stop.
Counts cover every generation of the mixture; ``eval_duration`` is the
time after the models were loaded, since a mixture does not split prefill
from decoding. Errors are ``{"error": "..."}``; a full queue is 503.
With ``show_proposals`` the proposals stream first as ``message.thinking``
(``/api/chat``) or ``thinking`` (``/api/generate``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import __version__
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
from .runtime import DEFAULT_MODEL, ChatRequest, Offer, ServeRuntime, split_messages
from .streaming import LiveRun

# The Ollama API version whose documented routes and fields these follow.
OLLAMA_API_VERSION = "0.6.8"
NDJSON = "application/x-ndjson"


def error_response(exc: BaseException, status: int | None = None) -> JSONResponse:
    """Ollama's ``{"error": "..."}``; busy is 503 with ``Retry-After``."""
    status = status or status_of(exc)
    if status == 429:
        status = 503
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"error": one_line(exc)}, status_code=status, headers=headers)


def tag_name(name: str) -> str:
    """An offer's name as Ollama spells it: with a tag (``moa:latest``)."""
    return name if ":" in name else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _details(offer: Offer) -> dict[str, Any]:
    family = "moa" if offer.kind != "single" else str(offer.settings.get("family", ""))
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": str(offer.settings.get("parameters", "")),
        "quantization_level": str(offer.settings.get("quantization", "")),
    }


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def routes(runtime: ServeRuntime) -> list[Route]:
    """The Ollama routes over ``runtime``."""

    async def version(request: Request) -> Response:
        """``GET /api/version``."""
        return JSONResponse({"version": OLLAMA_API_VERSION, "moa_local": __version__})

    async def tags(request: Request) -> Response:
        """``GET /api/tags``: every offered model, as Ollama lists local models."""
        modified = datetime.fromtimestamp(runtime.started, UTC).isoformat()
        models = [
            {
                "name": tag_name(offer.name),
                "model": tag_name(offer.name),
                "modified_at": modified,
                "size": 0,
                "digest": _digest(offer.name),
                "details": _details(offer),
            }
            for offer in runtime.offers
        ]
        return JSONResponse({"models": models})

    async def show(request: Request) -> Response:
        """``POST /api/show``: what an offered model is (its mixture settings)."""
        try:
            data = await read_json(request)
            name = text_field(data, "model") or text_field(data, "name")
            if not name:
                raise BadRequest("model is required", param="model")
            offer = runtime.offer(name)
        except Exception as exc:
            return error_response(exc)
        return JSONResponse(
            {
                "modelfile": f"# {offer.description}",
                "parameters": "",
                "template": "",
                "details": _details(offer),
                "model_info": {
                    "moa_local.kind": offer.kind,
                    **{f"moa_local.{key}": value for key, value in offer.settings.items()},
                },
                "capabilities": ["completion"],
                "modified_at": datetime.fromtimestamp(runtime.started, UTC).isoformat(),
            }
        )

    async def ps(request: Request) -> Response:
        """``GET /api/ps``: the models the scheduler holds now."""
        models = [
            {
                "name": tag_name(item["name"]),
                "model": tag_name(item["name"]),
                "size": item["size"],
                "digest": _digest(item["name"]),
                "details": {"format": "gguf", "family": "", "families": []},
                "expires_at": "0001-01-01T00:00:00Z",
                "size_vram": 0,
            }
            for item in runtime.resident()
        ]
        # Not in Ollama's API (clients ignore it): the hosts of replicated models.
        return JSONResponse({"models": models, "replicas": runtime.replicas()})

    async def chat(request: Request) -> Response:
        """``POST /api/chat``."""
        return await _answer(request, runtime, chat=True)

    async def generate(request: Request) -> Response:
        """``POST /api/generate``."""
        return await _answer(request, runtime, chat=False)

    return [
        Route("/api/version", version, methods=["GET"]),
        Route("/api/tags", tags, methods=["GET"]),
        Route("/api/show", show, methods=["POST"]),
        Route("/api/ps", ps, methods=["GET"]),
        Route("/api/chat", chat, methods=["POST"]),
        Route("/api/generate", generate, methods=["POST"]),
    ]


def _parse(data: dict[str, Any], runtime: ServeRuntime, *, chat: bool) -> ChatRequest:
    model = text_field(data, "model") or DEFAULT_MODEL
    runtime.offer(model)
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("options must be an object", param="options")
    if chat:
        system, history, prompt = split_messages(message_list(data))
    else:
        prompt = text_field(data, "prompt", required=True) or ""
        if not prompt.strip():
            raise BadRequest("prompt is empty", param="prompt")
        system, history = text_field(data, "system") or "", ()
    num_predict = number_field(options, "num_predict", -2, 1 << 20, integer=True)
    return ChatRequest(
        model=model,
        prompt=prompt,
        history=history,
        system=system,
        temperature=number_field(options, "temperature", 0.0, 2.0),
        # Ollama's -1 (and -2) mean "no limit": the configured max_tokens then.
        max_tokens=num_predict if num_predict and num_predict > 0 else None,
        seed=number_field(options, "seed", -(1 << 63), (1 << 63) - 1, integer=True),
        stop=stop_field(options),
    )


async def _answer(request: Request, runtime: ServeRuntime, *, chat: bool) -> Response:
    try:
        data = await read_json(request)
        parsed = _parse(data, runtime, chat=chat)
        stream = bool_field(data, "stream", True)
        reasoning = runtime.show_proposals(parsed.model)
        ticket = runtime.queue.reserve()
    except Exception as exc:
        return error_response(exc)
    started = time.perf_counter()
    run = LiveRun(runtime, parsed, ticket, request, reasoning=reasoning)
    name = tag_name(parsed.model)

    def line(text: str = "", thinking: str = "", result: MoAResult | None = None) -> dict:
        body: dict[str, Any] = {"model": name, "created_at": _now()}
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            body["message"] = message
        else:
            body["response"] = text
            if thinking:
                body["thinking"] = thinking
        body["done"] = result is not None
        if result is not None:
            body.update(_counters(result, run.load_s, time.perf_counter() - started))
        return body

    if stream:

        async def lines() -> AsyncIterator[str]:
            try:
                async for item in run.pieces():
                    if isinstance(item, MoAResult):
                        yield json.dumps(line(result=item)) + "\n"
                    elif item.kind == "text":
                        yield json.dumps(line(item.text), ensure_ascii=False) + "\n"
                    elif item.kind == "reasoning":
                        yield json.dumps(line(thinking=item.text), ensure_ascii=False) + "\n"
            except Exception as exc:
                # The status line has gone: Ollama sends the error as a last line.
                yield json.dumps({"error": one_line(exc)}) + "\n"

        return StreamingResponse(lines(), media_type=NDJSON)
    thinking: list[str] = []
    try:
        async for item in run.pieces():
            if isinstance(item, MoAResult):
                body = line(item.final_response, "".join(thinking), result=item)
                return JSONResponse(body)
            if item.kind == "reasoning":
                thinking.append(item.text)
    except Exception as exc:
        return error_response(exc)
    return error_response(RuntimeError("the run ended without a result"))


def _counters(result: MoAResult, load_s: float, total_s: float) -> dict[str, Any]:
    ns = 1_000_000_000
    reason = "length" if result.aggregator.finish_reason == "length" else "stop"
    return {
        "done_reason": reason,
        "total_duration": int(total_s * ns),
        "load_duration": int(load_s * ns),
        "prompt_eval_count": int(result.usage.get("prompt_tokens", 0)),
        "prompt_eval_duration": 0,
        "eval_count": int(result.usage.get("completion_tokens", 0)),
        "eval_duration": int(max(0.0, total_s - load_s) * ns),
    }
