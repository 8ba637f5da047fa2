"""What the Ollama and OpenAI-compatible backends share: clients, retries, messages.

- :class:`ClientPool`: one HTTP client per host, reused by every request to it
  and closed with the backend (httpx's advice: a client per host keeps its
  connections alive between requests). A client belongs to the event loop it
  first ran in, and a backend outlives loops (``MoA.prepare`` asks hosts for
  facts in short ``asyncio.run`` calls; ``run_sync`` starts one per run; eval
  one per configuration), so the pool keeps one client per host and loop and
  closes each at the end of its loop.
- :func:`retry_busy`: the one retry loop. A server that answers 503 (queue
  full) or 429 (too many requests) is asked again after each of
  :data:`RETRY_DELAYS`; then the generation fails with :func:`busy`.
- :func:`completion`: the one place a remote answer becomes a
  :class:`Completion`.

Every failure of a remote generation becomes one :class:`GenerationError`
whose message names the model, the host and what to do, so that a proposer
on a host that is down, busy or dying mid-run is one readable line in
``layer_history`` and the trace, and the MoA carries on with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from ..errors import GenerationError, GenerationTimeout, HostUnreachable
from ..models.estimate import MemoryEstimate
from ..models.references import ModelSpec
from .base import Completion

if TYPE_CHECKING:
    from ..config import HostConfig

# Waits before asking again a server that answered busy (BUSY_STATUSES).
RETRY_DELAYS = (0.5, 1.0, 2.0)
# The statuses of a server that is overloaded now and may not be in a moment.
BUSY_STATUSES = {503: "queue full", 429: "too many requests"}
CONNECT_TIMEOUT = 5.0
# Facts about a model (show, ps, tags) must come quickly or not at all.
QUICK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")
T = TypeVar("T")


# -- one client per host ----------------------------------------------------------


@dataclass
class _Held(Generic[C]):
    """A client, the :func:`_keep` generator that holds it, and whether it closed it."""

    client: C
    keeper: AsyncGenerator[None, None] | None = None
    closed: bool = False


async def _keep(
    held: _Held[C], close: Callable[[C], Awaitable[None]]
) -> AsyncGenerator[None, None]:
    """Hold a client until closed: by the pool, or by its loop as the loop ends.

    ``asyncio.run`` and ``asyncio.Runner`` close every async generator still
    open (``loop.shutdown_asyncgens``) before they close the loop, while its
    connections can still be shut down properly: this is the loop's only
    "about to end" hook, so each client is held by such a generator.
    """
    try:
        yield
    finally:
        held.closed = True
        with contextlib.suppress(Exception):  # a dead connection cannot fail a close
            await close(held.client)


class ClientPool(Generic[K, C]):
    """One client per key (a host) and event loop, made on first use.

    ``make(key)`` builds a client, ``close(client)`` closes it. A client is
    closed by :meth:`aclose` on its loop, or else when its loop ends (see
    :func:`_keep`); one whose loop was closed some other way is forgotten,
    its sockets left to the garbage collector.
    """

    def __init__(self, make: Callable[[K], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._held: dict[tuple[K, asyncio.AbstractEventLoop], _Held[C]] = {}

    async def get(self, key: K) -> C:
        """The client for ``key`` on the running loop."""
        loop = asyncio.get_running_loop()
        self._forget_ended_loops()
        held = self._held.get((key, loop))
        if held is None or held.closed:
            held = _Held(self._make(key))
            # Held here: an async generator nobody refers to is closed by its loop at once.
            held.keeper = _keep(held, self._close)
            # Now the loop knows it and closes it as it ends. (This await never
            # suspends: no other task can make a second client for the key meanwhile.)
            await anext(held.keeper)
            self._held[(key, loop)] = held
        return held.client

    async def aclose(self) -> None:
        """Close the clients of the running loop; those of other loops close as they end."""
        loop = asyncio.get_running_loop()
        for (key, owner), held in list(self._held.items()):
            if owner is loop:
                self._held.pop((key, owner), None)
                if held.keeper is not None:
                    await held.keeper.aclose()
        self._forget_ended_loops()

    def _forget_ended_loops(self) -> None:
        for (key, owner), held in list(self._held.items()):
            if owner.is_closed() or held.closed:
                self._held.pop((key, owner), None)


# -- retries ------------------------------------------------------------------------


class Busy(Exception):
    """An attempt's answer: the server is busy (``status`` is one of BUSY_STATUSES)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def retry_busy(spec: ModelSpec, attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, made again after each of :data:`RETRY_DELAYS` while it raises
    :class:`Busy`; when the last try is busy too, the one-line :func:`busy` error."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return await attempt()
        except Busy as exc:
            if delay is None:
                raise busy(spec, exc.status) from None
            await asyncio.sleep(delay)
    raise AssertionError("the last try returns or raises")


