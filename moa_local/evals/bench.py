"""``moa-local bench``: what ``ask`` costs, naive against optimized, on equal work.

Every plan is a real configuration: ``moa`` (the ``[defaults]``) or a
``[presets.NAME]``, sampled as configured with a fixed seed (the
configuration's, else 0). Each plan runs the fixed prompts twice in one
process:

- ``naive``: every generation starts from an empty context, one after
  another: no prefix reuse, no speculation, no batching, no greedy twins, as
  the seed MoA systems send independent chats;
- ``optimized``: as ``ask`` runs (KV snapshots, prefix reuse, prompt-lookup
  decoding, samples of one model decoded together, greedy twins answered
  once: :mod:`moa_local.backends.reuse`, :mod:`~moa_local.backends.batched`).

Both runs do the same work: every generation decodes exactly ``max_tokens``
tokens, end-of-text suppressed (:attr:`GenerateRequest.ignore_eos`), so the
times compare equal tokens. What a plan decides can still differ between the
runs (sampled tokens may differ in the last bits when decoded together, and
a router or a vote may then go another way): both runs' prefilled and decoded
tokens are reported, so unequal work shows.

The plan runs as ``ask`` would, stops included: the first answer kept for
free text, a verified cascade ended by a passing program, a vote settled;
the generations each prompt drew are reported (``samples_per_prompt``).

For each plan: the wall time of both, the optimized run's decoded tokens per
second, the tokens it prefilled (prompt tokens no earlier sequence of the
model had computed) and decoded, and a compute lower bound: those prefilled
tokens at the prefill rate plus the decoded tokens at the decode rate, both
rates measured on this machine at the start of the run (a batch decodes
several tokens per step and can beat it). Greedy twins (a greedy request
repeated exactly, answered by a copy) are counted: a sampled configuration
has none. :mod:`.bench_profile` splits one ``ask`` into its stages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..backends.base import (
    BaseBackend,
    Completion,
    GenerateRequest,
    PieceCallback,
    StreamItem,
    closing_stream,
)
from ..backends.llamacpp import LlamaCppBackend
from ..backends.llamacpp_generate import greedy_twins
from ..config import Config, apply_overrides, preset_overrides
from ..errors import ConfigError, GenerationError
from ..moa import MoA
from ..models.estimate import MemoryEstimate
from ..models.references import ModelSpec
from ..reporting import ProgressFactory, silent_progress

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
DEFAULT_PLAN = "moa"
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
    started: float = 0.0  # wall clock (time.time()) when it was asked for
    prefill_seconds: float | None = None
    twin: bool = False  # answered by copying an identical greedy request


class RecordingBackend(BaseBackend):
    """Passes every call to ``inner`` and keeps each :class:`Generation`.

    With ``equal_tokens``, every request decodes exactly its ``max_tokens``
    (:attr:`GenerateRequest.ignore_eos`).
    """

    def __init__(self, inner: LlamaCppBackend, equal_tokens: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.equal_tokens = equal_tokens
        self.generations: list[Generation] = []

    def _asked(self, request: GenerateRequest) -> GenerateRequest:
        return replace(request, ignore_eos=True) if self.equal_tokens else request

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """The inner stream, recording its completion."""
        started = time.time()
        async with closing_stream(self.inner.stream(self._asked(request))) as items:
            async for item in items:
                if isinstance(item, Completion):
                    self.generations.append(_generation(request, item, started))
                yield item

    async def generate_many(
        self,
        requests: Sequence[GenerateRequest],
        on_text: PieceCallback | None = None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """The inner backend's group generation (batches, greedy twins), recorded in
        request order so that the naive and optimized runs line up."""
        started = time.time()
        asked = [self._asked(r) for r in requests]
        twins = greedy_twins(asked) if self.inner.reuse else {}
        done: dict[int, Completion] = {}
        try:
            async with closing_stream(self.inner.generate_many(asked, on_text)) as outcomes:
                async for index, outcome in outcomes:
                    if isinstance(outcome, Completion):
                        done[index] = outcome
                    yield index, outcome
        finally:  # also when the caller stops reading after the last answer it needs
            for index in sorted(done):
                generation = _generation(requests[index], done[index], started)
                generation.twin = index in twins
                self.generations.append(generation)

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


def _generation(request: GenerateRequest, completion: Completion, started: float) -> Generation:
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
        started=started,
        prefill_seconds=completion.prefill_seconds,
    )


@dataclass
class PlanResult:
    """The figures of one plan (see the module docstring)."""

    plan: str
    naive_s: float
    optimized_s: float
    speedup: float
    lower_bound_s: float
    bound_ratio: float  # optimized_s / lower_bound_s
    tokens_per_s: float  # decoded tokens per second of the optimized run
    prefill_tokens: int
    naive_prefill_tokens: int
    decode_tokens: int
    naive_decode_tokens: int
    identical_outputs: float
    generations: int
    # Generations per prompt in the optimized run: what the plan's stops drew (the
    # first answer kept, a cascade stopped at a passing program, a vote settled).
    samples_per_prompt: float
    greedy_twins: int
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


def plan_names(config: Config) -> list[str]:
    """Every plan there is: ``moa`` and each preset."""
    return [DEFAULT_PLAN, *config.presets]


def plan_config(name: str, config: Config, max_tokens: int) -> Config:
    """The configuration ``ask --preset name`` runs (``moa``: the defaults), seeded."""
    if name != DEFAULT_PLAN and name not in config.presets:
        raise ConfigError(
            f"unknown bench plan {name!r}; choose from {', '.join(plan_names(config))}"
        )
    settings = {} if name == DEFAULT_PLAN else preset_overrides(config, name)
    planned = apply_overrides(config, settings)
    seed = planned.seed if planned.seed >= 0 else 0
    return apply_overrides(planned, {"seed": seed, "max_tokens": max_tokens, "trace_dir": ""})


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
    recorder = RecordingBackend(inner, equal_tokens=True)
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
    plans: Sequence[str] = (DEFAULT_PLAN,),
    prompts: Sequence[str] = tuple(PROMPTS),
    max_tokens: int = 128,
    on_progress: Callable[[str], None] = lambda _: None,
    progress: ProgressFactory = silent_progress,
) -> list[PlanResult]:
    """Run the bench; one :class:`PlanResult` per plan."""
    texts = prompt_texts(prompts)
    configured = [(name, plan_config(name, config, max_tokens)) for name in plans]
    naive_s, naive_gen, rates = asyncio.run(
        _run_mode(False, configured, texts, on_progress, progress)
    )
    opt_s, opt_gen, _ = asyncio.run(_run_mode(True, configured, texts, on_progress, progress))
    return [
        _result(name, naive_s[name], opt_s[name], naive_gen[name], opt_gen[name], rates, len(texts))
        for name, _ in configured
    ]


def prompt_texts(names: Sequence[str]) -> list[str]:
    """The texts of the named fixed prompts; an unknown name is a ConfigError."""
    unknown = [p for p in names if p not in PROMPTS]
    if unknown:
        raise ConfigError(f"unknown bench prompt {unknown[0]!r}; choose from {', '.join(PROMPTS)}")
    return [PROMPTS[p] for p in names]


def _result(
    name: str,
    naive_s: float,
    optimized_s: float,
    naive: list[Generation],
    optimized: list[Generation],
    rates: dict[str, Rates],
    prompts: int,
) -> PlanResult:
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
        g.prefilled_tokens / rates[g.model].prefill + g.completion_tokens / rates[g.model].decode
        for g in optimized
        if not g.twin  # a copy computes nothing
    )
    decoded = sum(g.completion_tokens for g in optimized if not g.twin)
    return PlanResult(
        plan=name,
        naive_s=round(naive_s, 3),
        optimized_s=round(optimized_s, 3),
        speedup=round(naive_s / max(optimized_s, 1e-9), 2),
        lower_bound_s=round(bound, 2),
        bound_ratio=round(optimized_s / max(bound, 1e-9), 2),
        tokens_per_s=round(decoded / max(optimized_s, 1e-9), 1),
        prefill_tokens=sum(g.prefilled_tokens for g in optimized),
        naive_prefill_tokens=sum(g.prefilled_tokens for g in naive),
        decode_tokens=decoded,
        naive_decode_tokens=sum(g.completion_tokens for g in naive),
        identical_outputs=round(same / pairs, 3) if pairs else 1.0,
        generations=pairs,
        samples_per_prompt=round(len(optimized) / max(prompts, 1), 2),
        greedy_twins=sum(g.twin for g in optimized),
        acceptance_rate=round(accepted / drafted, 3) if drafted else None,
        differences=differences,
    )


def _common_chars(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
