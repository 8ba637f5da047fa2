"""Token log-probabilities of llama.cpp generations, and scoring a given reply,
compared with llama-cpp-python's own ``logprobs`` on the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moa_local.backends.base import Completion
from moa_local.backends.capabilities import ScoresText
from moa_local.backends.llamacpp import LlamaCppBackend
from moa_local.trace import read_trace
from tests.backends.test_batched import layer, sampled
from tests.backends.test_llamacpp import _tiny_moa, request, spec_for

llama_cpp = pytest.importorskip("llama_cpp")

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]


def reference(path: Path) -> Any:
    """A plain llama-cpp-python model that keeps every position's logits."""
    return llama_cpp.Llama(str(path), logits_all=True, n_ctx=512, seed=1, verbose=False)


@pytest.mark.parametrize("reuse", [True, False], ids=["prompt-lookup", "plain"])
async def test_a_generation_records_each_tokens_logprob_as_llama_cpp_reports_it(
    tiny_model: Path, reuse: bool
) -> None:
    expected = reference(tiny_model).create_chat_completion(
        messages=MESSAGES, temperature=0.0, max_tokens=20, logprobs=True, top_logprobs=1
    )["choices"][0]["logprobs"]["content"]
    backend = LlamaCppBackend(reuse=reuse)
    try:
        got = await backend.generate(request(spec_for(tiny_model), max_tokens=20, temperature=0.0))
    finally:
        await backend.close()
    assert got.finish_reason == "length" and got.token_logprobs is not None
    # Every token, the last one included. llama-cpp-python's list leaves out a
    # token that ends inside a multi-byte character (the tiny model emits
    # random bytes), so its values must appear in ours in order, no others.
    assert len(got.token_logprobs) == 20 and len(expected) >= 17
    assert in_order([t["logprob"] for t in expected], got.token_logprobs)


def in_order(wanted: list[float], found: tuple[float, ...]) -> bool:
    """Whether ``wanted`` is a subsequence of ``found`` (to 1e-4)."""
    position = 0
    for value in wanted:
        while position < len(found) and abs(found[position] - value) > 1e-4:
            position += 1
        if position == len(found):
            return False
        position += 1
    return True


async def test_batched_samples_record_the_logprobs_they_record_one_by_one(
    tiny_model: Path,
) -> None:
    spec = spec_for(tiny_model)
    batched, serial = LlamaCppBackend(), LlamaCppBackend(batch=False)
    try:
        got, _ = await layer(batched, sampled(spec, max_tokens=32))
        expected, _ = await layer(serial, sampled(spec, max_tokens=32))
        assert (await batched.loaded_model(spec)).batches == 1
    finally:
        await batched.close()
        await serial.close()
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.token_logprobs and theirs.token_logprobs
        assert len(mine.token_logprobs) == mine.completion_tokens == 32
        assert mine.token_logprobs == pytest.approx(theirs.token_logprobs, abs=1e-3)


def _reference_score(path: Path, continuation: str) -> list[float]:
    """llama-cpp-python's log-probabilities of ``continuation`` after the chat's prompt."""
    from moa_local.backends.batched import chat_formatter

    model = reference(path)
    rendered = chat_formatter(model)(messages=MESSAGES)  # type: ignore[misc]
    prompt = model.tokenize(
        rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
    )
    tokens = model.tokenize(continuation.encode(), add_bos=False, special=False)
    model.eval(prompt + tokens)
    return [
        float(llama_cpp.Llama.logits_to_logprobs(model.scores[len(prompt) - 1 + i])[token])
        for i, token in enumerate(tokens)
    ]


async def test_score_gives_llama_cpps_logprobs_and_reuses_the_chat(tiny_model: Path) -> None:
    spec = spec_for(tiny_model)
    backend = LlamaCppBackend()
    assert isinstance(backend, ScoresText)
    try:
        first = await backend.score(spec, MESSAGES, "Paris is the capital.")
        model = await backend.loaded_model(spec)
        evaluated: list[int] = []
        original = model.llama.eval
        model.llama.eval = lambda tokens: (evaluated.extend(tokens), original(tokens))[1]
        second = await backend.score(spec, MESSAGES, "Lyon, I think.")
        assert await backend.score(spec, MESSAGES, "") == []
    finally:
        await backend.close()
    assert first == pytest.approx(_reference_score(tiny_model, "Paris is the capital."), abs=1e-4)
    assert second == pytest.approx(_reference_score(tiny_model, "Lyon, I think."), abs=1e-4)
    assert evaluated == []  # the chat's KV was kept: only the new reply was computed


def test_a_proposal_carries_its_mean_logprob(tiny_model: Path) -> None:
    result = _tiny_moa(tiny_model).run_sync("hello")
    proposals = [p for layer in result.layer_history for p in layer]
    assert proposals and all(p.mean_logprob is not None and p.mean_logprob < 0 for p in proposals)
    done = [e for e in read_trace(result.trace_file) if e["event"] == "proposal.done"]
    assert {e["mean_logprob"] for e in done} == {p.mean_logprob for p in proposals}


def test_a_completion_without_logprobs_says_so() -> None:
    assert Completion("x", 1, 1, 0.1).token_logprobs is None
