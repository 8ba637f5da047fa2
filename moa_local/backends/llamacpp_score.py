"""Scoring a given reply with a loaded llama.cpp model: the log-probability of each token.

:func:`score_blocking` reads the log-probabilities of a text the model did
not necessarily write, as the assistant's reply to a chat: one prefill of
the text after the chat's prompt, which reuses the KV cells of the prefix
the context already holds (the chat itself, when one question's candidates
are scored one after another), with logits kept only for the text's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ContextOverflowError, GenerationError
from .base import Message
from .batched import chat_formatter
from .logprobs import log_sum_exp
from .reuse import common_prefix

# Continuation tokens evaluated per llama_decode when scoring: each needs a
# vocabulary-sized row of logits (about 0.6 MB for Qwen2.5's 151k tokens).
SCORE_CHUNK = 64


def score_blocking(llama: Any, messages: Sequence[Message], continuation: str) -> list[float]:
    """The log-probability of each token of ``continuation`` as the reply to ``messages``.

    Runs in a worker thread; the caller holds the model's lock. The context
    is left holding the chat and the continuation (but its last token), so
    the next score of the same chat prefills only its own continuation.
    """
    formatter = chat_formatter(llama)
    if formatter is None:
        raise GenerationError("this model's chat format cannot be rendered outside a completion")
    rendered = formatter(messages=list(messages))
    prompt = llama.tokenize(
        rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
    )
    continued = llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
    if not continued:
        return []
    tokens = [*prompt, *continued]
    if len(tokens) > llama.n_ctx():
        raise ContextOverflowError(
            f"Requested tokens ({len(tokens)}) exceed context window of {llama.n_ctx()}"
        )
    if llama.snapshots is not None:
        llama._restore_best(tokens)
    keep = min(common_prefix(llama.input_ids[: llama.n_tokens], tokens), len(prompt) - 1)
    llama._ctx.kv_cache_seq_rm(-1, keep, -1)
    llama.n_tokens = keep
    if keep < len(prompt) - 1:
        llama.eval(prompt[keep:-1])
    n_vocab = llama.n_vocab()
    first = len(prompt) - 1  # the position whose logits predict the first continuation token
    logprobs: list[float] = []
    for start in range(0, len(continued), SCORE_CHUNK):
        batch = tokens[first + start : first + min(start + SCORE_CHUNK, len(continued))]
        position = first + start
        llama._batch.set_batch(batch=batch, n_past=position, logits_all=True)
        llama._ctx.decode(llama._batch)
        llama.input_ids[position : position + len(batch)] = batch
        llama.n_tokens = position + len(batch)
        rows = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(batch), n_vocab))
        for row, following in enumerate(tokens[position + 1 : position + 1 + len(batch)]):
            logprobs.append(float(rows[row][following]) - log_sum_exp(rows[row]))
    llama._requires_eval = True  # the logits held are not those of the last token
    if llama.snapshots is not None:
        llama._save_snapshot()
    return logprobs
