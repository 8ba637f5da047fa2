"""The proposer/aggregator-style ``MixtureOfAgents``, running on local models.

Its users write::

    moa = MixtureOfAgents(
        proposers=[ProposerConfig("coder", "qwen2.5-coder-0.5b", temperature=0.5),
                   ProposerConfig("generalist", "smollm2-135m", system_prompt="Be brief.")],
        aggregator_model="qwen2.5-coder-0.5b",
        num_layers=2,
    )
    result = await moa.run("Question")
    result["final_response"], result["num_proposals"], result["models_used"], result["layers"]

``run`` returns a plain dict (``MoAResult.to_dict()``), which carries those
keys and the rest of the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agents import Agent
from ..moa import MoA


@dataclass
class ProposerConfig:
    """One proposer: a name, its model, temperature and optional system prompt."""

    name: str
    model: str
    temperature: float = 0.7
    system_prompt: str | None = None


class MixtureOfAgents:
    """Proposers answer in ``num_layers`` layers, then the aggregator model synthesizes."""

    def __init__(
        self,
        proposers: list[ProposerConfig],
        aggregator_model: str,
        num_layers: int = 2,
        **options: Any,
    ) -> None:
        self._moa = MoA(
            proposers=[
                Agent(
                    name=p.name,
                    model=p.model,
                    system_prompt=p.system_prompt,
                    temperature=p.temperature,
                )
                for p in proposers
            ],
            aggregator=aggregator_model,
            layers=num_layers,
            **options,
        )

    async def run(self, query: str) -> dict[str, Any]:
        """Run on ``query``; return the result as a dict."""
        result = await self._moa.run(query)
        return result.to_dict()
