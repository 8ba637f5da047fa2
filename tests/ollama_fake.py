"""Answers as Ollama's REST API documentation shows, on a pytest-httpserver.

Shapes follow docs/api.md of ollama/ollama: NDJSON chat and pull streams,
``/api/show`` with ``details`` and ``model_info``, ``/api/ps``, ``/api/tags``,
and errors as ``{"error": "..."}`` with the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer

TAG = "qwen2.5-coder:0.5b"
CREATED = "2025-01-01T00:00:00.000000Z"
DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "qwen2",
    "families": ["qwen2"],
    "parameter_size": "494.03M",
    "quantization_level": "Q4_K_M",
}
SIZE = 397_821_319
RESIDENT_SIZE = 597_000_000


def ndjson(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def chat_lines(words: list[str], model: str = TAG) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {
            "model": model,
            "created_at": CREATED,
            "message": {"role": "assistant", "content": word},
            "done": False,
        }
        for word in words
    ]
    lines.append(
        {
            "model": model,
            "created_at": CREATED,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_500_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": 12,
            "prompt_eval_duration": 100_000_000,
            "eval_count": len(words),
            "eval_duration": 1_300_000_000,
        }
    )
    return lines


def serve_chat(server: HTTPServer, words: list[str], *, oneshot: bool = False) -> None:
    expect = server.expect_oneshot_request if oneshot else server.expect_request
    expect("/api/chat", method="POST").respond_with_data(
        ndjson(chat_lines(words)), content_type="application/x-ndjson"
    )


def serve_error(
    server: HTTPServer, path: str, status: int, message: str, *, oneshot: bool = False
) -> None:
    expect = server.expect_oneshot_request if oneshot else server.expect_request
    expect(path, method="POST").respond_with_json({"error": message}, status=status)


def fact_answers(*, resident: bool = False, pulled: bool = True) -> dict[str, dict[str, Any]]:
    """The JSON of ``/api/show``, ``/api/tags``, ``/api/ps`` and ``/api/generate`` (a preload)."""
    details = {
        "name": TAG,
        "model": TAG,
        "digest": "a" * 64,
        "details": DETAILS,
    }
    show = {
        "modelfile": "FROM qwen2.5-coder",
        "parameters": 'stop "<|im_end|>"',
        "template": "{{ .Prompt }}",
        "details": DETAILS,
        "model_info": {
            "general.architecture": "qwen2",
            "general.parameter_count": 494_032_768,
            "qwen2.block_count": 24,
            "qwen2.context_length": 32768,
            "qwen2.embedding_length": 896,
            "qwen2.feed_forward_length": 4864,
            "qwen2.attention.head_count": 14,
            "qwen2.attention.head_count_kv": 2,
        },
        "capabilities": ["completion"],
        "modified_at": CREATED,
    }
    tags = [{**details, "modified_at": CREATED, "size": SIZE}] if pulled else []
    running = (
        [
            {
                **details,
                "size": RESIDENT_SIZE,
                "expires_at": "2099-01-01T00:00:00Z",
                "size_vram": 0,
            }
        ]
        if resident
        else []
    )
    return {
        "/api/show": show,
        "/api/tags": {"models": tags},
        "/api/ps": {"models": running},
        "/api/generate": {"model": TAG, "created_at": CREATED, "response": "", "done": True},
    }


# Each fact's method, as Ollama's API has it.
FACT_METHODS = {"/api/show": "POST", "/api/tags": "GET", "/api/ps": "GET", "/api/generate": "POST"}


def serve_facts(server: HTTPServer, *, resident: bool = False, pulled: bool = True) -> None:
    for path, answer in fact_answers(resident=resident, pulled=pulled).items():
        server.expect_request(path, method=FACT_METHODS[path]).respond_with_json(answer)


def pull_lines() -> list[dict[str, Any]]:
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    return [
        {"status": "pulling manifest"},
        {"status": f"pulling {first[7:19]}", "digest": first, "total": 1000, "completed": 0},
        {"status": f"pulling {first[7:19]}", "digest": first, "total": 1000, "completed": 600},
        {"status": f"pulling {first[7:19]}", "digest": first, "total": 1000, "completed": 1000},
        {"status": f"pulling {second[7:19]}", "digest": second, "total": 50, "completed": 50},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
