"""Samples of one model decoded together give the tokens they give one by one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from moa_local.backends.base import Completion, GenerateRequest
from moa_local.backends.batched import MAX_SEQUENCES
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.models.references import ModelSpec
from tests.backends.test_reuse import answers, conversation, spec_for

pytest.importorskip("llama_cpp")

QUESTION = "Name three colours of the rainbow and say one thing about each."


def sampled(
    spec: ModelSpec, max_tokens: int = 64, stop: tuple[str, ...] = ()
) -> list[GenerateRequest]:
    """One Self-MoA-like layer: two system prompts, spread temperatures, own seeds."""
    systems = ["You are a careful physicist.", "You are a painter.", "You are a careful physicist."]
    return [
        GenerateRequest(
            model=spec,
            messages=({"role": "system", "content": system}, {"role": "user", "content": QUESTION}),
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
        )
        for system, temperature, seed in zip(systems, (0.0, 0.7, 1.0), (1, 2, 3), strict=True)
    ]


def ascii_only(text: str) -> str:
    """The text without non-ASCII characters."""
    return "".join(c for c in text if ord(c) < 128)


def assert_same_tokens(
    got: list[Completion], expected: list[Completion], max_tokens: int = 64
) -> None:
    """The batch's answers are those of one by one, up to how random bytes print.

    The tiny model emits random bytes. llama-cpp-python's stream drops a
    multi-byte character whose bytes arrive as separate tokens (the batch
    decodes it), and at max_tokens it goes on for up to three tokens to
    complete a character; the tokens up to there are the same, and so is
    every ASCII character they spell.
    """
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.finish_reason == theirs.finish_reason
        assert ascii_only(theirs.text).startswith(ascii_only(mine.text))
        assert len(ascii_only(theirs.text)) - len(ascii_only(mine.text)) <= 3
        if mine.finish_reason == "length":
            assert mine.completion_tokens == max_tokens


async def layer(
    backend: LlamaCppBackend, requests: list[GenerateRequest]
) -> tuple[list[Completion], list[str]]:
    """Completions in request order, and the text each streamed."""
    results: list[Completion | None] = [None] * len(requests)
    streamed = [""] * len(requests)

    def piece(index: int, text: str) -> None:
        streamed[index] += text

    async for index, outcome in backend.generate_many(requests, piece):
        assert isinstance(outcome, Completion), outcome
        results[index] = outcome
    assert all(r is not None for r in results)
    return [r for r in results if r is not None], streamed


async def test_batched_samples_are_the_samples_one_by_one(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    batched = LlamaCppBackend()
    serial = LlamaCppBackend(batch=False)
    try:
        got, streamed = await layer(batched, sampled(spec))
        expected, _ = await layer(serial, sampled(spec))
        assert (await batched.loaded_model(spec)).batches == 1
        assert (await serial.loaded_model(spec)).batches == 0
    finally:
        await batched.close()
        await serial.close()
    assert_same_tokens(got, expected)
    assert streamed == [c.text for c in got]
    # the shared prefix (chat header and "You are a ") was computed once
    prefilled = sum(c.prefilled_tokens for c in got)
    assert prefilled < sum(c.prompt_tokens for c in got) - 2 * 10


async def test_a_stop_string_ends_its_sequence_alone(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    serial = LlamaCppBackend(batch=False)
    batched = LlamaCppBackend()
    try:
        free, _ = await layer(serial, sampled(spec, max_tokens=48))
        # a stretch of the second sample's answer, so that it stops there
        text = ascii_only(free[1].text)
        stop = next(text[i : i + 3] for i in range(4, len(text)) if text[i : i + 3].isprintable())
        got, streamed = await layer(batched, sampled(spec, max_tokens=48, stop=(stop,)))
        assert (await batched.loaded_model(spec)).batches == 1
    finally:
        await serial.close()
        await batched.close()
    assert got[1].finish_reason == "stop"
    assert ascii_only(got[1].text) == text[: text.index(stop)]
    for mine, alone in zip(got, free, strict=True):
        if stop not in ascii_only(alone.text):
            assert ascii_only(mine.text) == ascii_only(alone.text)[: len(ascii_only(mine.text))]
    # nothing past the stop string was streamed, even held back and released
    assert streamed == [c.text for c in got]


async def test_a_cancelled_batch_leaves_one_clean_sequence(tiny_model: Path) -> None:
    import llama_cpp

    spec = spec_for(tiny_model)
    backend = LlamaCppBackend()
    fresh = LlamaCppBackend(reuse=False)
    try:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in backend.generate_many(
                sampled(spec, max_tokens=600), lambda i, t: started.set()
            ):
                pass

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        llama = (await backend.loaded_model(spec)).llama
        memory = llama_cpp.llama_get_memory(llama._ctx.ctx)
        # no other sequence keeps cells; sequence 0 holds what the context says
        for seq_id in range(1, MAX_SEQUENCES):
            assert llama_cpp.llama_memory_seq_pos_max(memory, seq_id) == -1
        assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == llama.n_tokens - 1
        follow_up = conversation(spec, 16)
        assert await answers(backend, follow_up) == await answers(fresh, follow_up)
    finally:
        await backend.close()
        await fresh.close()


async def test_a_batch_the_context_cannot_hold_goes_one_by_one(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    backend = LlamaCppBackend()
    try:
        # three different prompts of over a third of the context each: each fits
        # alone, together they do not
        requests = [
            GenerateRequest(
                model=spec,
                messages=(
                    {"role": "user", "content": f"{word} " * (spec.n_ctx // 3 // len(word))},
                ),
                temperature=0.8,
                max_tokens=16,
                seed=1,
            )
            for word in ("red", "green", "blue")
        ]
        results, _ = await layer(backend, requests)
        assert (await backend.loaded_model(spec)).batches == 0
    finally:
        await backend.close()
    assert len(results) == 3
    assert sum(r.prompt_tokens for r in results) > spec.n_ctx


async def test_one_sequence_alone_still_has_the_whole_context(tiny_model: Path) -> None:
    import llama_cpp

    spec = spec_for(tiny_model)
    backend = LlamaCppBackend()
    try:
        model = await backend.loaded_model(spec)
        assert llama_cpp.llama_n_seq_max(model.llama.ctx) == MAX_SEQUENCES
        # a prompt far longer than the context's share per sequence, were it split
        long = "colour " * (spec.n_ctx // 2 // 7)
        request = GenerateRequest(
            model=spec,
            messages=({"role": "user", "content": long},),
            temperature=0.0,
            max_tokens=8,
        )
        completion = await backend.generate(request)
    finally:
        await backend.close()
    assert completion.prompt_tokens > spec.n_ctx // MAX_SEQUENCES * 2


async def test_greedy_groups_keep_prompt_lookup(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    backend = LlamaCppBackend()
    try:
        greedy = [replace(r, temperature=0.0) for r in sampled(spec)]
        greedy[2] = replace(greedy[2], max_tokens=63)  # the first's chat, not its twin
        results, _ = await layer(backend, greedy)
        assert (await backend.loaded_model(spec)).batches == 0
    finally:
        await backend.close()
    # the third request repeats the first's chat: drafted from its snapshot
    assert results[2].accepted_tokens > 0


async def test_a_greedy_twin_is_answered_once(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    requests = [replace(r, temperature=0.0) for r in sampled(spec)]
    # the same chat as the first; its seed differs, which greedy decoding ignores
    assert replace(requests[2], seed=None) == replace(requests[0], seed=None)
    backend = LlamaCppBackend()
    try:
        results, streamed = await layer(backend, requests)
    finally:
        await backend.close()
    assert results[2].text == results[0].text == streamed[2]
    assert results[2].seconds == 0.0 and results[2].reused_tokens == results[2].prompt_tokens
    assert results[0].seconds > 0.0 and results[1].text != results[0].text
