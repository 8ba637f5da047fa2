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

``run`` returns a plain dict with the original's four keys and their
original meaning: ``final_response`` the aggregated answer,
``num_proposals`` and ``models_used`` counted over the proposals of the
*final* layer (``len(proposals)`` and ``[p.model for p in proposals]``: 3
and 3 models for 3 proposers, whatever the number of layers), and
``layers`` the configured number of layers. The rest of
``MoAResult.to_dict()`` rides along under keys the original does not use
(``layer_history``, ``aggregator``, ``usage``, ...), with the whole run's
counts as ``total_proposals`` and ``all_models_used``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agents import Agent
from ..moa import MoA
from .original import with_original_settings


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
        self.num_layers = num_layers
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
            **with_original_settings(options),
        )

    async def run(self, query: str) -> dict[str, Any]:
        """Run on ``query``; return the original's dict (see the module docstring)."""
        result = await self._moa.run(query)
        extra = result.to_dict()
        final_layer = [p for p in result.layer_history[-1] if p.ok] if result.layer_history else []
        return {
            **extra,
            "total_proposals": extra["num_proposals"],
            "all_models_used": extra["models_used"],
            "final_response": result.final_response,
            "num_proposals": len(final_layer),
            "models_used": [p.model for p in final_layer],
            "layers": self.num_layers,
        }
