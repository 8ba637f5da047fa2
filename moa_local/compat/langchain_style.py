"""The LangChain-style ``MoA`` class, running on local models.

Its users write::

    moa = MoA(models_layer=["qwen2.5-coder-0.5b", "smollm2-135m"], model_roles="qwen2.5-coder-0.5b",
              aggregator_model="qwen2.5-coder-0.5b", nb_models_by_layer=2, layer=2,
              layer_strategy="role")
    print(asyncio.run(moa.run("Your prompt here")))

As in the original, ``layer`` counts refinement rounds after the first layer
of proposals (``layer=0``: one layer), ``layer_strategy="model"`` uses every
listed model once, ``run`` returns the final answer as a string, and traces
go to ``./logs/moa/`` as JSONL.
"""

from __future__ import annotations

from typing import Any

from ..moa import MoA as _MoA
from ..result import MoAResult
from .original import with_original_settings


class MoA:
    """Mixture-of-Agents with the LangChain-style constructor."""

    def __init__(
        self,
        models_layer: list[str] | None = None,
        model_roles: str | None = None,
        aggregator_model: str | None = None,
        nb_models_by_layer: int = 2,
        layer: int = 0,
        temperature: float = 0.1,
        max_tokens: int = 4096,
        layer_strategy: str = "role",
        **options: Any,
    ) -> None:
        models = list(models_layer or [])
        self.layer_strategy = layer_strategy
        self.nb_models_by_layer = len(models) if layer_strategy == "model" else nb_models_by_layer
        options = with_original_settings({"trace_dir": "./logs/moa", **options})
        self._moa = _MoA(
            proposers=models or None,
            aggregator=aggregator_model,
            role_model=model_roles,
            layers=layer + 1,
            strategy=layer_strategy,
            n=self.nb_models_by_layer,
            temperature=temperature,
            max_tokens=max_tokens,
            **options,
        )
        self.last_result: MoAResult | None = None

    @property
    def traceback_filename(self) -> str | None:
        """The JSONL trace of the last run."""
        return self.last_result.trace_file if self.last_result else None

    async def run(self, user_prompt: str) -> str:
        """Run the MoA and return the final answer."""
        self.last_result = await self._moa.run(user_prompt)
        return self.last_result.final_response
