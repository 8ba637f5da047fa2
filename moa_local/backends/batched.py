"""Several generations of one llama.cpp model decoded together, one batch per step.

The samples of a Self-MoA layer, and the agents of a refinement layer that
run on one model, are independent generations of the same weights. Run one
after another, every token of every sample reads all the weights again;
decoded together, each step evaluates one token of *every* sequence in one
``llama_decode`` call, so the weights are read once per step for all of
them. On a GPU that makes n samples cost about one; on this project's 2-core
CPU a step of three Qwen2.5-Coder 0.5B sequences costs about 2x one token
instead of 3x (``scripts/batch_speed.py`` measures it).

How: the model's context is created with several sequences in one unified
KV cache (``n_seq_max`` cells shared, not split, so its memory is what one
sequence of ``n_ctx`` tokens takes). The prefix that all prompts share is
evaluated once into sequence 0 (after restoring the best KV snapshot for
it) and copied to the others with ``llama_memory_seq_cp``, which shares the
cells instead of duplicating them; each sequence then evaluates the rest of
its own prompt, and from there every step decodes one token per sequence.
Each sequence has its own sampler chain, built exactly as llama-cpp-python
builds it for a chat completion and seeded the same way, so a sequence
samples what it would have sampled alone whenever the logits agree.

A sequence that ends leaves the batch at once: its KV state is saved as a
snapshot (for the next layer's continuation) and its cells are freed. When
the batch ends, only sequence 0 remains, and the context looks as if that
sequence had been generated alone. A batch that cannot hold every sequence's
prompt and answer in the context, or a chat format whose prompt cannot be
rendered here, is not batched: the caller generates one after another.
"""

from __future__ import annotations

import codecs
import inspect
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContextOverflowError, GenerationError, GenerationTimeout
from .base import Completion, GenerateRequest, now
from .logprobs import log_sum_exp
from .reuse import common_prefix, save_sequence

# Sequences one context may hold at once: the most samples decoded together.
MAX_SEQUENCES = 8


class NotBatchable(Exception):
    """These requests cannot be decoded together; generate them one after another."""


@dataclass
class _Sequence:
    """One request's state inside a batch."""

    index: int
    seq_id: int
    request: GenerateRequest
    prompt: list[int]
    stops: list[str]
    max_tokens: int
    deadline: float | None
    sampler: Any = None
    evaluated: list[int] = field(default_factory=list)  # tokens whose KV cells exist
    generated: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters of text already streamed
    prefilled: int = 0
    pending: int = -1  # the sampled token not yet evaluated
    pending_logprob: float = 0.0  # its log-probability under the model
    logprobs: list[float] = field(default_factory=list)  # of each generated token
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("ignore"))


def chat_formatter(llama: Any) -> Callable[..., Any] | None:
    """The chat formatter behind the model's chat handler, or None when there is none.

    llama-cpp-python builds each chat handler around a formatter (a template
    that turns messages into a prompt and its stop strings); the batch needs
    the prompt without running a completion, so it asks the formatter itself.
    """
    import llama_cpp.llama_chat_format as chat_format

    handler = llama.chat_handler or llama._chat_handlers.get(llama.chat_format)
    if handler is None:
        try:
            handler = chat_format.get_chat_completion_handler(llama.chat_format)
        except ValueError:
            return None
    try:
        found = inspect.getclosurevars(handler).nonlocals.get("chat_formatter")
    except TypeError:  # not a plain function (a handler object)
        return None
    return found if callable(found) else None


def render_prompt(
    llama: Any, formatter: Callable[..., Any], request: GenerateRequest
) -> tuple[list[int], list[str]]:
    """The prompt tokens and stop strings of ``request``, as its chat completion would use them."""
    result = formatter(messages=list(request.messages))
    tokens = llama.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    stops = list(request.stop)
    if result.stop is not None:
        stops += result.stop if isinstance(result.stop, list) else [result.stop]
    return tokens, [s for s in stops if s]


