"""``moa-local bench``: what reusing work saves, against a naive pipeline.

Every plan runs the same fixed prompts twice in one process, greedy
(temperature 0) so that both runs should write the same text:

- ``naive``: every generation starts from an empty context, with no prefix
  reuse and no speculation, as the seed MoA systems send independent chats;
- ``optimized``: KV snapshots, prefix reuse and prompt-lookup decoding
  (:mod:`moa_local.backends.reuse`).

For each plan it reports the wall time of both, the tokens the optimized run
prefilled (prompt tokens no earlier sequence of the model had computed) and
decoded, and a compute lower bound: those prefilled tokens at the prefill
rate plus the decoded tokens at the decode rate, both rates measured on this
machine at the start of the run. Speculation can beat that bound, since it
decodes several tokens for the price of one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .backends.base import BaseBackend, Completion, GenerateRequest, PieceCallback, StreamItem
from .backends.llamacpp import LlamaCppBackend
from .config import Config, apply_overrides
from .errors import ConfigError, GenerationError
from .estimate import MemoryEstimate
from .moa import MoA
from .models import ModelSpec
from .progress import ProgressFactory, silent_progress

PROMPTS: dict[str, str] = {
    "fact": "Why is the sky blue, and why are sunsets red?",
    "code": (
        "Write a Python function is_palindrome(text) that says whether a string is a "
        "palindrome, ignoring case, spaces and punctuation."
    ),
    "long": (
        "Explain how a hash table works: hashing, collisions, resizing, and when to "
        "use one instead of a sorted list."
    ),
}
PLANS = ("default", "self-moa", "self-moa-continue", "role")
# A prompt of this many words measures the prefill rate.
_CALIBRATION_WORDS = 300


@dataclass
class Generation:
    """One generation the engine asked for, as the backend answered it."""

    model: str
    tag: str
    text: str
    prompt_tokens: int
    prefilled_tokens: int
    completion_tokens: int
    drafted_tokens: int
    accepted_tokens: int
    seconds: float


class RecordingBackend(BaseBackend):
    """Passes every call to ``inner`` and keeps each :class:`Generation`."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.generations: list[Generation] = []

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """The inner stream, recording its completion."""
        async with aclosing(self.inner.stream(request)) as items:
            async for item in items:
                if isinstance(item, Completion):
                    self.generations.append(_generation(request, item))
                yield item

    async def generate_many(
        self,
        requests: Sequence[GenerateRequest],
        on_text: PieceCallback | None = None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """The inner backend's group generation (batches, greedy twins), recorded in
        request order so that the naive and optimized runs line up."""
        done: dict[int, Completion] = {}
        try:
            async with aclosing(self.inner.generate_many(requests, on_text)) as outcomes:
                async for index, outcome in outcomes:
                    if isinstance(outcome, Completion):
                        done[index] = outcome
                    yield index, outcome
        finally:  # also when the caller stops reading after the last answer it needs
            for index in sorted(done):
                self.generations.append(_generation(requests[index], done[index]))

    async def count_tokens(self, model: ModelSpec, text: str) -> int:
        """As the inner backend counts."""
        return await self.inner.count_tokens(model, text)

    async def estimate(self, model: ModelSpec) -> MemoryEstimate:
        """As the inner backend estimates."""
        return await self.inner.estimate(model)

    def compute_device(self, model: ModelSpec) -> str | None:
        """As the inner backend places it."""
        return self.inner.compute_device(model)

    async def load(self, model: ModelSpec) -> Any:
        """Loads through the inner backend."""
        return await self.inner.load(model)

    async def unload(self, model: ModelSpec) -> None:
        """Models stay loaded for the whole mode; the bench closes the inner backend."""

    async def close(self) -> None:
        """Nothing: the bench closes the inner backend itself."""


def _generation(request: GenerateRequest, completion: Completion) -> Generation:
    return Generation(
        model=request.model.name,
        tag=request.tag,
        text=completion.text,
        prompt_tokens=completion.prompt_tokens,
        prefilled_tokens=completion.prefilled_tokens,
        completion_tokens=completion.completion_tokens,
        drafted_tokens=completion.drafted_tokens,
        accepted_tokens=completion.accepted_tokens,
        seconds=completion.seconds,
    )


@dataclass
class PlanResult:
    """The figures of one plan (see the module docstring)."""

    plan: str
    naive_s: float
    optimized_s: float
    speedup: float
    lower_bound_s: float
    prefill_tokens: int
    naive_prefill_tokens: int
    decode_tokens: int
    identical_outputs: float
    generations: int
    acceptance_rate: float | None
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``--json``."""
        return asdict(self)


@dataclass(frozen=True)
class Rates:
    """Prefill and decode tokens per second of one model, measured here."""

    prefill: float
    decode: float


def plan_settings(name: str, config: Config, model: str | None) -> dict[str, Any]:
    """The [defaults] overrides of bench plan ``name``: every plan greedy."""
    greedy: dict[str, Any] = {
        "temperature": 0.0,
        "temperature_range": (0.0, 0.0),
        "aggregator_temperature": 0.0,
        "seed": 0,
        "verify": False,
        "trace_dir": "",
    }
    strongest = model or (config.aggregator if config.aggregator != "auto" else config.proposers[0])
    if name == "default":
        return greedy
    if name == "self-moa":
        return {
            **greedy,
            "proposers": [strongest],
            "aggregator": strongest,
            "strategy": "temperature",
            "num_proposers": 3,
            "layers": 2,
            "router": "off",
            "layout": "references",
        }
    if name == "self-moa-continue":
        # Self-MoA's second layer in the continue layout: each sample continues
        # its own chat, so its question and answer are not prefilled again.
        return {**plan_settings("self-moa", config, model), "layout": "continue"}
    if name == "role":
        return {
            **greedy,
            "proposers": [strongest],
            "aggregator": strongest,
            "role_model": strongest,
            "strategy": "role",
            "num_proposers": 3,
            "layers": 1,
            "router": "off",
        }
    raise ConfigError(f"unknown bench plan {name!r}; choose from {', '.join(PLANS)}")


async def _measure_rates(backend: LlamaCppBackend, spec: ModelSpec) -> Rates:
    """Prefill and decode rates of ``spec`` from two fresh-context generations."""
    words = " ".join(f"item{i % 50}" for i in range(_CALIBRATION_WORDS))
    messages = ({"role": "user", "content": f"Repeat the list: {words}"},)
    base = GenerateRequest(model=spec, messages=messages, temperature=0.0, seed=0)
    await backend.generate(replace(base, max_tokens=1))  # the first call also warms the model
    prefill_only = await backend.generate(replace(base, max_tokens=1))
    with_decode = await backend.generate(replace(base, max_tokens=65))
    prefill = prefill_only.prompt_tokens / max(prefill_only.seconds, 1e-6)
    decoded = max(1, with_decode.completion_tokens - 1)
    decode = decoded / max(with_decode.seconds - prefill_only.seconds, 1e-6)
    return Rates(prefill=prefill, decode=decode)


async def _run_mode(
    reuse: bool,
    plans: Sequence[tuple[str, Config]],
    prompts: Sequence[str],
    on_progress: Callable[[str], None],
    progress: ProgressFactory,
) -> tuple[dict[str, float], dict[str, list[Generation]], dict[str, Rates]]:
    """Run every plan on every prompt with one backend: wall times, generations, rates."""
    inner = LlamaCppBackend(reuse=reuse)
    recorder = RecordingBackend(inner)
    seconds: dict[str, float] = {}
    generations: dict[str, list[Generation]] = {}
    rates: dict[str, Rates] = {}
    mode = "optimized" if reuse else "naive"
    try:
        for name, settings in plans:
            moa = MoA(
                config=settings,
                backends={"llamacpp": recorder},
                auto_pull=True,
                progress=progress,
                trace_dir="",
            )
            plan = await asyncio.to_thread(moa.prepare)
            for spec in plan.models.values():
                if spec.backend != "llamacpp":
                    raise ConfigError(
                        f"bench measures llama.cpp models; {spec.name} runs on {spec.backend}"
                    )
                if not reuse and spec.name not in rates:
                    on_progress(f"measuring the prefill and decode rates of {spec.name}")
                    rates[spec.name] = await _measure_rates(inner, spec)
                else:
                    await inner.loaded_model(spec)  # loading is not what is measured
            recorder.generations = []
            started = time.perf_counter()
            for prompt in prompts:
                on_progress(f"{mode} {name}: {prompt[:40]}...")
                await moa.run(prompt)
            seconds[name] = time.perf_counter() - started
            generations[name] = list(recorder.generations)
    finally:
        await inner.close()
    return seconds, generations, rates


def run_bench(
    config: Config,
    *,
    plans: Sequence[str] = PLANS,
    prompts: Sequence[str] = tuple(PROMPTS),
    model: str | None = None,
    max_tokens: int = 128,
    on_progress: Callable[[str], None] = lambda _: None,
    progress: ProgressFactory = silent_progress,
) -> list[PlanResult]:
    """Run the bench; one :class:`PlanResult` per plan."""
    unknown = [p for p in prompts if p not in PROMPTS]
    if unknown:
        raise ConfigError(f"unknown bench prompt {unknown[0]!r}; choose from {', '.join(PROMPTS)}")
    texts = [PROMPTS[p] for p in prompts]
    configured = [
        (
            name,
            apply_overrides(
                config, {**plan_settings(name, config, model), "max_tokens": max_tokens}
            ),
        )
        for name in plans
    ]
    naive_s, naive_gen, rates = asyncio.run(
        _run_mode(False, configured, texts, on_progress, progress)
    )
    opt_s, opt_gen, _ = asyncio.run(_run_mode(True, configured, texts, on_progress, progress))
    results = []
    for name, _ in configured:
        naive, optimized = naive_gen[name], opt_gen[name]
        same = sum(a.text == b.text for a, b in zip(naive, optimized, strict=False))
        pairs = max(len(naive), len(optimized))
        differences = [
            f"{b.tag} ({b.model}): outputs part after {_common_chars(a.text, b.text)} characters"
            for a, b in zip(naive, optimized, strict=False)
            if a.text != b.text
        ]
        drafted = sum(g.drafted_tokens for g in optimized)
        accepted = sum(g.accepted_tokens for g in optimized)
        bound = sum(
            g.prefilled_tokens / rates[g.model].prefill
            + g.completion_tokens / rates[g.model].decode
            for g in optimized
        )
        results.append(
            PlanResult(
                plan=name,
                naive_s=round(naive_s[name], 3),
                optimized_s=round(opt_s[name], 3),
                speedup=round(naive_s[name] / max(opt_s[name], 1e-9), 2),
                lower_bound_s=round(bound, 2),
                prefill_tokens=sum(g.prefilled_tokens for g in optimized),
                naive_prefill_tokens=sum(g.prefilled_tokens for g in naive),
                decode_tokens=sum(g.completion_tokens for g in optimized),
                identical_outputs=round(same / pairs, 3) if pairs else 1.0,
                generations=pairs,
                acceptance_rate=round(accepted / drafted, 3) if drafted else None,
                differences=differences,
            )
        )
    return results


def _common_chars(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
