"""Generation on loaded llama.cpp models, in worker threads.

:class:`LlamaCppGeneration` is the half of
:class:`~moa_local.backends.llamacpp.LlamaCppBackend` that generates: the
subclass loads models (:meth:`~LlamaCppGeneration.loaded_model`), this class
runs chats on them. A ``Llama`` object holds one context and is not
thread-safe, so each :class:`LoadedModel` carries its own lock, and the
blocking calls run in worker threads (llama.cpp releases the GIL inside its C
calls, so the event loop stays responsive).

Generation always streams inside the worker thread, token by token, which is
what makes cancellation prompt: the thread checks a flag between tokens, and
the async side waits for the thread to stop before it lets go, so a cancelled
run leaves no generation running and no lock held.

Several sampled requests for one model (the samples of a Self-MoA layer)
decode together, one batch per step (see :mod:`.batched`); greedy requests
that repeat one another exactly are generated once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ContextOverflowError, GenerationError, MoALocalError
from ..models.references import ModelSpec
from .base import (
    BaseBackend,
    Completion,
    GenerateRequest,
    Message,
    PieceCallback,
    StreamItem,
    now,
)
from .batched import Batch, NotBatchable, end_tokens
from .llamacpp_score import score_blocking
from .logprobs import log_sum_exp


@dataclass
class LoadedModel:
    """A loaded ``Llama`` and the lock that serialises its use."""

    spec: ModelSpec
    llama: Any
    lock: threading.Lock
    load_seconds: float
    threads: int
    batches: int = 0  # generate_many groups decoded together in one batch


def load_key(spec: ModelSpec) -> tuple[Any, ...]:
    """What makes two specs one load: the same file with the same load settings."""
    return (spec.path, spec.n_ctx, spec.n_gpu_layers, spec.n_threads, spec.chat_format)


def greedy_twins(requests: Sequence[GenerateRequest]) -> dict[int, int]:
    """Each greedy request that repeats an earlier one exactly, mapped to that earlier one."""
    first: dict[tuple[Any, ...], int] = {}
    twins: dict[int, int] = {}
    for index, request in enumerate(requests):
        if request.temperature > 0:
            continue
        key = (
            load_key(request.model),
            json.dumps(request.messages, sort_keys=True),
            request.max_tokens,
            request.stop,
        )
        if key in first:
            twins[index] = first[key]
        else:
            first[key] = index
    return twins


class LlamaCppGeneration(BaseBackend):
    """Generates on the models a subclass loads; see the module docstring."""

    reuse: bool  # False: no KV reuse, no greedy twins (bench's baseline)
    batch: bool  # whether sampled requests for one model decode together

    async def loaded_model(self, spec: ModelSpec) -> LoadedModel:
        """The loaded model for ``spec``, loading it on first use (the subclass's job)."""
        raise NotImplementedError

    async def stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """Generate in a worker thread, yielding text as the tokens arrive."""
        model = await self.loaded_model(request.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamItem | BaseException] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: StreamItem | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = loop.run_in_executor(None, _generate_blocking, model, request, cancel, put)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            cancel.set()
            # Wait for the thread to notice, so nothing keeps generating (and
            # the model's lock is free) once this stream is closed.
            # The worker reports its own errors through the queue.
            with contextlib.suppress(Exception):
                await asyncio.shield(worker)

    async def score(
        self, spec: ModelSpec, messages: Sequence[Message], continuation: str
    ) -> list[float]:
        """The log-probability of each token of ``continuation`` as the reply to ``messages``
        (:func:`~.logprobs.score_blocking`, in a worker thread under the model's lock)."""
        model = await self.loaded_model(spec)

        def blocking() -> list[float]:
            with model.lock:
                return score_blocking(model.llama, messages, continuation)

        try:
            return await asyncio.get_running_loop().run_in_executor(None, blocking)
        except MoALocalError:
            raise
        except Exception as exc:  # llama.cpp errors arrive as assorted exception types
            raise GenerationError(
                f"{spec.name}: scoring failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def _generate_twins_once(
        self,
        requests: Sequence[GenerateRequest],
        twins: dict[int, int],
        on_text: PieceCallback | None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """Generate each distinct request; a greedy twin gets its original's answer."""
        unique = [i for i in range(len(requests)) if i not in twins]

        def piece(position: int, text: str) -> None:
            if on_text is not None:
                on_text(unique[position], text)

        async for position, outcome in self.generate_many([requests[i] for i in unique], piece):
            original = unique[position]
            yield original, outcome
            copy = outcome
            if isinstance(outcome, Completion):
                # Nothing is computed for a twin: its whole prompt counts as
                # reused and no time passes.
                copy = replace(
                    outcome,
                    seconds=0.0,
                    reused_tokens=outcome.prompt_tokens,
                    drafted_tokens=0,
                    accepted_tokens=0,
                )
            for twin in (t for t, source in twins.items() if source == original):
                if on_text is not None and isinstance(copy, Completion):
                    on_text(twin, copy.text)
                yield twin, copy

    async def generate_many(
        self,
        requests: Sequence[GenerateRequest],
        on_text: PieceCallback | None = None,
    ) -> AsyncIterator[tuple[int, Completion | GenerationError]]:
        """Decode sampled requests for one model together; otherwise one after another.

        Greedy requests that repeat another exactly (same model, chat, length
        and stop strings) are generated once: greedy decoding is
        deterministic, so decoding the twin again would only spend time (and,
        with a different batch split, could break a near-tie the other way).

        Batching is for requests that sample (temperature above 0): a group of
        greedy requests goes one by one instead, because greedy decoding drafts
        from earlier sequences with prompt lookup, which copies a sibling's
        identical answer at the cost of one batch instead of decoding it again.
        """
        twins = greedy_twins(requests) if self.reuse else {}
        if twins:
            async for outcome in self._generate_twins_once(requests, twins, on_text):
                yield outcome
            return
        sampled = sum(1 for r in requests if r.temperature > 0)
        same_model = len({load_key(r.model) for r in requests}) == 1
        if not self.batch or sampled < 2 or not same_model:
            async for outcome in super().generate_many(requests, on_text):
                yield outcome
            return
        model = await self.loaded_model(requests[0].model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        cancel = threading.Event()

        def emit(index: int, item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (index, item))

        worker = loop.run_in_executor(None, _batch_blocking, model, requests, cancel, emit)
        waiting = set(range(len(requests)))
        not_batched = False
        try:
            while waiting:
                index, item = await queue.get()
                if isinstance(item, str):
                    if on_text is not None:
                        on_text(index, item)
                elif isinstance(item, (Completion, GenerationError)):
                    waiting.discard(index)
                    yield index, item
                elif item is _NOT_BATCHED:
                    not_batched = True
                elif item is _DONE:
                    break
                elif isinstance(item, BaseException):
                    error = GenerationError(
                        f"{requests[0].model.name}: {type(item).__name__}: {item}"
                    )
                    for left in sorted(waiting):
                        yield left, error
                    waiting.clear()
        finally:
            cancel.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(worker)
        if not waiting:
            return
        if not not_batched:  # the worker ended without an answer for these
            for left in sorted(waiting):
                yield left, GenerationError(f"{requests[left].model.name}: no result")
            return
        rest = sorted(waiting)
        pieces = None if on_text is None else (lambda i, text: on_text(rest[i], text))
        async for position, result in super().generate_many([requests[i] for i in rest], pieces):
            yield rest[position], result


def _use_threads(model: LoadedModel, threads: int | None) -> None:
    """Run on the CPU threads the scheduler granted (the caller holds the model's lock)."""
    if not threads or threads == model.threads or model.spec.n_threads:
        return  # nothing granted, nothing to change, or the user fixed n_threads
    try:
        _llama_cpp_module().llama_set_n_threads(model.llama.ctx, threads, threads)
    except (AttributeError, TypeError):  # an older llama-cpp-python: keep the load's threads
        return
    model.threads = threads


def _llama_cpp_module() -> Any:
    import llama_cpp

    return llama_cpp


class TokenRecorder:
    """The logits processor of a chat completion: records log-probabilities, ends on cue.

    llama-cpp-python calls it before every token is sampled, with the tokens
    evaluated so far and the raw logits (vocabulary order, before temperature
    and truncation). The last evaluated token is the one sampled at the call
    before, so its log-probability under the model is read from the logits
    kept from that call: each generated token gets the log-softmax value
    llama-cpp-python's own ``logprobs`` reports (which needs a model loaded
    with ``logits_all``; this costs one vocabulary-sized copy per token).

    It forces end-of-sequence once ``cancel`` is set (so a cancelled
    generation ends within one token: the chat API takes no stopping
    criteria), and at call ``max_tokens + 1``, which is requested one token
    longer than asked so that the last token's logits are seen too; the
    generation then ends as if by length (:attr:`capped`).
    """

    def __init__(
        self,
        cancel: threading.Event,
        eos: int,
        max_tokens: int,
        suppressed: Sequence[int] = (),
    ) -> None:
        self.cancel = cancel
        self.eos = eos
        self.max_tokens = max_tokens
        self.suppressed = list(suppressed)  # end-of-generation tokens, for ignore_eos
        self.calls = 0
        self.capped = False
        self.logprobs: list[float] = []
        self.first_call: float | None = None  # when the prompt had been prefilled
        self._previous: tuple[Any, float] | None = None  # last call's logits, log-sum-exp

    def __call__(self, tokens: Any, scores: Any) -> Any:
        if self.first_call is None:
            self.first_call = now()
        if self._previous is not None:
            logits, normalizer = self._previous
            self.logprobs.append(float(logits[int(tokens[-1])]) - normalizer)
        self.calls += 1
        if self.calls > self.max_tokens:
            self.capped = True
        if self.cancel.is_set() or self.capped:
            scores[:] = -float("inf")
            scores[self.eos] = 0.0
            self._previous = None
            return scores
        self._previous = (scores.copy(), log_sum_exp(scores))
        if self.suppressed:
            scores[self.suppressed] = -float("inf")
        return scores


# What the batch worker reports besides results: not batchable, and finished.
_NOT_BATCHED = object()
_DONE = object()


def _batch_blocking(
    model: LoadedModel,
    requests: Sequence[GenerateRequest],
    cancel: threading.Event,
    emit: Callable[[int, object], None],
) -> None:
    """Decode ``requests`` together under the model's lock (worker thread)."""
    try:
        with model.lock:
            if cancel.is_set():
                return
            _use_threads(model, requests[0].n_threads)
            try:
                batch = Batch(model.llama, requests, cancel, emit)
            except NotBatchable:
                emit(-1, _NOT_BATCHED)
                return
            batch.run()
            model.batches += 1
    except MoALocalError as exc:
        emit(-1, exc)
    except Exception as exc:  # llama.cpp errors arrive as assorted exception types
        emit(-1, exc)
    finally:
        emit(-1, _DONE)


def _generate_blocking(
    model: LoadedModel,
    request: GenerateRequest,
    cancel: threading.Event,
    put: Callable[[StreamItem | BaseException], None],
) -> None:
    """Run one chat completion under the model's lock (worker thread)."""
    with model.lock:
        if cancel.is_set():
            return
        llama = model.llama
        _use_threads(model, request.n_threads)
        started = now()
        pieces: list[str] = []
        tokens = 0
        finish_reason = "stop"
        limit = request.max_tokens or llama.n_ctx()
        suppressed = end_tokens(llama) if request.ignore_eos else ()
        recorder = TokenRecorder(cancel, llama.token_eos(), limit, suppressed)
        try:
            chunks = llama.create_chat_completion(
                messages=list(request.messages),
                temperature=request.temperature,
                top_p=request.top_p,
                max_tokens=limit + 1,  # one more call of the recorder: see TokenRecorder
                stop=list(request.stop) or None,
                seed=request.seed,
                stream=True,
                logits_processor=_llama_cpp_module().LogitsProcessorList([recorder]),
            )
            for chunk in chunks:
                if cancel.is_set():
                    finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    tokens += 1
                    pieces.append(text)
                    put(text)
                finish_reason = choice.get("finish_reason") or finish_reason
            chunks.close()
        except ValueError as exc:
            if "exceed context window" in str(exc):
                put(ContextOverflowError(f"{request.model.name}: {exc}"))
            else:
                put(GenerationError(f"{request.model.name}: {exc}"))
            return
        except Exception as exc:  # llama.cpp errors arrive as assorted exception types
            put(GenerationError(f"{request.model.name}: {type(exc).__name__}: {exc}"))
            return
        stats = llama.stats
        if recorder.capped and finish_reason == "stop":
            finish_reason = "length"
        put(
            Completion(
                text="".join(pieces),
                prompt_tokens=stats.prompt_tokens,
                # The recorder sees every token; the stream only those that printed.
                completion_tokens=max(tokens, len(recorder.logprobs)),
                seconds=now() - started,
                finish_reason=finish_reason,
                reused_tokens=stats.reused_tokens,
                drafted_tokens=stats.drafted_tokens,
                accepted_tokens=stats.accepted_tokens,
                token_logprobs=tuple(recorder.logprobs),
                prefill_seconds=None
                if recorder.first_call is None
                else recorder.first_call - started,
            )
        )
