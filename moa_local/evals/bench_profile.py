"""``moa-local bench --profile``: where one ``ask`` spends its time, stage by stage.

One plan (``moa`` unless named) answers each fixed prompt as ``ask`` would
(a fresh backend, so loading counts; answers end where the model ends them),
and the run's generations and trace events are split into stages:

- ``load``: loading models (``model.load`` events);
- ``layer N``: the proposers of layer N; ``aggregator``, ``select``,
  ``tests``, ``final``, ``roles``: the generations of that job;
- ``choose and check``: the rest of the run's wall time (a vote, the
  router, running candidates against tests, scheduling).

For each generation stage: its wall time, how much of it went to prefill
(until every prompt of the stage had been read, which in a batch is shared)
and to decoding, the tokens prefilled and decoded, and how many generations
ran. Stages are listed in the order they began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..backends.llamacpp import LlamaCppBackend
from ..config import Config
from ..moa import MoA
from ..reporting import ProgressFactory, silent_progress
from .bench import DEFAULT_PLAN, Generation, RecordingBackend, plan_config, prompt_texts

# Generation tags that are a job of their own, not a proposer of a layer.
JOBS = ("aggregator", "select", "tests", "final", "roles")


@dataclass
class Stage:
    """One stage of a run (see the module docstring)."""

    stage: str
    seconds: float
    prefill_s: float | None = None
    decode_s: float | None = None
    prefilled_tokens: int = 0
    decoded_tokens: int = 0
    generations: int = 0


@dataclass
class Profile:
    """The stages of one ``ask`` of one prompt."""

    plan: str
    prompt: str
    total_s: float
    stages: list[Stage]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``--json``."""
        return asdict(self)


def profile_ask(
    config: Config,
    *,
    plan: str = DEFAULT_PLAN,
    prompts: Sequence[str] = ("fact", "code"),
    max_tokens: int | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
    progress: ProgressFactory = silent_progress,
) -> list[Profile]:
    """One :class:`Profile` per prompt, each a fresh run of ``plan``."""
    texts = prompt_texts(prompts)
    planned = plan_config(plan, config, max_tokens or config.max_tokens)
    profiles = []
    for name, text in zip(prompts, texts, strict=True):
        on_progress(f"profiling {plan} on the {name} prompt")
        profiles.append(asyncio.run(_profile_one(planned, plan, name, text, progress)))
    return profiles


async def _profile_one(
    config: Config, plan: str, name: str, text: str, progress: ProgressFactory
) -> Profile:
    inner = LlamaCppBackend()
    recorder = RecordingBackend(inner)
    events: list[dict[str, Any]] = []
    moa = MoA(
        config=config,
        backends={"llamacpp": recorder},
        progress=progress,
        observers=[lambda event, record: events.append({"event": event, **record})],
    )
    try:
        await moa.run(text)
    finally:
        await inner.close()
    return Profile(plan, name, *stages_of(events, recorder.generations))


def stages_of(
    events: Sequence[dict[str, Any]], generations: Sequence[Generation]
) -> tuple[float, list[Stage]]:
    """The run's total seconds and its stages, from its trace events and generations."""
    start = next(e["ts"] for e in events if e["event"] == "run.start")
    end = next(e["ts"] for e in reversed(events) if e["event"] in ("run.done", "run.error"))
    layer_starts = [e["ts"] for e in events if e["event"] == "layer.start"]
    load = sum(float(e.get("seconds") or 0) for e in events if e["event"] == "model.load")
    groups: dict[str, list[Generation]] = {}
    for generation in generations:
        if generation.tag in JOBS:
            key = generation.tag
        else:
            key = f"layer {max(1, sum(1 for t in layer_starts if t <= generation.started))}"
        groups.setdefault(key, []).append(generation)
    stages = [Stage("load", round(load, 3))]
    busy = 0.0
    for key, group in sorted(groups.items(), key=lambda item: min(g.started for g in item[1])):
        first = min(g.started for g in group)
        last = max(g.started + g.seconds for g in group)
        read = [g.started + g.prefill_seconds for g in group if g.prefill_seconds is not None]
        prefill = max(read) - first if read else None
        stages.append(
            Stage(
                key,
                round(last - first, 3),
                None if prefill is None else round(prefill, 3),
                None if prefill is None else round(last - first - prefill, 3),
                sum(g.prefilled_tokens for g in group),
                sum(g.completion_tokens for g in group),
                len(group),
            )
        )
        busy += last - first
    stages.append(Stage("choose and check", round(max(0.0, end - start - load - busy), 3)))
    return round(end - start, 3), stages