class Batch:
    """Decodes ``requests`` together on one loaded ``ReusingLlama`` (the caller holds its lock).

    ``emit(index, item)`` receives each request's text pieces, then its
    :class:`Completion` or :class:`GenerationError`, as they come.
    """

    def __init__(
        self,
        llama: Any,
        requests: Sequence[GenerateRequest],
        cancel: threading.Event,
        emit: Callable[[int, object], None],
    ) -> None:
        self.llama = llama
        self.cancel = cancel
        self.emit = emit
        self.low = _low()
        self.memory = self.low.llama_get_memory(llama.ctx)
        if len(requests) > self.low.llama_n_seq_max(llama.ctx):
            raise NotBatchable(f"{len(requests)} sequences; the context holds fewer")
        formatter = chat_formatter(llama)
        if formatter is None:
            raise NotBatchable("the chat format cannot be rendered outside a completion")
        n_ctx = llama.n_ctx()
        self.started = started = now()
        self.prefill_seconds: float | None = None
        self.sequences: list[_Sequence] = []
        for index, request in enumerate(requests):
            tokens, stops = render_prompt(llama, formatter, request)
            if len(tokens) >= n_ctx:
                emit(
                    index,
                    ContextOverflowError(
                        f"{request.model.name}: Requested tokens ({len(tokens)}) exceed "
                        f"context window of {n_ctx}"
                    ),
                )
                continue
            max_tokens = min(request.max_tokens or n_ctx, n_ctx - len(tokens))
            deadline = started + request.timeout if request.timeout else None
            self.sequences.append(
                _Sequence(index, len(self.sequences), request, tokens, stops, max_tokens, deadline)
            )
        if len(self.sequences) < 2:
            raise NotBatchable("fewer than two sequences")
        self.end_tokens = end_tokens(llama) if any(r.ignore_eos for r in requests) else []
        prompts = [s.prompt for s in self.sequences]
        # Every sequence evaluates at least its own last prompt token, for its logits.
        self.shared = min(
            min(common_prefix(prompts[0], p) for p in prompts[1:]),
            min(len(p) for p in prompts) - 1,
        )
        cells = self.shared + sum(
            len(s.prompt) - self.shared + s.max_tokens for s in self.sequences
        )
        if cells > n_ctx:
            raise NotBatchable(f"{cells} KV cells needed, the context has {n_ctx}")

    # -- running ---------------------------------------------------------------

    def run(self) -> None:
        """Prefill, then decode every sequence to its end; emit as they finish."""
        llama = self.llama
        batch = self.low.llama_batch_init(max(llama.n_batch, len(self.sequences)), 0, 1)
        try:
            self._prefill(batch)
            self.prefill_seconds = now() - self.started
            while not self.cancel.is_set():
                live = [s for s in self.sequences if s.pending >= 0]
                for sequence in live:
                    self._take(sequence, sequence.pending)
                live = [s for s in self.sequences if s.pending >= 0]
                if not live:
                    break
                self._decode(batch, [(s, s.pending, len(s.evaluated), True) for s in live])
        except RuntimeError as exc:
            for sequence in self.sequences:
                if sequence.pending >= 0:
                    sequence.pending = -1
                    self.emit(
                        sequence.index, GenerationError(f"{sequence.request.model.name}: {exc}")
                    )
            self._reset_context()
            return
        finally:
            self.low.llama_batch_free(batch)
        self._finish_context()

    def _prefill(self, batch: Any) -> None:
        llama = self.llama
        first = self.sequences[0]
        shared = first.prompt[: self.shared]
        for seq_id in range(1, self.low.llama_n_seq_max(llama.ctx)):
            self.low.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        if llama.snapshots is not None:
            llama._restore_best(shared)
        keep = min(common_prefix(llama.input_ids[: llama.n_tokens], shared), self.shared)
        llama._ctx.kv_cache_seq_rm(0, keep, -1)
        llama.n_tokens = keep
        if keep < self.shared:
            llama.eval(shared[keep:])
        first.prefilled = self.shared - keep
        for sequence in self.sequences:
            sequence.evaluated = list(shared)
            if sequence.seq_id:
                self.low.llama_memory_seq_cp(self.memory, 0, sequence.seq_id, 0, self.shared)
            sequence.sampler = self._sampler(sequence.request)
        # Each prompt's own part, several sequences per llama_decode where they fit.
        pending = [
            (s, token, self.shared + offset, offset == len(s.prompt) - self.shared - 1)
            for s in self.sequences
            for offset, token in enumerate(s.prompt[self.shared :])
        ]
        for sequence in self.sequences:
            sequence.prefilled += len(sequence.prompt) - self.shared
        step = llama.n_batch
        for start in range(0, len(pending), step):
            self._decode(batch, pending[start : start + step])

    def _decode(self, batch: Any, items: Sequence[tuple[_Sequence, int, int, bool]]) -> None:
        """Evaluate (sequence, token, position, wants logits) items; sample where asked."""
        batch.n_tokens = len(items)
        for row, (sequence, token, position, logits) in enumerate(items):
            batch.token[row] = token
            batch.pos[row] = position
            batch.n_seq_id[row] = 1
            batch.seq_id[row][0] = sequence.seq_id
            batch.logits[row] = logits
        code = self.low.llama_decode(self.llama.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        for row, (sequence, token, _position, logits) in enumerate(items):
            sequence.evaluated.append(token)
            if logits:
                row_logits = self._logits(row)
                normalizer = log_sum_exp(row_logits)
                if sequence.request.ignore_eos:
                    row_logits[self.end_tokens] = -float("inf")
                sequence.pending = sequence.sampler.sample(self.llama._ctx, row)
                sequence.pending_logprob = float(row_logits[sequence.pending]) - normalizer

    def _logits(self, row: int) -> Any:
        """The raw logits of batch row ``row``, as a writable view of the context's."""
        import numpy as np

        pointer = self.low.llama_get_logits_ith(self.llama.ctx, row)
        return np.ctypeslib.as_array(pointer, shape=(self.llama.n_vocab(),))

    def _sampler(self, request: GenerateRequest) -> Any:
        """The sampler chain a chat completion of ``request`` would use, seeded the same way."""
        llama = self.llama
        if request.seed is not None:
            llama.set_seed(request.seed)
        else:
            llama.set_seed(random.Random(llama._seed).randint(0, 2**32))
        return llama._init_sampler(
            top_k=40,
            top_p=request.top_p,
            min_p=0.05,
            typical_p=1.0,
            temp=request.temperature,
            repeat_penalty=1.0,
        )

    def _take(self, sequence: _Sequence, token: int) -> None:
        """Record a sampled token: stream its text, or end the sequence."""
        llama = self.llama
        if self.low.llama_vocab_is_eog(llama._model.vocab, token):
            self._end(sequence, "stop")
            return
        sequence.generated.append(token)
        sequence.logprobs.append(sequence.pending_logprob)
        sequence.text += sequence.decoder.decode(llama._model.detokenize([token]))
        for stop in sequence.stops:
            found = sequence.text.find(stop, max(0, sequence.sent - len(stop)))
            if found >= 0:
                sequence.text = sequence.text[:found]
                self._end(sequence, "stop")
                return
        if len(sequence.generated) >= sequence.max_tokens:
            self._end(sequence, "length")
            return
        if sequence.deadline is not None and now() > sequence.deadline:
            self._end(sequence, "timeout")
            return
        # Hold back a tail that may be the start of a stop string.
        held = max((_overlap(sequence.text, stop) for stop in sequence.stops), default=0)
        ready = len(sequence.text) - held
        if ready > sequence.sent:
            self.emit(sequence.index, sequence.text[sequence.sent : ready])
            sequence.sent = ready

    def _end(self, sequence: _Sequence, reason: str) -> None:
        sequence.pending = -1
        if reason == "timeout":
            request = sequence.request
            self.emit(
                sequence.index,
                GenerationTimeout(f"{request.model.label}: no answer within {request.timeout:g} s"),
            )
        else:
            sequence.text += sequence.decoder.decode(b"", final=True)
            if len(sequence.text) > sequence.sent:
                self.emit(sequence.index, sequence.text[sequence.sent :])
            self.emit(
                sequence.index,
                Completion(
                    text=sequence.text,
                    prompt_tokens=len(sequence.prompt),
                    completion_tokens=len(sequence.generated),
                    seconds=now() - self.started,
                    finish_reason=reason,
                    reused_tokens=len(sequence.prompt) - sequence.prefilled,
                    token_logprobs=tuple(sequence.logprobs),
                    prefill_seconds=self.prefill_seconds,
                ),
            )
        llama = self.llama
        if llama.snapshots is not None:
            save_sequence(llama, sequence.seq_id, sequence.evaluated)
        if sequence.seq_id:
            self.low.llama_memory_seq_rm(self.memory, sequence.seq_id, -1, -1)

    # -- leaving the context as one sequence -------------------------------------

    def _finish_context(self) -> None:
        """Keep sequence 0 as the context's live sequence; free every other one."""
        llama = self.llama
        for sequence in self.sequences[1:]:
            self.low.llama_memory_seq_rm(self.memory, sequence.seq_id, -1, -1)
        kept = self.sequences[0].evaluated
        llama.input_ids[: len(kept)] = kept
        llama.n_tokens = len(kept)
        llama._requires_eval = True  # the logits are not those of sequence 0's last token

    def _reset_context(self) -> None:
        self.llama._ctx.kv_cache_clear()
        self.llama.n_tokens = 0
        self.llama._requires_eval = True


def end_tokens(llama: Any) -> list[int]:
    """The tokens that end a generation in ``llama``'s vocabulary (cached on the model)."""
    cached = getattr(llama, "_moa_end_tokens", None)
    if cached is None:
        low, vocab = _low(), llama._model.vocab
        cached = [t for t in range(llama.n_vocab()) if low.llama_vocab_is_eog(vocab, t)]
        llama._moa_end_tokens = cached
    return cached


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that begins ``stop``."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0


def _low() -> Any:
    from llama_cpp import llama_cpp as low

    return low
