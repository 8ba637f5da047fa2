"""Reused work gives the tokens a fresh context gives: KV snapshots and prompt lookup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from moa_local.backends.base import GenerateRequest
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.backends.reuse import NgramDrafter, Snapshot, SnapshotStore, common_prefix
from moa_local.config import load_config
from moa_local.models.references import ModelSpec, resolve_model
from moa_local.models.store import ModelStore

pytest.importorskip("llama_cpp")

QUESTION = "Name three colours of the rainbow and say one thing about each."


def spec_for(path: Path) -> ModelSpec:
    return resolve_model(f"path:{path}", load_config(), ModelStore(Path("home")))


def chat(spec: ModelSpec, *messages: tuple[str, str], max_tokens: int = 24) -> GenerateRequest:
    return GenerateRequest(
        model=spec,
        messages=tuple({"role": role, "content": text} for role, text in messages),
        temperature=0.0,
        max_tokens=max_tokens,
        seed=0,
    )


def conversation(spec: ModelSpec, max_tokens: int) -> list[GenerateRequest]:
    """Two agents taking turns on one model, the second layer continuing each chat."""
    first = ("system", "You are a careful physicist.")
    second = ("system", "You are a painter who loves colour.")
    question = ("user", QUESTION)
    return [
        chat(spec, first, question, max_tokens=max_tokens),
        chat(spec, second, question, max_tokens=max_tokens),
        chat(spec, first, question, max_tokens=max_tokens),  # the same prompt again
    ]


async def answers(backend: LlamaCppBackend, requests: list[GenerateRequest]) -> list[str]:
    texts = []
    for request in requests:
        texts.append((await backend.generate(request)).text)
    return texts


async def continued(backend: LlamaCppBackend, spec: ModelSpec, max_tokens: int) -> list[str]:
    """Layer 1 of two agents, then layer 2 where each continues its own conversation."""
    layer1 = await answers(backend, conversation(spec, max_tokens)[:2])
    systems = ("You are a careful physicist.", "You are a painter who loves colour.")
    layer2 = [
        chat(
            spec,
            ("system", system),
            ("user", QUESTION),
            ("assistant", own),
            ("user", f"Another answer was:\n{other}\nImprove yours."),
            max_tokens=max_tokens,
        )
        for system, own, other in zip(systems, layer1, reversed(layer1), strict=True)
    ]
    return [*layer1, *await answers(backend, layer2)]


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([9], [1]) == 0


def test_snapshot_store_finds_the_longest_prefix_and_stays_in_its_bound() -> None:
    store = SnapshotStore(capacity_bytes=100)
    store.add(Snapshot((1, 2, 3), b"x" * 40))
    store.add(Snapshot((1, 2, 9, 9), b"y" * 40))
    found, length = store.best([1, 2, 9, 9, 7])
    assert found is not None and found.tokens == (1, 2, 9, 9) and length == 4
    # a snapshot that extends another replaces it
    store.add(Snapshot((1, 2, 3, 4), b"z" * 40))
    assert sorted(store.sequences()) == [(1, 2, 3, 4), (1, 2, 9, 9)]
    assert store.bytes_used == 80
    # beyond the bound the least recently used goes first
    store.add(Snapshot((5, 6), b"w" * 40))
    assert store.bytes_used <= 100
    assert (1, 2, 9, 9) not in store.sequences()
    # a state larger than the whole bound is not kept
    store.add(Snapshot((7,), b"v" * 101))
    assert (7,) not in store.sequences()


def test_drafter_proposes_what_followed_the_last_ngram() -> None:
    drafter = NgramDrafter([10, 11, 12, 13, 14, 15, 10, 11, 12])
    assert drafter.draft(3) == [13, 14, 15]
    drafter.append(99)  # nothing ever followed 11 12 99
    assert drafter.draft(3) == []
    from_source = NgramDrafter([1, 2, 3], sources=[(7, 1, 2, 3, 4, 5, 6)])
    assert from_source.draft(2) == [4, 5]
    assert NgramDrafter([1, 2]).draft(4) == []


async def test_snapshots_give_the_tokens_of_a_fresh_context(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    fresh = LlamaCppBackend(reuse=False)
    reusing = LlamaCppBackend(reuse=True, lookup=False)
    try:
        expected = await continued(fresh, spec, 16)
        got = await continued(reusing, spec, 16)
        model = await reusing.loaded_model(spec)
        assert len(model.llama.snapshots) > 0
        # the last request continued the first agent's chat from its snapshot
        assert model.llama.stats.restored
        assert model.llama.stats.reused_tokens > 20
    finally:
        await fresh.close()
        await reusing.close()
    assert got == expected


async def test_prompt_lookup_gives_the_greedy_tokens(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    plain = LlamaCppBackend(reuse=True, lookup=False)
    lookup = LlamaCppBackend(reuse=True, lookup=True)
    try:
        requests = conversation(spec, 48)
        expected = await answers(plain, requests)
        got = []
        drafted = 0
        for request in requests:
            completion = await lookup.generate(request)
            got.append(completion.text)
            drafted += completion.drafted_tokens
    finally:
        await plain.close()
        await lookup.close()
    assert got == expected
    # the repeated prompt drafted its whole answer from the first one's snapshot
    assert drafted > 0


async def test_a_cancelled_generation_leaves_nothing_behind(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    backend = LlamaCppBackend(reuse=True, lookup=True)
    fresh = LlamaCppBackend(reuse=False)
    try:
        started = asyncio.Event()
        long = chat(spec, ("user", QUESTION), max_tokens=400)

        async def consume() -> None:
            async for _ in backend.stream(long):
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        import llama_cpp

        llama = (await backend.loaded_model(spec)).llama
        # the KV cache holds exactly the tokens the context says it holds:
        # no unverified draft and no half-written sequence beyond them
        memory = llama_cpp.llama_get_memory(llama._ctx.ctx)
        assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == llama.n_tokens - 1
        follow_up = conversation(spec, 16)
        assert await answers(backend, follow_up) == await answers(fresh, follow_up)
    finally:
        await backend.close()
        await fresh.close()


async def test_memory_estimate_counts_the_snapshot_store(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    with_snapshots = await LlamaCppBackend(reuse=True).estimate(spec)
    without = await LlamaCppBackend(reuse=False).estimate(spec)
    assert with_snapshots.snapshots == without.kv_cache > 0
    assert with_snapshots.per_device["cpu"] == without.per_device["cpu"] + without.kv_cache
