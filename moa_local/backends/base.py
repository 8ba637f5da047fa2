"""The backend protocol, the request/response types, and the backend registry.

A backend turns a :class:`GenerateRequest` into text. It implements one small
async protocol:

- ``stream(request)`` yields text pieces as they are produced and, last,
  exactly one :class:`Completion` with usage and timing;
- ``generate(request)`` returns the :class:`Completion` (collected from
  ``stream`` by default);
- ``generate_many(requests, on_text=None)`` runs all of one layer's requests
  for one model and yields ``(index, Completion | GenerationError)`` as each
  finishes; ``on_text(index, piece)``, when given, receives their text as it
  streams. The default runs them one after another; a backend that can batch
  (shared prompt prefix, several sequences in one context) overrides it;
- ``count_tokens(model, text)`` and ``info(model)`` for context budgeting;
- ``estimate(model)``, ``load(model)`` and ``unload(model)`` for the
  scheduler, which decides when a model may be resident (a backend without
  local memory keeps the defaults: no memory, nothing to load);
- ``compute_device(model)``: the device whose compute slots a generation
  takes (``"cpu"`` for llama.cpp on the CPU), or None.

Backends are found by name through the ``moa_local.backends`` entry-point
group, so a third-party package can add one without touching moa-local.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, TypeVar, runtime_checkable

from ..errors import BackendUnavailable, GenerationError, GenerationTimeout, MoALocalError
from ..models.estimate import NO_MEMORY, MemoryEstimate
from ..models.references import ModelSpec

T = TypeVar("T")
Message = dict[str, str]
# Receives (index of the request, piece of its text) as generations stream.
PieceCallback = Callable[[int, str], None]


@dataclass(frozen=True)
class GenerateRequest:
    """One generation: a chat for one model with its sampling settings."""

    model: ModelSpec
    messages: tuple[Message, ...]
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    timeout: float | None = None
    tag: str = ""
    n_threads: int | None = None  # CPU threads granted by the scheduler
    # Decode exactly max_tokens tokens, end-of-text suppressed (benchmarks compare
    # runs on equal work); backends that cannot may ignore it.
    ignore_eos: bool = False


@dataclass(frozen=True)
class Completion:
    """The result of one generation."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str = "stop"
    reused_tokens: int = 0  # prompt tokens whose KV cache was reused, not recomputed
    drafted_tokens: int = 0  # prompt-lookup tokens proposed
    accepted_tokens: int = 0  # of which the model confirmed
    # The log-probability (natural log, under the model's own distribution) of
    # each generated token, where the backend reports them; None where not.
    token_logprobs: tuple[float, ...] | None = None
    # Seconds until the first token could be sampled (the prompt's prefill), where
    # the backend knows; None where not.
    prefill_seconds: float | None = None

    @property
    def prefilled_tokens(self) -> int:
        """Prompt tokens that were actually computed."""
        return max(0, self.prompt_tokens - self.reused_tokens)


@dataclass(frozen=True)
class ModelInfo:
    """What a backend knows of a model without generating."""

    n_ctx: int
    parameters: int | None = None


StreamItem = str | Completion


@dataclass(frozen=True)
class LoadReport:
    """What loading a model took: wall seconds and measured bytes per device."""

    seconds: float
    measured: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """The protocol every backend implements (see the module docstring)."""

    name: str

    def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Yield text pieces, then one :class:`Completion`."""
        ...

    async def generate(self, request: GenerateRequest) -> Completion:
        """Run one request to completion."""
        ...

    def generate_many(
        self,
        requests: Sequence[GenerateRequest],
        on_text: PieceCallback | None = None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """Run several requests for one model, yielding each result as it finishes."""
        ...

    async def count_tokens(self, model: ModelSpec, text: str) -> int:
        """Number of tokens ``text`` takes in ``model``'s vocabulary."""
        ...

    async def info(self, model: ModelSpec) -> ModelInfo:
        """Context size and other facts about ``model``."""
        ...

    async def estimate(self, model: ModelSpec) -> MemoryEstimate:
        """Memory ``model`` will take once loaded, per device."""
        ...

    def compute_device(self, model: ModelSpec) -> str | None:
        """Device whose compute slots a generation of ``model`` occupies, if any."""
        ...

    async def load(self, model: ModelSpec) -> LoadReport:
        """Make ``model`` resident; report what it took."""
        ...

    async def unload(self, model: ModelSpec) -> None:
        """Free ``model``'s memory (it may be loaded again later)."""
        ...

    async def close(self) -> None:
        """Release every model this backend holds."""
        ...


