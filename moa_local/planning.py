"""From settings to a plan: models resolved, pulled when missing, agents made, memory checked.

:class:`Planner` does the work of :meth:`moa_local.MoA.prepare`, once per
``MoA``. Nothing is loaded here; a model that can never fit its memory budget,
or whose backend is not installed, fails now with a message saying why.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .agents import Agent, by_model, by_temperature
from .backends.base import BackendRegistry
from .backends.capabilities import PullsModels, ReportsResidency
from .config import SETTINGS, Config
from .engine import Plan, Sampling, policy_from
from .errors import ConfigError, ModelError, ModelNotInstalled
from .machine.scheduler import Scheduler
from .models import catalog
from .models.estimate import MIB
from .models.references import ModelSpec, resolve_model
from .models.store import ModelStore
from .reporting import ProgressFactory


class Planner:
    """Builds the :class:`Plan` of one configuration on one set of backends and scheduler."""

    def __init__(
        self,
        config: Config,
        store: ModelStore,
        backends: BackendRegistry,
        scheduler: Scheduler,
        *,
        auto_pull: bool,
        progress: ProgressFactory,
    ) -> None:
        self.config = config
        self.store = store
        self.backends = backends
        self.scheduler = scheduler
        self.auto_pull = auto_pull
        self.progress = progress

    def _derive_ollama_budgets(self) -> None:
        """Budgets of Ollama hosts given a ``total_mb``: the total less what others hold there.

        ``/api/ps`` lists what the host already holds; models of this MoA are
        not counted (their estimates are what the scheduler budgets).
        """
        ours = {m.model for m in self.config.models.values() if m.model}
        for name, host in self.config.hosts.items():
            if host.kind != "ollama" or not host.total_mb or host.budget_mb:
                continue
            spec = ModelSpec(name=name, backend="ollama", host=host, remote_model="")
            backend = self.backends.for_model(spec)
            held = (
                _run(backend.resident_elsewhere(spec, ours))
                if isinstance(backend, ReportsResidency)
                else 0
            )
            self.scheduler.budgets[f"host:{name}"] = max(0, int(host.total_mb * MIB) - held)

    def _resolve(self, reference: str) -> ModelSpec:
        """The spec of a model reference, pulled first when missing and allowed."""
        try:
            spec = resolve_model(reference, self.config, self.store)
        except ModelNotInstalled:
            if not self.auto_pull:
                raise
        else:
            if spec.backend == "ollama" and self.auto_pull:
                self._pull_from_ollama(spec)
            return spec
        spec = resolve_model(reference, self.config, self.store, require_installed=False)
        assert spec.catalog_entry is not None
        self.store.pull(spec.catalog_entry, self.progress)
        return resolve_model(reference, self.config, self.store)

    def _pull_from_ollama(self, spec: ModelSpec) -> None:
        """Pull a model its Ollama host lacks (an unreachable host is the run's to report)."""
        backend = self.backends.for_model(spec)
        if not isinstance(backend, PullsModels):
            return
        if _run(backend.is_pulled(spec)) is False:
            _run(backend.pull(spec, self.progress))

    def plan(
        self,
        *,
        explicit_agents: tuple[Agent, ...] = (),
        aggregator_prompt: str = "",
        single_model: bool = False,
    ) -> Plan:
        """Resolve every model, pull what is missing (if allowed), and build the plan.

        ``explicit_agents`` replace the configured strategy; ``aggregator_prompt``
        goes before the synthesis instructions; ``single_model`` makes the plan
        of the aggregator model alone. Raises :class:`ConfigError` or
        :class:`ModelError` before any model is loaded.
        """
        self._derive_ollama_budgets()
        config = self.config
        if not config.proposers:
            raise ConfigError("no proposers configured: give at least one proposer model")
        models: dict[str, ModelSpec] = {}
        for name in dict.fromkeys(config.proposers):
            models[name] = self._resolve(name)
        aggregator = self._aggregator(models)
        models[aggregator.name] = aggregator
        final_agent = None
        if config.final_agent:
            final_agent = models.get(config.final_agent) or self._resolve(config.final_agent)

        strategy = "agents" if explicit_agents else config.strategy
        proposer_names = list(config.proposers)
        n = proposers_per_layer(config, strategy)
        agents: tuple[Agent, ...] = ()
        role_model = None
        if strategy == "agents":
            agents = explicit_agents
        elif strategy == "model":
            agents = tuple(by_model(proposer_names, n, config.temperature))
        elif strategy == "temperature":
            low, high = config.temperature_range
            agents = tuple(by_temperature(proposer_names, n, low, high))
        else:  # role
            role_name = config.role_model or aggregator.name
            role_model = models.get(role_name) or self._resolve(role_name)
        if config.min_proposers > (len(agents) or n):
            raise ConfigError(
                f"min_proposers is {config.min_proposers} but a layer has only "
                f"{len(agents) or n} proposers"
            )
        for spec in [*models.values(), *(m for m in (final_agent, role_model) if m)]:
            self.backends.for_model(spec)  # fails now if the backend is not installed
            # A model that can never fit its budget fails now, before any load.
            self.scheduler.check_fits(spec, _run(self.scheduler.estimate(spec)))
        return Plan(
            layers=config.layers,
            aggregator=aggregator,
            models=models,
            sampling=Sampling.from_config(config),
            strategy=strategy,
            agents=agents,
            role_model=role_model,
            role_count=n,
            role_models=tuple(proposer_names),
            aggregator_prompt=aggregator_prompt,
            final_agent=final_agent,
            final_agent_prompt=config.final_agent_prompt,
            settings=config.as_dict(),
            single_model=single_model,
            conversation=(),
            system="",
            **policy_from(config),
        )

    def _aggregator(self, proposers: dict[str, ModelSpec]) -> ModelSpec:
        """The configured aggregator, or with "auto" the strongest model at hand."""
        name = self.config.aggregator
        if name and name != "auto":
            return proposers.get(name) or self._resolve(name)
        candidates = list(proposers.values())
        if any(spec.backend != "echo" for spec in candidates):
            candidates += self._installed()
        if not candidates:
            raise ModelError("no model available to aggregate; set an aggregator")
        best = candidates[0]
        for spec in candidates[1:]:
            if spec.strength > best.strength:
                best = spec
        return proposers.get(best.name, best)

    def _installed(self) -> list[ModelSpec]:
        """Chat models on disk: pulled catalog models and configured GGUF paths."""
        specs = []
        for name, model_config in self.config.models.items():
            if model_config.backend != "llamacpp":
                continue
            try:
                specs.append(resolve_model(name, self.config, self.store))
            except ModelError:
                continue
        for entry in catalog.CATALOG.values():
            if entry.chat and self.store.is_installed(entry):
                specs.append(resolve_model(entry.name, self.config, self.store))
        return specs


def proposers_per_layer(config: Config, strategy: str) -> int:
    """``num_proposers``, with 0 resolved: one proposer per model.

    One model that the strategy samples several times (temperature, role)
    gets the setting's built-in default instead: one sample is no mixture.
    """
    if config.num_proposers:
        return config.num_proposers
    if strategy == "model" or len(config.proposers) > 1:
        return len(config.proposers)
    default: int = SETTINGS["num_proposers"].default
    return default


def _run(coroutine: Any) -> Any:
    """Run a short coroutine from synchronous planning code (no loop may be running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    raise RuntimeError("MoA.prepare() cannot run inside an event loop; await MoA.run() instead")
