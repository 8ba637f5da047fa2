"""What a run is asked to do: :class:`Plan` and :class:`Sampling`, and nothing that runs.

A plan is fully resolved: models are :class:`ModelSpec` objects, agents are
made (or the role model that will make them is named), and every field has
its value. No field has a default here: settings come from :class:`Config`
(built-in defaults < models.toml < environment < flags), where each is
declared once, through :meth:`Sampling.from_config` and :func:`policy_from`;
the planner (:mod:`moa_local.planning`) gives the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..agents import Agent
from ..backends.base import Message
from ..config import Config
from ..models.references import ModelSpec

TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class Sampling:
    """Sampling and policy settings shared by every generation of a run."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None  # None: a fresh seed per run, recorded in the trace
    timeout: float | None  # seconds per generation; None: no limit
    min_proposers: int
    stop: tuple[str, ...]  # ends the final answer (not the proposals); a run may set it

    @classmethod
    def from_config(cls, config: Config) -> Sampling:
        """The sampling settings of ``config`` (its -1 and 0 sentinels become None)."""
        return cls(
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_tokens,
            seed=None if config.seed < 0 else config.seed,
            timeout=config.timeout or None,
            min_proposers=config.min_proposers,
            stop=(),
        )


def policy_from(config: Config) -> dict[str, Any]:
    """The plan fields that say how a mixture runs and ends, as ``config`` sets them."""
    return {
        "task": config.task,
        "verify": config.verify,
        "write_tests": config.write_tests,
        "check_form": config.check_form,
        "check_arithmetic": config.check_arithmetic,
        "unchecked_text": config.unchecked_text,
        "verify_samples": config.verify_samples,
        "verify_stop": config.verify_stop,
        "max_samples": config.max_samples,
        "router": config.router,
        "layout": config.layout,
        "aggregate": config.aggregate,
        "aggregator_temperature": (
            None if config.aggregator_temperature < 0 else config.aggregator_temperature
        ),
        "aggregate_window": config.aggregate_window,
    }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A fully resolved run: agents (or how to make them), models and settings."""

    layers: int
    aggregator: ModelSpec
    models: dict[str, ModelSpec]
    sampling: Sampling
    strategy: str  # a Config strategy, or "agents" for explicit agents
    agents: tuple[Agent, ...]  # explicit or made by the strategy (role: made per question)
    role_model: ModelSpec | None  # the role strategy's model
    role_count: int  # proposers per layer
    role_models: tuple[str, ...]  # the proposer models, in order
    aggregator_prompt: str
    final_agent: ModelSpec | None
    final_agent_prompt: str
    settings: dict[str, object]  # Config.as_dict(), for the trace
    # How the mixture runs and ends (config/settings.py says what each value means):
    task: str  # "auto" (detect code questions), "code" or "text"
    # Run code candidates against tests (runs model-written code): true, false,
    # or "auto" (engine.evidence.wants_verification).
    verify: bool | Literal["auto"]
    # With verify "auto": code questions without examples get tests the model writes.
    write_tests: bool
    # Free text checked against its stated form: "off", "stated" or "written".
    check_form: str
    # Worked arithmetic checked: a wrong last step recomputed, a wrong earlier step no vote.
    check_arithmetic: bool
    # Free text with nothing to check: "greedy" (the first answer) or "consensus".
    unchecked_text: str
    # More samples a verified cascade draws while none passes the question's examples.
    verify_samples: int
    # When the cascade stops drawing although nothing passed: "never" or "repeat".
    verify_stop: str
    # Checkable answers: samples drawn until the vote is settled, at most this many (0: off).
    max_samples: int
    router: str  # "off", "agree" (stop when answers agree) or "on" (also simple questions)
    layout: str  # refinement layers: "references" or "continue" (own chat)
    aggregate: str  # a name of engine.choose.CHOOSERS: "synthesize", "select", "auto"
    aggregator_temperature: float | None  # None: the run's temperature
    aggregate_window: int  # references per aggregation step (0: as many as fit)
    single_model: bool  # no mixture: the aggregator model answers alone (a baseline)
    # A chat client's earlier turns (before the question) and system message,
    # given to every proposer and the aggregator (MoA.run sets them per run).
    conversation: tuple[Message, ...]
    system: str

    def spec_for(self, agent: Agent) -> ModelSpec:
        """The resolved model an agent runs on."""
        return self.models[agent.model]

    def temperature_of(self, agent: Agent) -> float:
        """The temperature ``agent`` samples at (its own, else the run's)."""
        return agent.temperature if agent.temperature is not None else self.sampling.temperature

    @property
    def final_temperature(self) -> float:
        """The aggregator's temperature: its own setting, else the run's."""
        if self.aggregator_temperature is None:
            return self.sampling.temperature
        return self.aggregator_temperature

    def strength(self, model: str) -> tuple[int, int]:
        """How strong a model of this plan is (unknown models are weakest)."""
        return self.models[model].strength if model in self.models else (0, 0)

    def greedy_order(self, agents: Sequence[Agent]) -> list[Agent]:
        """``agents`` strongest model first, coolest first: the greedy sample leads."""
        return sorted(
            agents, key=lambda a: (-self.strength(self.spec_for(a).name)[0], self.temperature_of(a))
        )