class BaseBackend:
    """Shared behaviour: ``generate`` from ``stream``, serial ``generate_many``, timeouts."""

    name = "base"

    def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Subclasses implement this."""
        raise NotImplementedError

    async def generate(self, request: GenerateRequest) -> Completion:
        """Collect :meth:`stream` into one :class:`Completion`, under the request's timeout."""
        try:
            async with asyncio.timeout(request.timeout or None):
                return await self._collect(request)
        except TimeoutError:
            raise GenerationTimeout(
                f"{request.model.label}: no answer within {request.timeout:g} s"
            ) from None

    async def _generate_streaming(
        self, request: GenerateRequest, on_piece: Callable[[str], None]
    ) -> Completion:
        """:meth:`generate`, handing each piece of text to ``on_piece`` as it streams."""
        try:
            async with asyncio.timeout(request.timeout or None):
                async with closing_stream(self.stream(request)) as items:
                    async for item in items:
                        if isinstance(item, Completion):
                            return item
                        on_piece(item)
        except TimeoutError:
            raise GenerationTimeout(
                f"{request.model.label}: no answer within {request.timeout:g} s"
            ) from None
        raise GenerationError(f"{request.model.label}: the backend ended without a result")

    async def _collect(self, request: GenerateRequest) -> Completion:
        async with closing_stream(self.stream(request)) as items:
            async for item in items:
                if isinstance(item, Completion):
                    return item
        raise GenerationError(f"{request.model.label}: the backend ended without a result")

    async def generate_many(
        self,
        requests: Sequence[GenerateRequest],
        on_text: PieceCallback | None = None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """Run the requests one after another; failures are yielded, not raised."""
        for index, request in enumerate(requests):
            pieces = None if on_text is None else _for_index(on_text, index)
            yield index, await self._generate_as_value(request, pieces)

    async def _generate_as_value(
        self, request: GenerateRequest, on_piece: Callable[[str], None] | None = None
    ) -> Completion | GenerationError:
        try:
            if on_piece is None:
                return await self.generate(request)
            return await self._generate_streaming(request, on_piece)
        except GenerationError as exc:
            return exc
        except MoALocalError as exc:
            return GenerationError(str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a backend bug or library error still becomes a value
            return GenerationError(f"{request.model.label}: {type(exc).__name__}: {exc}")

    async def count_tokens(self, model: ModelSpec, text: str) -> int:
        """A rough count (4 characters a token); real backends use their tokenizer."""
        return max(1, len(text) // 4)

    async def info(self, model: ModelSpec) -> ModelInfo:
        """The configured context size."""
        return ModelInfo(n_ctx=model.n_ctx, parameters=model.parameters)

    async def estimate(self, model: ModelSpec) -> MemoryEstimate:
        """No local memory by default."""
        return NO_MEMORY

    def compute_device(self, model: ModelSpec) -> str | None:
        """No local compute by default."""
        return None

    async def load(self, model: ModelSpec) -> LoadReport:
        """Nothing to load by default."""
        return LoadReport(seconds=0.0)

    async def unload(self, model: ModelSpec) -> None:
        """Nothing to unload by default."""

    async def close(self) -> None:
        """Nothing to release by default."""


@asynccontextmanager
async def closing_stream(items: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """``items``, closed on the way out where it can be: an async generator left
    early (a timeout, the first Completion) then frees what it holds at once, such
    as a connection it would otherwise keep from its pool."""
    try:
        yield items
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


def _for_index(on_text: PieceCallback, index: int) -> Callable[[str], None]:
    return lambda piece: on_text(index, piece)


def now() -> float:
    """Monotonic clock used for all timings."""
    return time.perf_counter()


class BackendRegistry:
    """Creates each backend once per registry and hands out the same instance."""

    def __init__(self, overrides: dict[str, Backend] | None = None) -> None:
        self._instances: dict[str, Backend] = dict(overrides or {})

    def get(self, name: str) -> Backend:
        """The backend called ``name``, created on first use."""
        backend = self._instances.get(name)
        if backend is None:
            backend = _load_backend(name)
            self._instances[name] = backend
        return backend

    def for_model(self, model: ModelSpec) -> Backend:
        """The backend that runs ``model``."""
        return self.get(model.backend)

    async def close(self) -> None:
        """Close every backend created so far."""
        for backend in self._instances.values():
            await backend.close()


def _load_backend(name: str) -> Backend:
    builtin = {
        "echo": "moa_local.backends.echo:EchoBackend",
        "llamacpp": "moa_local.backends.llamacpp:LlamaCppBackend",
        "ollama": "moa_local.backends.ollama:OllamaBackend",
        "openai": "moa_local.backends.openai:OpenAIBackend",
    }
    target = builtin.get(name)
    if target is None:
        matches = [ep for ep in entry_points(group="moa_local.backends") if ep.name == name]
        if not matches:
            raise BackendUnavailable(f"no backend named {name!r} is installed")
        factory = matches[0].load()
    else:
        module_name, _, attr = target.partition(":")
        module = __import__(module_name, fromlist=[attr])
        factory = getattr(module, attr)
    backend: Backend = factory()
    return backend