def busy(spec: ModelSpec, status: int) -> GenerationError:
    """Busy (``status``: 503 or 429) after every retry."""
    assert spec.host is not None
    return GenerationError(
        f"{spec.label}: {spec.host.url} is busy ({status}, {BUSY_STATUSES.get(status, 'busy')}) "
        f"after {len(RETRY_DELAYS) + 1} tries"
    )


# -- answers ------------------------------------------------------------------------


def completion(
    text: str,
    *,
    prompt_tokens: Any,
    completion_tokens: Any,
    counted: int,
    seconds: float,
    finish_reason: str | None,
    logprobs: Sequence[float] = (),
) -> Completion:
    """A remote answer as a :class:`Completion`: the server's token counts where it
    sent them (``counted``, what the client counted, where it sent no completion
    count), ``"stop"`` where it gave no reason, log-probabilities where it sent any."""
    return Completion(
        text=text,
        prompt_tokens=int(prompt_tokens or 0),
        completion_tokens=int(completion_tokens or counted),
        seconds=seconds,
        finish_reason=finish_reason or "stop",
        token_logprobs=tuple(logprobs) if logprobs else None,
    )


# -- timeouts and errors ------------------------------------------------------------


def generation_timeout(host: HostConfig) -> httpx.Timeout:
    """Explicit timeouts for generating on ``host``: connect fast, read patiently."""
    return httpx.Timeout(host.timeout, connect=CONNECT_TIMEOUT)


def device_of(spec: ModelSpec) -> str:
    """The scheduler's device for a remote model: its host."""
    assert spec.host is not None
    return f"host:{spec.host.name}"


def unreachable(spec: ModelSpec) -> HostUnreachable:
    """The host refused the connection or does not resolve."""
    assert spec.host is not None
    ollama = spec.host.kind == "ollama"
    hint = "is `ollama serve` running?" if ollama else "is the server running?"
    return HostUnreachable(
        f"{spec.label}: cannot reach {spec.host.kind} at {spec.host.url}; {hint}"
    )


def timed_out(spec: ModelSpec) -> GenerationTimeout:
    """No answer within the host's timeout."""
    assert spec.host is not None
    return GenerationTimeout(
        f"{spec.label}: {spec.host.url} did not answer within {spec.host.timeout:g} s"
    )


def broken(spec: ModelSpec, exc: Exception) -> HostUnreachable:
    """The connection failed after it was made (the server died or reset it)."""
    assert spec.host is not None
    detail = str(exc) or type(exc).__name__
    return HostUnreachable(f"{spec.label}: connection to {spec.host.url} failed: {detail}")


def not_the_api(spec: ModelSpec, exc: Exception) -> GenerationError:
    """The host answered, but not in its API's format (a wrong port, a web page)."""
    assert spec.host is not None
    return GenerationError(
        f"{spec.label}: {spec.host.url} did not answer as an {spec.host.kind} server would "
        f"({type(exc).__name__}); check the url"
    )


# What a transport can fail with: refused or dropped connections, timeouts,
# and answers that are not the API's JSON.
TRANSPORT_ERRORS = (ConnectionError, httpx.HTTPError, ValueError, TypeError, KeyError)


def translate(spec: ModelSpec, exc: BaseException) -> GenerationError:
    """The one-line error for a failure in ``TRANSPORT_ERRORS``."""
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return unreachable(spec)
    if isinstance(exc, httpx.TimeoutException):
        return timed_out(spec)
    if isinstance(exc, httpx.HTTPError):
        return broken(spec, exc)
    assert isinstance(exc, Exception)
    return not_the_api(spec, exc)


def remote_estimate(spec: ModelSpec, weights: int, kv_cache: int, compute: int) -> MemoryEstimate:
    """An estimate that draws on the host's budget."""
    return MemoryEstimate(
        weights, kv_cache, compute, {device_of(spec): weights + kv_cache + compute}
    )
