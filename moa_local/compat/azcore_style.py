"""The azcore-style ``Agent`` / ``MixtureOfAgents`` workflow, running on local models.

Its users write::

    analyst = Agent(agent_name="Analyst", system_prompt="You analyse.", llm="qwen2.5-coder-0.5b")
    critic = Agent(agent_name="Critic", system_prompt="You find flaws.", llm="smollm2-135m")
    boss = Agent(agent_name="Lead", system_prompt="You combine answers.", llm="qwen2.5-coder-0.5b")
    workflow = MixtureOfAgents(agents=[analyst, critic], aggregator_agent=boss, layers=2)
    out = workflow.run("Task")
    out["final_output"], out["layer_history"]

``run`` is synchronous and returns a dict: ``final_output`` (str) and
``layer_history`` (one list of output strings per layer; a failed agent's
entry is an empty string), plus ``result``, the full :class:`MoAResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agents import Agent as _Agent
from ..moa import MoA as _MoA
from .original import with_original_settings


@dataclass
class Agent:
    """An agent: a name, a system prompt, and the model (``llm``) it runs on."""

    agent_name: str
    system_prompt: str = ""
    llm: str = ""
    temperature: float | None = None

    def to_agent(self) -> _Agent:
        """The equivalent :class:`moa_local.Agent`."""
        return _Agent(
            name=self.agent_name,
            model=self.llm,
            system_prompt=self.system_prompt or None,
            temperature=self.temperature,
        )


class MixtureOfAgents:
    """Agents answer in layers; the aggregator agent synthesizes; an optional final agent."""

    def __init__(
        self,
        agents: list[Agent],
        aggregator_agent: Agent,
        layers: int = 2,
        final_agent: Agent | None = None,
        verbose: bool = False,
        **options: Any,
    ) -> None:
        self.verbose = verbose
        self._moa = _MoA(
            proposers=[agent.to_agent() for agent in agents],
            aggregator=aggregator_agent.to_agent(),
            final_agent=final_agent.to_agent() if final_agent else None,
            layers=layers,
            **with_original_settings(options),
        )

    def run(self, task: str) -> dict[str, Any]:
        """Run the workflow on ``task`` and return ``final_output`` and ``layer_history``."""
        result = self._moa.run_sync(task)
        if self.verbose:
            for number, layer in enumerate(result.layer_history, start=1):
                for proposal in layer:
                    state = proposal.error or f"{proposal.completion_tokens} tokens"
                    print(f"layer {number} {proposal.agent}: {state}")
        return {
            "final_output": result.final_response,
            "layer_history": [[p.content for p in layer] for layer in result.layer_history],
            "result": result,
        }
