"""What the Ollama and OpenAI-compatible backends share: timeouts, retries, messages.

Every failure of a remote generation becomes one :class:`GenerationError`
whose message names the model, the host and what to do, so that a proposer
on a host that is down, busy or dying mid-run is one readable line in
``layer_history`` and the trace, and the MoA carries on with the others.
"""

from __future__ import annotations

import httpx

from ..errors import GenerationError, GenerationTimeout, HostUnreachable
from ..models.estimate import MemoryEstimate
from ..models.references import ModelSpec

# Waits before retrying a request the server refused with 503 (queue full).
RETRY_DELAYS = (0.5, 1.0, 2.0)
CONNECT_TIMEOUT = 5.0
# Facts about a model (show, ps, tags) must come quickly or not at all.
QUICK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def generation_timeout(spec: ModelSpec) -> httpx.Timeout:
    """Explicit timeouts (the clients have none by default): connect fast, read patiently."""
    assert spec.host is not None
    return httpx.Timeout(spec.host.timeout, connect=CONNECT_TIMEOUT)


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


def busy(spec: ModelSpec) -> GenerationError:
    """503 after every retry."""
    assert spec.host is not None
    return GenerationError(
        f"{spec.label}: {spec.host.url} is busy (503, queue full) after "
        f"{len(RETRY_DELAYS) + 1} tries"
    )


def remote_estimate(spec: ModelSpec, weights: int, kv_cache: int, compute: int) -> MemoryEstimate:
    """An estimate that draws on the host's budget."""
    return MemoryEstimate(
        weights, kv_cache, compute, {device_of(spec): weights + kv_cache + compute}
    )
