"""Request parsing and error shapes shared by the routes: bounded JSON bodies, typed fields."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ..errors import ConfigError, ContextOverflowError, MoALocalError, ModelError
from .runtime import Busy, UnknownModel

# A request body larger than this is refused (413) before it is read whole.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Seconds a refused client is told to wait before retrying.
RETRY_AFTER_S = 2


class BadRequest(MoALocalError):
    """The request itself is malformed: status 400 (or ``status``) with a one-line reason."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to :data:`MAX_BODY_BYTES`; :class:`BadRequest` else."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes", 413)
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def text_field(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    """``data[key]`` as a string (None when absent and not required)."""
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required", param=key)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string", param=key)
    return value


def number_field(
    data: dict[str, Any], key: str, low: float, high: float, *, integer: bool = False
) -> Any:
    """``data[key]`` as a number within [low, high] (None when absent)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number", param=key)
    if integer and not float(value).is_integer():
        raise BadRequest(f"{key} must be an integer", param=key)
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low:g} and {high:g}, got {value}", param=key)
    return int(value) if integer else float(value)


def stop_field(data: dict[str, Any], key: str = "stop") -> tuple[str, ...]:
    """A stop string or a list of them."""
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise BadRequest(f"{key} must be a string or a list of strings", param=key)


def bool_field(data: dict[str, Any], key: str, default: bool) -> bool:
    """``data[key]`` as a boolean."""
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false", param=key)
    return value


def message_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``messages`` with each content as text (OpenAI's list of text parts is joined)."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages must be a list of {role, content} objects", param="messages")
    result = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param="messages")
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise BadRequest(
                        f"messages[{index}].content: only text parts are supported",
                        param="messages",
                    )
                parts.append(str(part.get("text", "")))
            content = "".join(parts)
        if content is None:
            content = ""
        result.append({"role": message.get("role"), "content": content})
    return result


def status_of(exc: BaseException) -> int:
    """The HTTP status for an error of a run or a request."""
    if isinstance(exc, BadRequest):
        return exc.status
    if isinstance(exc, UnknownModel):
        return 404
    if isinstance(exc, Busy):
        return 429
    if isinstance(exc, ConfigError | ContextOverflowError):
        return 400
    if isinstance(exc, ModelError):
        return 404
    return 500


def one_line(exc: BaseException) -> str:
    """The error's message on one line (an unexpected one says what it was)."""
    text = str(exc) if isinstance(exc, MoALocalError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
