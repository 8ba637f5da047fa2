"""What every route of ``moa-local serve`` shares: the offered models, one engine, the queue.

One :class:`ServeRuntime` holds a :class:`~moa_local.moa.MoA` per offered
model (``moa`` for the defaults, ``moa:NAME`` per preset, and each installed
model alone by its name), all sharing one set of backends and one scheduler,
so a model is loaded once and one memory budget covers every request.

Admission is decided before anything is held: :meth:`RunQueue.reserve`
refuses at once (:class:`Busy`) when the running runs fill every worker and
``max_queue`` more already wait, so a busy server answers immediately and
takes no memory for the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Message
from ..config import Config, apply_overrides, preset_overrides
from ..errors import ConfigError, MoALocalError
from ..moa import MoA
from ..models import catalog
from ..reporting import ProgressFactory, silent_progress
from ..result import MoAResult
from ..trace import Observer

DEFAULT_MODEL = "moa"
PRESET_PREFIX = "moa:"


class Busy(MoALocalError):
    """Every worker is busy and the queue is full; the client should retry later."""


class UnknownModel(MoALocalError):
    """The request names a model this server does not offer."""


@dataclass(frozen=True)
class Offer:
    """One model a client can name: what it is and how it was configured."""

    name: str
    kind: str  # "mixture", "preset" or "single"
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


class Ticket:
    """A place in the :class:`RunQueue`, given back exactly once."""

    def __init__(self) -> None:
        self.returned = False


class RunQueue:
    """At most ``workers`` runs at once and ``max_queue`` waiting; beyond that, :class:`Busy`."""

    def __init__(self, workers: int = 1, max_queue: int = 16) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        if max_queue < 0:
            raise ConfigError(f"--max-queue must be >= 0, got {max_queue}")
        self.workers = workers
        self.max_queue = max_queue
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self._free: asyncio.Semaphore | None = None

    def reserve(self) -> Ticket:
        """Take a place in the queue now, or raise :class:`Busy` without waiting."""
        if self.running + self.waiting >= self.workers + self.max_queue:
            self.refused += 1
            raise Busy(
                f"the server is busy: {self.running} running and {self.waiting} waiting "
                f"(--max-queue {self.max_queue}); retry shortly"
            )
        self.waiting += 1
        return Ticket()

    def give_back(self, ticket: Ticket) -> None:
        """Return an unused place (a request that ended before its run started)."""
        if not ticket.returned:
            ticket.returned = True
            self.waiting -= 1

    @contextlib.asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        """Wait for a worker with ``ticket``'s place; hold the worker while inside."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.workers)
        try:
            await self._free.acquire()
        finally:
            self.give_back(ticket)
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._free.release()


@dataclass(frozen=True)
class ChatRequest:
    """One chat as any API sends it, reduced to what a run takes."""

    model: str
    prompt: str
    history: tuple[Message, ...] = ()
    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


def split_messages(messages: Sequence[Message]) -> tuple[str, tuple[Message, ...], str]:
    """A chat's system text, earlier turns and final question, from a ``messages`` list.

    System messages (anywhere) are joined into the system text; the last
    message must come from the user; user and assistant messages before it
    are the history. Raises :class:`ConfigError` with the reason otherwise.
    """
    if not messages:
        raise ConfigError("messages is empty: send at least one user message")
    system: list[str] = []
    turns: list[Message] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if not isinstance(content, str):
            raise ConfigError(f"messages[{index}].content must be text")
        if role == "system":
            system.append(content)
        elif role in ("user", "assistant"):
            turns.append({"role": role, "content": content})
        else:
            raise ConfigError(
                f"messages[{index}].role must be system, user or assistant, got {role!r}"
            )
    if not turns or turns[-1]["role"] != "user":
        raise ConfigError("the last message must be the user's")
    question = turns.pop()["content"]
    if not question.strip():
        raise ConfigError("the last user message is empty")
    return "\n\n".join(s for s in system if s.strip()), tuple(turns), question


