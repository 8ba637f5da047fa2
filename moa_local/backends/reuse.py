"""Work one llama.cpp model need not do twice: KV snapshots and prompt-lookup decoding.

A mixture sends one model many prompts that share long prefixes: every
sample of a Self-MoA layer reads the same question, every agent of a
refinement layer the same references, and an agent that continues its own
conversation re-reads its previous answer. llama-cpp-python already reuses
the longest prefix that the *current* context shares with a new prompt;
this module adds two things on top of it:

- **KV snapshots.** After each generation, the KV cache of the sequence
  (prompt and answer) is copied to host memory with llama.cpp's per-sequence
  state API (``llama_state_seq_get_data``). Before the next generation, the
  snapshot that shares the longest token prefix with the new prompt is put
  back (``llama_state_seq_set_data``) when it beats what the context holds,
  so agents that take turns on one model each find their own conversation
  again instead of recomputing it. Saving and restoring copies about
  12-28 KiB per token for the starter models (a few milliseconds), and
  between generations the context keeps one sequence, so decoding never
  attends over other agents' cells. (Samples decoded together in one batch
  share the context for the batch's duration: :mod:`.batched`.)
  The store is bounded in bytes and the scheduler counts that bound as the
  model's memory.
- **Prompt-lookup decoding** (n-gram speculation) for greedy requests: the
  last few tokens are looked up in the prompt, the answer so far and the
  snapshots' token sequences (earlier prompts and answers of this model);
  the tokens that followed there are proposed as a draft and checked in one
  batch. Every token the model would not have picked itself is thrown away,
  so the output is the greedy output; on a CPU a batch of a few tokens costs
  about as much as one, which is what makes this pay.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A restore must win at least this many tokens over the live context to be
# worth the copy.
MIN_RESTORE_GAIN = 16
# Shortest and longest n-gram looked up, and the draft length: it starts at
# FIRST_DRAFT, doubles after a draft the model confirmed whole, and shrinks to
# what was confirmed after a miss. On a 2-core CPU one token costs 37 ms and
# a batch of 8 costs 83 ms (Qwen2.5 0.5B), so long drafts must be earned.
MIN_NGRAM = 3
MAX_NGRAM = 5
FIRST_DRAFT = 4
MAX_DRAFT = 16


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    left = np.asarray(a[:n])
    right = np.asarray(b[:n])
    differ = np.flatnonzero(left != right)
    return int(differ[0]) if differ.size else n


@dataclass(frozen=True)
class Snapshot:
    """The KV cache of one sequence and the tokens it holds."""

    tokens: tuple[int, ...]
    state: bytes


class SnapshotStore:
    """Snapshots of one model's sequences, least recently used first out, bounded in bytes."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._snapshots: OrderedDict[tuple[int, ...], Snapshot] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        """Bytes the stored states take."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._snapshots)

    def sequences(self) -> list[tuple[int, ...]]:
        """Token sequences of the snapshots, most recent first (for drafting)."""
        return list(reversed(self._snapshots))

    def best(self, tokens: Sequence[int]) -> tuple[Snapshot | None, int]:
        """The snapshot sharing the longest prefix with ``tokens``, and that length."""
        found: Snapshot | None = None
        longest = 0
        for key, snapshot in self._snapshots.items():
            length = common_prefix(key, tokens)
            if length > longest:
                found, longest = snapshot, length
        if found is not None:
            self._snapshots.move_to_end(found.tokens)
        return found, longest

    def add(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot``; drop those it extends, then the oldest beyond capacity."""
        if len(snapshot.state) > self.capacity_bytes:
            return
        for key in list(self._snapshots):
            if len(key) <= len(snapshot.tokens) and snapshot.tokens[: len(key)] == key:
                self._bytes -= len(self._snapshots.pop(key).state)
        self._snapshots[snapshot.tokens] = snapshot
        self._bytes += len(snapshot.state)
        while self._bytes > self.capacity_bytes and self._snapshots:
            _, oldest = self._snapshots.popitem(last=False)
            self._bytes -= len(oldest.state)

    def clear(self) -> None:
        """Forget every snapshot."""
        self._snapshots.clear()
        self._bytes = 0


class NgramDrafter:
    """Drafts the tokens that followed the latest earlier occurrence of the last n-gram.

    ``history`` (the prompt, then each accepted token) is searched first, most
    recent occurrence first, then ``sources`` (earlier sequences of the model).
    """

    def __init__(self, history: Sequence[int], sources: Sequence[Sequence[int]] = ()) -> None:
        self.history: list[int] = list(history)
        self._index: dict[tuple[int, ...], int] = {}
        for end in range(1, len(self.history)):
            self._index_ending_at(end)
        self._sources: list[tuple[tuple[int, ...], dict[tuple[int, ...], int]]] = []
        for source in sources:
            tokens = tuple(source)
            index: dict[tuple[int, ...], int] = {}
            for n in range(MIN_NGRAM, MAX_NGRAM + 1):
                for start in range(len(tokens) - n, -1, -1):
                    index.setdefault(tokens[start : start + n], start + n)
            self._sources.append((tokens, index))

    def _index_ending_at(self, end: int) -> None:
        """Index the n-grams that end just before position ``end`` (their continuation)."""
        for n in range(MIN_NGRAM, MAX_NGRAM + 1):
            if end - n >= 0:
                self._index[tuple(self.history[end - n : end])] = end

    def append(self, token: int) -> None:
        """Record an accepted token."""
        self.history.append(token)
        # The n-grams ending at the previous last token now have a continuation.
        self._index_ending_at(len(self.history) - 1)

    def draft(self, limit: int) -> list[int]:
        """Up to ``limit`` tokens predicted to come next (possibly none)."""
        if limit <= 0:
            return []
        for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
            if len(self.history) < n:
                continue
            key = tuple(self.history[-n:])
            position = self._index.get(key)
            if position is not None and position < len(self.history):
                return self.history[position : position + limit]
            for tokens, index in self._sources:
                position = index.get(key)
                if position is not None and position < len(tokens):
                    return list(tokens[position : position + limit])
        return []


@dataclass
class GenerationStats:
    """What one generation evaluated: reused, prefilled and drafted tokens."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    restored: bool = False
    drafted_tokens: int = 0
    accepted_tokens: int = 0


def save_sequence(llama: Any, seq_id: int, tokens: Sequence[int]) -> None:
    """Keep the KV state of sequence ``seq_id`` (holding ``tokens``) in ``llama.snapshots``."""
    from llama_cpp import llama_cpp as low

    if llama.snapshots is None or len(tokens) < MIN_RESTORE_GAIN:
        return
    size = low.llama_state_seq_get_size(llama.ctx, seq_id)
    buffer = (ctypes.c_uint8 * size)()
    written = low.llama_state_seq_get_data(llama.ctx, buffer, size, seq_id)
    if written <= 0:
        return
    llama.snapshots.add(Snapshot(tuple(int(t) for t in tokens), bytes(buffer)[:written]))


_classes: dict[int, type] = {}


def reusing_llama_class(llama_cpp: Any) -> type:
    """A ``Llama`` subclass with snapshots and prompt lookup (built once per module)."""
    cached = _classes.get(id(llama_cpp))
    if cached is not None:
        return cached
    low = llama_cpp.llama_cpp

    class ReusingLlama(llama_cpp.Llama):
        """``Llama`` that restores KV snapshots and drafts greedy tokens from n-grams.

        ``snapshots`` (None: off), ``lookup`` and ``fresh_each_call`` (start every
        generation from an empty context: the naive baseline) are set by the
        backend; ``stats`` describes the last generation.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.snapshots: SnapshotStore | None = None
            self.lookup = False
            self.fresh_each_call = False
            self.stats = GenerationStats()

        # -- snapshots ---------------------------------------------------------

        def _restore_best(self, tokens: Sequence[int]) -> None:
            assert self.snapshots is not None
            live = common_prefix(self.input_ids[: self.n_tokens], tokens)  # type: ignore[has-type]
            snapshot, length = self.snapshots.best(tokens)
            if snapshot is None or length < live + MIN_RESTORE_GAIN:
                return
            buffer = (ctypes.c_uint8 * len(snapshot.state)).from_buffer_copy(snapshot.state)
            self._ctx.kv_cache_clear()
            read = low.llama_state_seq_set_data(self._ctx.ctx, buffer, len(snapshot.state), 0)
            if read != len(snapshot.state):  # refused: start over from nothing
                self._ctx.kv_cache_clear()
                self.n_tokens = 0
                return
            count = len(snapshot.tokens)
            self.input_ids[:count] = snapshot.tokens
            self.n_tokens = count
            self._requires_eval = True  # the logits are not those of the restored state
            self.stats.restored = True

        def _save_snapshot(self) -> None:
            save_sequence(self, 0, self.input_ids[: int(self.n_tokens)])

        # -- generation --------------------------------------------------------

        def generate(self, tokens: Sequence[int], **kwargs: Any) -> Generator[int, Any, None]:
            tokens = list(tokens)
            self.stats = GenerationStats(prompt_tokens=len(tokens))
            if self.fresh_each_call:
                self.reset()
                self._ctx.kv_cache_clear()
            elif self.snapshots is not None:
                self._restore_best(tokens)
            # What llama-cpp-python's own prefix match will keep (it replays
            # the last prompt token when the whole prompt is cached).
            self.stats.reused_tokens = min(
                common_prefix(self.input_ids[: self.n_tokens], tokens), max(0, len(tokens) - 1)
            )
            greedy = kwargs.get("temp", 0.8) == 0.0
            if self.lookup and greedy and kwargs.get("grammar") is None:
                inner = self._lookup_generate(tokens, kwargs.get("logits_processor"))
            else:
                inner = super().generate(tokens, **kwargs)
            try:
                yield from inner
            finally:
                inner.close()
                if self.snapshots is not None and not self.fresh_each_call:
                    self._save_snapshot()

        def _lookup_generate(
            self, tokens: list[int], logits_processor: Any
        ) -> Generator[int, Any, None]:
            """Greedy decoding that verifies n-gram drafts in one batch per step."""
            keep = self.stats.reused_tokens
            self._ctx.kv_cache_seq_rm(-1, keep, -1)
            self.n_tokens = keep
            if len(tokens) - keep > 1:
                self.eval(tokens[keep:-1])  # the prompt, but its last token
            pending = tokens[-1]
            sources = self.snapshots.sequences() if self.snapshots is not None else []
            drafter = NgramDrafter(tokens, sources)
            limit = min(FIRST_DRAFT, MAX_DRAFT)
            n_vocab = self._n_vocab
            try:
                while True:
                    room = self._n_ctx - self.n_tokens - 1
                    if room <= 0:
                        return
                    draft = drafter.draft(min(limit, room))
                    batch = [pending, *draft]
                    start = self.n_tokens
                    self._batch.set_batch(batch=batch, n_past=start, logits_all=True)
                    self._ctx.decode(self._batch)
                    self.input_ids[start : start + len(batch)] = batch
                    self.n_tokens = start + len(batch)
                    logits = np.ctypeslib.as_array(
                        self._ctx.get_logits(), shape=(len(batch), n_vocab)
                    )
                    self.stats.drafted_tokens += len(draft)
                    accepted = 0
                    for row in range(len(batch)):
                        scores = logits[row]
                        if logits_processor is not None:
                            scores = scores.copy()
                            for process in logits_processor:
                                scores = process(self.input_ids[: start + row + 1], scores)
                        token = int(np.argmax(scores))
                        # Until the consumer asks for the next token, only the
                        # verified part of the batch counts as evaluated.
                        self.n_tokens = start + row + 1
                        yield token
                        drafter.append(token)
                        if row < len(draft) and draft[row] == token:
                            accepted += 1
                            continue
                        pending = token
                        break
                    self.stats.accepted_tokens += accepted
                    if draft and accepted == len(draft):
                        limit = min(MAX_DRAFT, 2 * limit)
                    elif draft:
                        limit = max(1, accepted)
                    self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
            finally:
                self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
                self._requires_eval = True

    _classes[id(llama_cpp)] = ReusingLlama
    return ReusingLlama
