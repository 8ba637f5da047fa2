"""Models served by Ollama, through the official ``ollama`` client (AsyncClient).

- Chat streams; options ``temperature``, ``top_p``, ``num_ctx`` (the model's
  n_ctx), ``num_predict`` (max_tokens), ``seed`` and ``stop``. Usage comes from
  the final message's ``prompt_eval_count`` / ``eval_count``, seconds from its
  ``total_duration`` (nanoseconds).
- Facts for the scheduler come from ``/api/show`` (architecture, block count,
  KV heads, key/value lengths), ``/api/tags`` (file size) and ``/api/ps``
  (what is resident and its size). Loading is Ollama's preload (an empty
  generate request); unloading is ``keep_alive=0``; so the host's budget
  reflects what moa-local asked it to hold.
- Pulls use Ollama's pull stream (one progress bar per layer digest).
- Errors: connection refused, 404 (model not pulled), 503 or 429 (busy, asked
  again after a wait), an ``{"error": ...}`` line mid-stream, and timeouts all become
  one-line :class:`GenerationError` s naming the host.

One ``ollama.AsyncClient`` serves each host (per event loop, kept by a
:class:`remote.ClientPool`), so its connections are reused and closed with the
backend. Its methods take no timeout, but chats and pulls must wait patiently
while facts must come quickly: a request hook gives each request the timeout
of the call it belongs to (:func:`_quickly`), which httpx reads from the
request's ``timeout`` extension.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..errors import BackendUnavailable, GenerationError, ModelError, PullError
from ..models.estimate import NO_MEMORY, MemoryEstimate, ModelShape
from ..models.references import ModelSpec
from ..reporting import ProgressFactory, silent_progress
from . import remote
from .base import BaseBackend, GenerateRequest, LoadReport, StreamItem, now

if TYPE_CHECKING:
    from ..config import HostConfig

T = TypeVar("T")

# The timeout of the call a request belongs to, when not the client's own.
_TIMEOUT: ContextVar[httpx.Timeout | None] = ContextVar("ollama_timeout", default=None)


@contextmanager
def _quickly() -> Iterator[None]:
    """Requests made inside take :data:`remote.QUICK_TIMEOUT` (facts, not chats).

    Never around a ``yield`` of an async generator: its consumer's code would
    run inside, with the quick timeout.
    """
    token = _TIMEOUT.set(remote.QUICK_TIMEOUT)
    try:
        yield
    finally:
        _TIMEOUT.reset(token)


async def _apply_timeout(request: httpx.Request) -> None:
    """httpx's request hook: the call's timeout, where :func:`_quickly` set one."""
    timeout = _TIMEOUT.get()
    if timeout is not None:
        request.extensions["timeout"] = timeout.as_dict()


def _ollama() -> Any:
    try:
        import ollama
    except ImportError:
        raise BackendUnavailable(
            "Ollama models need the ollama package; run: pip install ollama"
        ) from None
    return ollama


class OllamaBackend(BaseBackend):
    """Chats with models on Ollama servers (the local one or ``[hosts]``)."""

    name = "ollama"

    def __init__(self) -> None:
        self._ollama = _ollama()
        self._clients: remote.ClientPool[HostConfig, Any] = remote.ClientPool(
            self._new_client, _close_client
        )

    def _new_client(self, host: HostConfig) -> Any:
        headers = {"Authorization": f"Bearer {host.api_key}"} if host.api_key else None
        return self._ollama.AsyncClient(
            host=host.url,
            timeout=remote.generation_timeout(host),
            headers=headers,
            event_hooks={"request": [_apply_timeout]},
        )

    async def _client(self, spec: ModelSpec) -> Any:
        assert spec.host is not None
        return await self._clients.get(spec.host)

    async def close(self) -> None:
        """Close the connections to every host."""
        await self._clients.aclose()

    async def _retrying(self, spec: ModelSpec, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, asked again while Ollama answers busy (a ResponseError 503 or 429)."""

        async def attempt() -> T:
            try:
                return await call()
            except self._ollama.ResponseError as exc:
                if exc.status_code in remote.BUSY_STATUSES:
                    raise remote.Busy(exc.status_code) from None
                raise

        return await remote.retry_busy(spec, attempt)

    # -- generation -----------------------------------------------------------

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Stream a chat, asking again while Ollama is busy (before anything was produced)."""
        spec, host = request.model, request.model.host
        assert host is not None
        started = now()
        pieces: list[str] = []
        final: Any = None
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "num_ctx": spec.n_ctx,
            "num_predict": request.max_tokens,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = list(request.stop)
        client = await self._client(spec)

        async def start() -> tuple[Any, Any]:
            parts = await client.chat(
                model=spec.remote_model,
                messages=list(request.messages),
                stream=True,
                options=options,
                keep_alive=host.keep_alive,
            )
            # The request goes out when the first part is asked for, so a busy
            # answer comes here, before anything was produced.
            return parts, await anext(parts, None)

        try:
            parts, part = await self._retrying(spec, start)
            async with aclosing(parts):  # a stream left early frees its connection
                while part is not None:
                    text = part.message.content if part.message else ""
                    if text:
                        pieces.append(text)
                        yield text
                    if part.done:
                        final = part
                    part = await anext(parts, None)
        except self._ollama.ResponseError as exc:
            raise self._response_error(spec, exc) from None
        except remote.TRANSPORT_ERRORS as exc:
            raise remote.translate(spec, exc) from None
        if final is None:
            raise GenerationError(f"{spec.label}: the stream from {host.url} ended early")
        duration = getattr(final, "total_duration", None)
        yield remote.completion(
            "".join(pieces),
            prompt_tokens=final.prompt_eval_count,
            completion_tokens=final.eval_count,
            counted=len(pieces),
            seconds=duration / 1e9 if duration else now() - started,
            finish_reason=getattr(final, "done_reason", None),
        )

    def _response_error(self, spec: ModelSpec, exc: Any) -> GenerationError:
        assert spec.host is not None
        if exc.status_code == 404:
            return GenerationError(
                f"{spec.label}: model {spec.remote_model!r} is not on Ollama at "
                f"{spec.host.url}; run `moa-local pull {spec.name}`"
            )
        return GenerationError(f"{spec.label}: Ollama at {spec.host.url}: {exc.error}")

    # -- model facts, residency ---------------------------------------------------

    async def _facts(self, spec: ModelSpec) -> tuple[Any, int | None, int | None]:
        """(show, size from tags, size resident from ps) or raise."""
        client = await self._client(spec)
        with _quickly():
            show = await client.show(spec.remote_model)
            tags = await client.list()
            ps = await client.ps()
        size = next((m.size for m in tags.models if _same(m.model, spec.remote_model)), None)
        resident = next((_held(m) for m in ps.models if _same(m.model, spec.remote_model)), None)
        return show, size, resident

    async def estimate(self, spec: ModelSpec) -> MemoryEstimate:
        """From /api/show, /api/tags and /api/ps; nothing when the host cannot say."""
        try:
            show, size, resident = await self._facts(spec)
        except Exception:  # unreachable, not Ollama, or not pulled: the run will say
            return NO_MEMORY  # unreachable or not pulled: the generation will say so
        info = dict(show.modelinfo or {})
        arch = str(info.get("general.architecture", ""))
        shape = _shape(info, arch, int(size or 0))
        kv = shape.kv_bytes(spec.n_ctx)
        if resident:  # Ollama holds it already: its own figure is the truth
            return remote.remote_estimate(spec, int(resident), 0, 0)
        return remote.remote_estimate(spec, shape.weight_bytes, kv, shape.compute_bytes())

    def compute_device(self, spec: ModelSpec) -> str | None:
        """Generations on one host share that host's slots."""
        return remote.device_of(spec)

    async def load(self, spec: ModelSpec) -> LoadReport:
        """Preload on the host (an empty generate request) and read its size from /api/ps."""
        started = now()
        host = spec.host
        assert host is not None
        try:
            client = await self._client(spec)
            await self._retrying(
                spec,
                lambda: client.generate(
                    model=spec.remote_model,
                    prompt="",
                    options={"num_ctx": spec.n_ctx},
                    keep_alive=host.keep_alive,
                ),
            )
            ps = await client.ps()
        except self._ollama.ResponseError as exc:
            raise self._response_error(spec, exc) from None
        except remote.TRANSPORT_ERRORS as exc:
            raise remote.translate(spec, exc) from None
        size = next((_held(m) for m in ps.models if _same(m.model, spec.remote_model)), None)
        measured = {remote.device_of(spec): int(size)} if size else {}
        return LoadReport(seconds=now() - started, measured=measured)

    async def unload(self, spec: ModelSpec) -> None:
        """Ask Ollama to drop the model now (keep_alive=0); a dead host has nothing to drop."""
        try:
            client = await self._client(spec)
            with _quickly():
                await client.generate(model=spec.remote_model, prompt="", keep_alive=0)
        except Exception:  # unreachable, not Ollama, or not pulled: the run will say
            pass

    async def resident_elsewhere(self, spec: ModelSpec, ours: set[str]) -> int:
        """Bytes the host holds for models other than ``ours`` (0 when it cannot say)."""
        try:
            client = await self._client(spec)
            with _quickly():
                ps = await client.ps()
        except Exception:  # unreachable, not Ollama, or not pulled: the run will say
            return 0
        return sum(_held(m) for m in ps.models if not any(_same(m.model, tag) for tag in ours))

    # -- pulling ----------------------------------------------------------------------

    async def is_pulled(self, spec: ModelSpec) -> bool | None:
        """Whether the host has the model; None when the host cannot be asked."""
        try:
            client = await self._client(spec)
            with _quickly():
                tags = await client.list()
        except Exception:  # unreachable, not Ollama, or not pulled: the run will say
            return None
        return any(_same(m.model, spec.remote_model) for m in tags.models)

    async def pull(self, spec: ModelSpec, progress: ProgressFactory = silent_progress) -> None:
        """Pull through Ollama's stream, one progress bar per layer digest."""
        assert spec.host is not None
        bars: dict[str, Any] = {}
        shown: dict[str, int] = {}
        try:
            client = await self._client(spec)
            async with aclosing(await client.pull(spec.remote_model, stream=True)) as parts:
                async for part in parts:
                    digest, total = part.digest, part.total
                    if not digest or not total:
                        continue
                    if digest not in bars:
                        bars[digest] = progress(f"{spec.remote_model} {digest[7:19]}", int(total))
                        shown[digest] = 0
                    completed = int(part.completed or 0)
                    if completed > shown[digest]:
                        bars[digest].update(completed - shown[digest])
                        shown[digest] = completed
        except self._ollama.ResponseError as exc:
            raise PullError(
                f"Ollama at {spec.host.url} could not pull {spec.remote_model}: {exc.error}"
            ) from None
        except (ConnectionError, httpx.ConnectError):
            raise PullError(
                f"cannot reach Ollama at {spec.host.url}; is `ollama serve` running?"
            ) from None
        except httpx.HTTPError as exc:
            raise PullError(
                f"pulling {spec.remote_model} from {spec.host.url} failed: {exc}"
            ) from None
        finally:
            for bar in bars.values():
                bar.close()

    async def host_models(self, spec: ModelSpec) -> list[str]:
        """Tags the host has (for doctor)."""
        assert spec.host is not None
        try:
            client = await self._client(spec)
            with _quickly():
                tags = await client.list()
        except Exception as exc:  # any failure: the host cannot be listed
            raise ModelError(f"cannot list models of {spec.host.url}: {exc}") from None
        return [str(m.model) for m in tags.models]


async def _close_client(client: Any) -> None:
    await client.close()


def _held(model: Any) -> int:
    """What a running model occupies: its VRAM on a GPU host, its size on a CPU one."""
    return int(model.size_vram or 0) or int(model.size or 0)


def _same(name: str | None, tag: str | None) -> bool:
    """Ollama reports ``name:latest`` for a tag given as ``name``."""
    if not name or not tag:
        return False
    return name == tag or name == f"{tag}:latest" or f"{name}:latest" == tag


def _shape(info: dict[str, Any], arch: str, size: int) -> ModelShape:
    def value(key: str, default: int = 0) -> int:
        raw = info.get(f"{arch}.{key}", default)
        return int(raw) if isinstance(raw, int | float) else default

    heads = value("attention.head_count", 1) or 1
    head_dim = value("embedding_length") // heads
    kv_heads = value("attention.head_count_kv", heads)
    per_layer = value("attention.key_length", head_dim) + value("attention.value_length", head_dim)
    return ModelShape(
        weight_bytes=size,
        n_layers=value("block_count"),
        kv_bytes_per_token_per_layer=per_layer * kv_heads * 2,
        n_vocab=value("vocab_size"),
        n_ff=value("feed_forward_length"),
    )