class ServeRuntime:
    """The offered models over one shared engine, and the run queue (module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        workers: int = 1,
        max_queue: int = 16,
        singles: bool = True,
        progress: ProgressFactory = silent_progress,
    ) -> None:
        self.config = config
        self.queue = RunQueue(workers, max_queue)
        self.started = time.time()
        self.base = MoA(config=config, auto_pull=True, progress=progress)
        self._mixtures: dict[str, MoA] = {DEFAULT_MODEL: self.base}
        self._offers: dict[str, Offer] = {
            DEFAULT_MODEL: Offer(DEFAULT_MODEL, "mixture", "the [defaults] mixture", _shape(config))
        }
        for name in config.presets:
            preset = apply_overrides(config, preset_overrides(config, name))
            offered = PRESET_PREFIX + name
            self._offers[offered] = Offer(offered, "preset", f"[presets.{name}]", _shape(preset))
        if singles:
            for entry in catalog.CATALOG.values():
                if entry.chat and self.base.store.is_installed(entry):
                    self._offers[entry.name] = Offer(
                        entry.name,
                        "single",
                        f"{entry.name} alone ({entry.size_label}, {entry.quantization})",
                        {
                            "family": entry.family,
                            "parameters": entry.size_label,
                            "quantization": entry.quantization,
                        },
                    )
        self._prepare_lock: asyncio.Lock | None = None

    @property
    def offers(self) -> list[Offer]:
        """Every model a client can name, ``moa`` first."""
        return list(self._offers.values())

    def offer(self, name: str) -> Offer:
        """The offer called ``name`` (``moa:latest`` is ``moa``); :class:`UnknownModel` if none."""
        name = name.removesuffix(":latest")
        found = self._offers.get(name)
        if found is None:
            raise UnknownModel(
                f"no model {name!r} here; this server offers {', '.join(self._offers)}"
            )
        return found

    def prepare_default(self) -> None:
        """Resolve (and pull, if missing) the default mixture's models before serving."""
        self.base.prepare()

    def mixture(self, name: str) -> MoA:
        """The MoA behind offer ``name``, created on first use on the shared engine."""
        offer = self.offer(name)
        moa = self._mixtures.get(offer.name)
        if moa is None:
            if offer.kind == "preset":
                preset = offer.name.removeprefix(PRESET_PREFIX)
                config = apply_overrides(self.config, preset_overrides(self.config, preset))
                moa = MoA(config=config)
            else:
                moa = MoA(config=self.config, aggregator=offer.name, single=True)
            moa.share_runtime(self.base)
            self._mixtures[offer.name] = moa
        return moa

    def show_proposals(self, name: str) -> bool:
        """Whether offer ``name`` streams its proposals as reasoning."""
        return bool(self.mixture(name).config.show_proposals)

    async def run(
        self,
        chat: ChatRequest,
        ticket: Ticket,
        on_text: Callable[[str], None] | None = None,
        observers: Sequence[Observer] = (),
        live: bool = False,
    ) -> MoAResult:
        """Run ``chat`` once a worker is free, in the place ``ticket`` holds."""
        moa = self.mixture(chat.model)
        async with self.queue.slot(ticket):
            if self._prepare_lock is None:
                self._prepare_lock = asyncio.Lock()
            async with self._prepare_lock:
                # Planning resolves models (and reads GGUF headers) once per offer.
                await asyncio.to_thread(moa.prepare)
            return await moa.run(
                chat.prompt,
                on_text,
                history=chat.history,
                system=chat.system,
                temperature=chat.temperature,
                max_tokens=chat.max_tokens,
                seed=chat.seed,
                stop=chat.stop,
                observers=observers,
                live=live,
            )

    def resident(self) -> list[dict[str, Any]]:
        """Loaded models, for ``/api/ps``."""
        return [
            {"name": spec.name, "size": size, "idle_s": round(idle, 1), "backend": spec.backend}
            for spec, size, idle in self.base.scheduler.residents()
        ]

    def replicas(self) -> list[dict[str, Any]]:
        """The hosts of models several hosts serve: state, load, latency (``/api/ps``)."""
        return self.base.replicas.snapshot()

    async def aclose(self) -> None:
        """Unload every model."""
        await self.base.aclose()


def _shape(config: Config) -> dict[str, Any]:
    """The settings that describe a mixture to a client (``/api/show``, ``/v1/models``)."""
    return {
        "proposers": list(config.proposers),
        "aggregator": config.aggregator,
        "layers": config.layers,
        "strategy": config.strategy,
        "num_proposers": config.num_proposers,
        "router": config.router,
        "verify": config.verify,
        "show_proposals": config.show_proposals,
    }
