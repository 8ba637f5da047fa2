"""The echo backend: deterministic answers without a model, for tests and dry runs.

Reference it as ``echo:NAME`` with options after a ``?``, like a URL query:

- ``delay=SECONDS``: wait that long before answering (simulates a slow model);
- ``word_delay=SECONDS``: wait that long between streamed words;
- ``fail=MESSAGE``: raise a :class:`GenerationError` with that message;
- ``fail_after=N``: fail from the Nth call on (1-based), succeed before it;
- ``reply=TEXT``: answer TEXT verbatim instead of the default echo;
- ``recall=1``: answer the first user message of the chat (a test can see
  that earlier turns reached the model);
- ``logprob=X``: report log-probability X for every word (as llama.cpp
  reports one per token), so confidence-weighted choices can be tested;
- ``n_ctx=N``: the context size the engine budgets against;
- ``params=N``: parameter count, so ``aggregator = "auto"`` can rank it;
- ``size_mb=N``: memory the model declares, so the scheduler budgets it
  (on ``device=NAME``, default ``cpu``);
- ``slot=1``: each generation takes a CPU compute slot, like llama.cpp does
  (``slot=host:NAME``: a slot of that host instead);
- ``estimate_delay``, ``unload_delay``: seconds the scheduler's estimate and
  unload calls take; ``unload_fail=MESSAGE``: unloading raises.

The default answer names the model, the temperature, how many references the
system message carried, and the user's question, so tests can see what each
agent was given. Tokens are whitespace-separated words.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..errors import GenerationError
from ..models.estimate import MIB, NO_MEMORY, MemoryEstimate
from ..models.references import ModelSpec
from ..prompts import REFERENCE_HEADER
from .base import BaseBackend, Completion, GenerateRequest, LoadReport, StreamItem, now


@dataclass
class EchoStats:
    """What the echo backend has seen, for tests to assert on."""

    requests: list[GenerateRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    cancelled: int = 0
    loads: list[str] = field(default_factory=list)
    unloads: list[str] = field(default_factory=list)
    resident: set[str] = field(default_factory=set)


class EchoBackend(BaseBackend):
    """Answers deterministically from the request itself."""

    name = "echo"

    def __init__(self) -> None:
        self.stats = EchoStats()
        self._calls: dict[str, int] = {}

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Yield the echo answer word by word, honouring delay and failure options."""
        options = request.model.options
        started = now()
        self.stats.requests.append(request)
        calls = self._calls[request.model.name] = self._calls.get(request.model.name, 0) + 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            delay = float(options.get("delay", 0) or 0)
            if delay:
                await asyncio.sleep(delay)
            fail_after = int(options.get("fail_after", 0) or 0)
            if "fail" in options or (fail_after and calls >= fail_after):
                raise GenerationError(
                    f"{request.model.label}: {options.get('fail') or 'simulated failure'}"
                )
            text = options.get("reply") or (
                _first_user_message(request) if options.get("recall") else self.answer(request)
            )
            words = text.split(" ")
            words = words[: request.max_tokens]
            prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
            word_delay = float(options.get("word_delay", 0) or 0)
            for index, word in enumerate(words):
                yield word if index == 0 else " " + word
                await asyncio.sleep(word_delay)
            logprob = options.get("logprob")
            yield Completion(
                text=" ".join(words),
                prompt_tokens=prompt_tokens,
                completion_tokens=len(words),
                seconds=now() - started,
                finish_reason="length" if len(words) < len(text.split(" ")) else "stop",
                token_logprobs=None if logprob is None else (float(logprob),) * len(words),
            )
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        finally:
            self.stats.in_flight -= 1

    @staticmethod
    def answer(request: GenerateRequest) -> str:
        """The deterministic default answer for ``request``."""
        system = next((m["content"] for m in request.messages if m["role"] == "system"), "")
        user = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        references = len(re.findall(REFERENCE_HEADER.format(number=r"\d+"), system))
        name, _, _ = request.model.name.removeprefix("echo:").partition("?")
        return f"[{name} t={request.temperature:.2f} refs={references}] {' '.join(user.split())}"

    async def estimate(self, model: ModelSpec) -> MemoryEstimate:
        """The declared ``size_mb`` on the declared device (none when not declared)."""
        await asyncio.sleep(float(model.options.get("estimate_delay", 0) or 0))
        size_mb = float(model.options.get("size_mb", 0) or 0)
        if not size_mb:
            return NO_MEMORY
        size = int(size_mb * MIB)
        return MemoryEstimate(size, 0, 0, {model.options.get("device", "cpu"): size})

    def compute_device(self, model: ModelSpec) -> str | None:
        """``cpu`` for ``slot=1``, the named device for ``slot=NAME``, else none."""
        slot = model.options.get("slot")
        return "cpu" if slot == "1" else slot or None

    async def load(self, model: ModelSpec) -> LoadReport:
        """Record the load; "measure" exactly the declared size."""
        self.stats.loads.append(model.name)
        self.stats.resident.add(model.name)
        estimate = await self.estimate(model)
        return LoadReport(seconds=0.0, measured=dict(estimate.per_device))

    async def unload(self, model: ModelSpec) -> None:
        """Record the unload (after ``unload_delay``; raising with ``unload_fail``)."""
        await asyncio.sleep(float(model.options.get("unload_delay", 0) or 0))
        if model.options.get("unload_fail"):
            raise RuntimeError(model.options["unload_fail"])
        self.stats.unloads.append(model.name)
        self.stats.resident.discard(model.name)

    async def count_tokens(self, model: ModelSpec, text: str) -> int:
        """Whitespace-separated words, the echo backend's notion of a token."""
        return len(text.split())


def _first_user_message(request: GenerateRequest) -> str:
    return next((m["content"] for m in request.messages if m["role"] == "user"), "")
