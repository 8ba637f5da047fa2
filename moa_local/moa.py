"""The public entry point: :class:`MoA` turns settings into a plan and runs it.

``MoA`` is where settings, the machine's memory budgets and the backends
meet; :mod:`moa_local.planning` turns them into a plan, and the algorithm
itself lives in :mod:`moa_local.engine`. One ``MoA`` keeps its
backends (and so its loaded models) across runs; close it with
:meth:`MoA.aclose` or use it as an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from .agents import Agent
from .backends.base import Backend, BackendRegistry, Message
from .config import SETTINGS, Config, apply_overrides, load_config, moa_home
from .config.validate import integer
from .engine import Engine, Plan
from .errors import ConfigError
from .machine.devices import Budget, budget_for, detect_devices, physical_cores
from .machine.replicas import Replicas
from .machine.scheduler import Scheduler
from .models.estimate import MIB
from .models.store import ModelStore
from .planning import Planner
from .reporting import ProgressFactory, silent_progress
from .result import MoAResult
from .trace import Observer, Tracer

# Keyword settings that are spelled differently from their models.toml key.
_ALIASES = {"n": "num_proposers"}


class MoA:
    """A Mixture-of-Agents over local models.

    Every setting left out comes from the configuration (``config``: a
    :class:`Config`, a path to a models.toml, or None to search for one as the
    CLI does). ``proposers`` is a list of model names, or of :class:`Agent`
    objects for explicit agents. ``aggregator`` and ``final_agent`` are model
    names or Agents (an Agent's system prompt is put before the synthesis
    instructions, or guides the final rewrite).

    Every other setting (:data:`moa_local.config.SETTINGS`, listed in
    docs/settings.md; ``inspect.signature(MoA)`` shows each with its type) is
    a keyword too (``MoA(layers=2, temperature=0.3, router="off")``), or all
    of them one mapping (``MoA(settings={"layers": 2, ...})``; keywords win);
    ``n`` is short for ``num_proposers`` and must be at least 1. An unknown
    setting is a :class:`ConfigError` that names it. ``single`` runs the
    aggregator model alone, with no mixture (a baseline to compare with).
    """

    # Derived from the settings' declaration below the class (help() and IDEs read it).
    __signature__: ClassVar[inspect.Signature]

    def __init__(
        self,
        proposers: Sequence[str | Agent] | None = None,
        aggregator: str | Agent | None = None,
        layers: int | None = None,
        *,
        final_agent: str | Agent | None = None,
        config: Config | str | os.PathLike[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        single: bool = False,
        auto_pull: bool = False,
        progress: ProgressFactory = silent_progress,
        observers: Sequence[Observer] = (),
        backends: dict[str, Backend] | None = None,
        **options: Any,
    ) -> None:
        overrides = _overrides({**(settings or {}), **options})
        explicit_agents: tuple[Agent, ...] = ()
        if proposers is not None:
            proposers = list(proposers)
            if any(isinstance(p, Agent) for p in proposers):
                if not all(isinstance(p, Agent) for p in proposers):
                    raise ConfigError("proposers must be all model names or all Agent objects")
                explicit_agents = tuple(p for p in proposers if isinstance(p, Agent))
                overrides["proposers"] = [agent.model for agent in explicit_agents]
            else:
                overrides["proposers"] = [str(p) for p in proposers]
            if not proposers:
                raise ConfigError("no proposers given: name at least one proposer model")
        aggregator_prompt = ""
        if isinstance(aggregator, Agent):
            aggregator_prompt = aggregator.system_prompt or ""
            aggregator = aggregator.model
        if isinstance(final_agent, Agent):
            overrides["final_agent_prompt"] = final_agent.system_prompt
            final_agent = final_agent.model
        named = {"aggregator": aggregator, "layers": layers, "final_agent": final_agent}
        overrides.update({key: value for key, value in named.items() if value is not None})
        if isinstance(config, Config):
            self.config = apply_overrides(config, overrides)
        else:
            self.config = load_config(config, overrides=overrides)
        self.explicit_agents = explicit_agents
        self.single_model = single
        self.aggregator_prompt = aggregator_prompt
        self.auto_pull = auto_pull
        self.progress = progress
        self.observers = list(observers)
        self.store = ModelStore(moa_home())
        self.backends = BackendRegistry(backends)
        self.scheduler = Scheduler(
            self.backends,
            {
                **{name: budget.bytes for name, budget in machine_budgets(self.config).items()},
                **host_budgets(self.config),
            },
            cpu_slots=default_cpu_slots(self.config),
            cpu_threads=physical_cores(),
            keep_alive=self.config.keep_alive,
            slots=host_slots(self.config),
        )
        # Health and load of the hosts of models several hosts serve.
        self.replicas = Replicas()
        self._plan: Plan | None = None

    # -- planning ---------------------------------------------------------

    def prepare(self) -> Plan:
        """Resolve every model, pull what is missing (if allowed), and build the plan.

        Raises :class:`ConfigError` or :class:`ModelError` (exit code 2 in the
        CLI) before any model is loaded.
        """
        if self._plan is None:
            self._plan = Planner(
                self.config,
                self.store,
                self.backends,
                self.scheduler,
                auto_pull=self.auto_pull,
                progress=self.progress,
            ).plan(
                explicit_agents=self.explicit_agents,
                aggregator_prompt=self.aggregator_prompt,
                single_model=self.single_model,
            )
        return self._plan

    # -- running ------------------------------------------------------------

    def _tracer(self, observers: Sequence[Observer] = (), live: bool = False) -> Tracer:
        return Tracer(
            self.config.trace_dir or None, observers=[*self.observers, *observers], live=live
        )

    def _engine(self) -> Engine:
        return Engine(self.backends, self.scheduler, self.replicas)

    def share_runtime(self, other: MoA) -> None:
        """Run on ``other``'s backends and scheduler, so both share models and memory.

        A server offers several presets; sharing keeps one copy of each model
        and one memory budget for all of them. Call before :meth:`prepare`.
        """
        self.backends = other.backends
        self.scheduler = other.scheduler
        self.replicas = other.replicas
        self._plan = None

    async def run(
        self,
        prompt: str,
        on_text: Callable[[str], None] | None = None,
        *,
        history: Sequence[Message] = (),
        system: str = "",
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
        observers: Sequence[Observer] = (),
        live: bool = False,
    ) -> MoAResult:
        """Run the MoA on ``prompt``; ``on_text`` receives the final answer as it streams.

        ``history`` holds a chat's earlier user and assistant turns and
        ``system`` its system message; every proposer and the aggregator get
        both. ``temperature`` is the final answer's (the aggregator's, or
        the single model's); proposers keep the temperatures their strategy
        gave them (a Self-MoA spread, the configured one per model);
        ``max_tokens`` and ``seed`` replace the configured values for this
        run; ``stop`` strings end the final answer.
        ``observers`` receive this run's events besides the MoA's own, and
        with ``live`` also every piece of streamed text (``*.delta`` events).
        """
        if not prompt or not prompt.strip():
            raise ConfigError("the prompt is empty")
        for turn in history:
            if turn.get("role") not in ("user", "assistant"):
                raise ConfigError(
                    f"a chat turn's role must be user or assistant, got {turn.get('role')!r}"
                )
        plan = self._plan if self._plan is not None else await asyncio.to_thread(self.prepare)
        sampling = plan.sampling
        if temperature is not None:
            sampling = replace(sampling, temperature=temperature)
        if max_tokens is not None:
            if max_tokens < 1:
                raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
            sampling = replace(sampling, max_tokens=max_tokens)
        if seed is not None:
            sampling = replace(sampling, seed=seed)
        if stop:
            sampling = replace(sampling, stop=tuple(s for s in stop if s))
        plan = replace(
            plan,
            sampling=sampling,
            conversation=tuple({"role": t["role"], "content": t["content"]} for t in history),
            system=system,
        )
        if temperature is not None:
            # A client that asks for a temperature means the answer it reads.
            plan = replace(plan, aggregator_temperature=temperature)
        return await self._engine().run(plan, prompt, self._tracer(observers, live), on_text)

    def run_sync(self, prompt: str) -> MoAResult:
        """:meth:`run` for synchronous code (starts its own event loop)."""
        return asyncio.run(self.run(prompt))

    async def stream(self, prompt: str) -> AsyncIterator[str | MoAResult]:
        """Yield the final answer's text as it is produced, then the :class:`MoAResult`."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(self.run(prompt, on_text=queue.put_nowait))
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                yield task.result()
                return
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def aclose(self) -> None:
        """Unload every model and release the backends."""
        await self.scheduler.close()
        await self.backends.close()

    async def __aenter__(self) -> MoA:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def machine_budgets(config: Config) -> dict[str, Budget]:
    """The memory budget of every device on this machine, under ``config``."""
    return {
        device.name: budget_for(
            device,
            reserve_mb=config.reserve_mb,
            fraction=config.budget_fraction,
            override_mb=config.budget_mb or None,
            override_source="budget_mb (--budget-mb, MOA_LOCAL_BUDGET_MB or [resources])",
        )
        for device in detect_devices()
    }


