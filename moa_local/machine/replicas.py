"""One model served by several hosts: which host gets the next request, and which are down.

A ``[models.NAME]`` with ``host = ["gpu-a", "gpu-b"]`` is one model on
several servers (:attr:`ModelSpec.replicas`). :class:`Replicas` keeps, per
host, the generations in flight there, an average of its recent latencies,
and whether it is down:

- **Placement.** Each request goes to a healthy host with a free slot
  (fewer generations in flight than its ``slots``; an OpenAI server has 1
  unless told), the least loaded first, ties to the lowest recent latency.
  When every healthy host is full, the least loaded one queues it.
- **Failure.** A host whose connection fails (:class:`HostUnreachable`: it
  refused, reset or dropped the connection) is marked down for a back-off
  period (:data:`FIRST_BACKOFF_S`, doubling to :data:`MAX_BACKOFF_S` while it
  keeps failing). The request that met the failure is tried again on another
  healthy replica when it had streamed nothing yet; otherwise (or when none is
  left) it ends as an error naming the host, as a single-host model's would.
- **Recovery.** Once its back-off has passed, a down host is probed (the
  backend lists its models: a cheap request) before it gets work again: up
  when that answers, down for longer when not.

Nothing here generates: the engine (:mod:`moa_local.engine.generation`)
asks :meth:`Replicas.choose` for a host, runs the request there under the
scheduler's lease of that host, and reports the outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import GenerationError, HostUnreachable
from ..models.references import ModelSpec

FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 10.0
# Weight of the newest latency in the running average.
LATENCY_WEIGHT = 0.3

Probe = Callable[[ModelSpec], Awaitable[Any]]


@dataclass
class HostState:
    """What is known of one host: load, latency, health."""

    name: str
    url: str
    slots: int
    in_flight: int = 0
    served: int = 0
    failures: int = 0  # consecutive failures (0 when up)
    latency_s: float | None = None
    down_until: float | None = None  # monotonic time; None when up
    last_error: str | None = None

    @property
    def up(self) -> bool:
        """Whether the host takes work (not marked down)."""
        return self.down_until is None

    def to_dict(self) -> dict[str, Any]:
        """What ``/api/ps`` and ``doctor`` show of it."""
        return {
            "host": self.name,
            "url": self.url,
            "state": "up" if self.up else "down",
            "in_flight": self.in_flight,
            "served": self.served,
            "latency_ms": None if self.latency_s is None else round(1000 * self.latency_s),
            "last_error": self.last_error,
        }


class Replicas:
    """Health and load of every host that serves a replicated model (see the module)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hosts: dict[str, HostState] = {}
        self._probing: dict[str, asyncio.Future[bool]] = {}

    def state(self, spec: ModelSpec) -> list[HostState]:
        """The states of ``spec``'s hosts, in configured order."""
        states = []
        for host in spec.replicas:
            if host.name not in self.hosts:
                slots = host.slots or (1 if host.kind == "openai" else 4)
                self.hosts[host.name] = HostState(host.name, host.url, slots)
            states.append(self.hosts[host.name])
        return states

    async def choose(
        self, spec: ModelSpec, probe: Probe, avoid: set[str] | frozenset[str] = frozenset()
    ) -> ModelSpec | None:
        """``spec`` on the host the next request should go to; None when every host is
        down (or in ``avoid``) and none answers its probe.

        A down host whose back-off has passed is probed first; the chosen host
        counts the request as in flight until :meth:`finished`.
        """
        states = [s for s in self.state(spec) if s.name not in avoid]
        for state in states:
            if not state.up and state.down_until is not None and self.clock() >= state.down_until:
                await self._probe(spec, state, probe)
        healthy = [s for s in states if s.up]
        if not healthy:
            return None
        best = min(
            healthy,
            key=lambda s: (
                s.in_flight >= s.slots,
                s.in_flight,
                s.latency_s if s.latency_s is not None else 0.0,
            ),
        )
        best.in_flight += 1
        host = next(h for h in spec.replicas if h.name == best.name)
        return replace(spec, host=host, replicas=())

    def finished(self, host: str, seconds: float, error: GenerationError | None) -> None:
        """Record the end of a request on ``host``: its latency, or a host failure."""
        state = self.hosts[host]
        state.in_flight = max(0, state.in_flight - 1)
        if isinstance(error, HostUnreachable):
            self.mark_down(state, str(error))
            return
        if error is None:
            state.served += 1
            state.latency_s = (
                seconds
                if state.latency_s is None
                else (1 - LATENCY_WEIGHT) * state.latency_s + LATENCY_WEIGHT * seconds
            )

    def mark_down(self, state: HostState, reason: str) -> None:
        """Take ``state``'s host out of rotation for a back-off that grows with failures."""
        state.failures += 1
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (state.failures - 1))
        state.down_until = self.clock() + backoff
        state.last_error = reason

    async def _probe(self, spec: ModelSpec, state: HostState, probe: Probe) -> None:
        """Ask a down host whether it answers again (one probe at a time per host)."""
        running = self._probing.get(state.name)
        if running is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._probing[state.name] = future
        host = next(h for h in spec.replicas if h.name == state.name)
        try:
            await probe(replace(spec, host=host, replicas=()))
        except Exception as exc:  # any failure to answer keeps it down, longer
            self.mark_down(state, f"{state.url} did not answer its probe: {exc}")
            future.set_result(False)
        else:
            state.down_until, state.failures, state.last_error = None, 0, None
            future.set_result(True)
        finally:
            del self._probing[state.name]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every known host's state, for ``/api/ps``."""
        return [state.to_dict() for state in self.hosts.values()]