def host_budgets(config: Config) -> dict[str, int]:
    """Budgets of the ``[hosts]`` that set one (others are not limited by memory)."""
    return {
        f"host:{name}": int(host.budget_mb * MIB)
        for name, host in config.hosts.items()
        if host.budget_mb
    }


def host_slots(config: Config) -> dict[str, int]:
    """Concurrent generations per host: as configured; an OpenAI server serves one by default."""
    return {
        f"host:{name}": host.slots or (1 if host.kind == "openai" else 0)
        for name, host in config.hosts.items()
    }


def default_cpu_slots(config: Config) -> int:
    """Concurrent CPU generations: configured, or one per 4 physical cores."""
    return config.cpu_slots or max(1, physical_cores() // 4)


def _overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword settings as config overrides: names checked, aliases resolved, values plain."""
    overrides: dict[str, Any] = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name not in SETTINGS:
            close = difflib.get_close_matches(key, [*SETTINGS, *_ALIASES], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (docs/settings.md lists them)"
            raise ConfigError(f"unknown setting {key!r}{hint}", setting=key)
        if key == "n" and value is not None:
            # -n / n= asks for a count; 0 ("one per model") is num_proposers' alone.
            integer(1)(value, key, name)
        if name == "temperature_range" and value is not None:
            value = list(value)
        elif name == "trace_dir":
            value = os.fspath(value or "")  # None or "": no traces
        overrides[name] = value
    return overrides


def _signature() -> inspect.Signature:
    """``MoA(...)`` as help() shows it: its own arguments, then every other setting."""
    own = inspect.signature(MoA.__init__)
    parameters = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD][1:]
    named = {p.name for p in parameters}
    keyword = inspect.Parameter.KEYWORD_ONLY
    settings = [
        inspect.Parameter(name, keyword, default=None, annotation=declared.type | None)
        for name, declared in SETTINGS.items()
        if name not in named
    ]
    settings.append(inspect.Parameter("n", keyword, default=None, annotation=int | None))
    return own.replace(parameters=[*parameters, *settings])


MoA.__signature__ = _signature()
