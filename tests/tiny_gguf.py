"""Write a tiny, random-weight GGUF model that llama.cpp can load.

The test suite needs a real model file for ``llama-cpp-python`` without
downloading anything, so :func:`write_tiny_gguf` builds one from scratch with
the ``gguf`` package (0.19.x) in a few milliseconds.  Its output is gibberish,
but it loads, tokenizes, generates and streams exactly like a real model, and
the same ``seed`` always gives the same bytes on disk.

Layout (architecture ``llama``, all tensors f32, 437 KB on disk):

* hyper-parameters: 2 layers, ``n_embd`` 64, 4 query heads and 2 KV heads
  (grouped-query attention, head dim 16), ``n_ff`` 128, RMS-norm eps 1e-5,
  RoPE over the full head dim with base 10000, ``context_length`` as given;
* tokenizer: ``tokenizer.ggml.model = "llama"`` (SentencePiece style) with a
  259-token byte-level vocabulary: ``<unk>`` (0), ``<s>`` (1, bos),
  ``</s>`` (2, eos), then ``<0x00>`` .. ``<0xFF>`` as BYTE tokens, so every
  input falls back to one token per UTF-8 byte;
* tensors: ``token_embd``, ``output_norm``, ``output`` and, per layer ``i``,
  ``blk.{i}.attn_norm``, ``attn_q``, ``attn_k``, ``attn_v``,
  ``attn_output``, ``ffn_norm``, ``ffn_gate``, ``ffn_up``, ``ffn_down``;
  matrices are ``N(0, 0.02**2)`` from ``numpy.random.default_rng(seed)``,
  norm weights are ones;
* ``tokenizer.chat_template`` is :data:`CHATML_TEMPLATE` unless
  ``chat_template=None``, in which case the key is omitted altogether.

Pitfalls:

* numpy shapes are the reverse of ggml's ``ne`` order: a ggml
  ``[n_embd, n_vocab]`` embedding is a numpy ``(n_vocab, n_embd)`` array,
  ``ffn_down`` (ggml ``[n_ff, n_embd]``) is numpy ``(n_embd, n_ff)``, and the
  K/V projections are numpy ``(n_head_kv * head_dim, n_embd)``.  A wrong
  orientation is only caught when llama.cpp loads the file.
* Norm weights are 1-D and stay f32 even when matrices are converted to f16
  (``convert_hf_to_gguf.py`` does the same); ``general.file_type`` must
  describe the matrices.
* ``<|im_start|>`` / ``<|im_end|>`` are not in the vocabulary: the ChatML
  markers are tokenized byte by byte.  That is fine for tests, but it means
  generation only stops on ``</s>`` or ``max_tokens``.
* Random weights produce random bytes, which are often not valid UTF-8;
  llama-cpp-python decodes with ``errors="ignore"``, so completions may be
  shorter than ``max_tokens`` characters, or even empty strings.  Streaming
  decodes chunk by chunk and drops characters split across tokens, so the
  streamed text need not equal the non-streamed text for the same seed.
* The writer must be driven in order: header, key/values, tensors, close.
"""

from __future__ import annotations

import pathlib

import gguf
import numpy as np

__all__ = ["CHATML_TEMPLATE", "write_tiny_gguf"]

#: A ChatML chat template, as Hugging Face tokenizer configs spell it.  The
#: ``\n`` escapes are Jinja string-literal escapes, hence the raw string.
CHATML_TEMPLATE: str = (
    r"{% for message in messages %}"
    r"{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    r"{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

ARCH = "llama"
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 128
RMS_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0
WEIGHT_STD = 0.02

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
N_VOCAB = 3 + 256


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """Return the token texts, scores and types of the byte-level vocabulary."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * N_VOCAB
    types = [
        int(gguf.TokenType.UNKNOWN),
        int(gguf.TokenType.CONTROL),
        int(gguf.TokenType.CONTROL),
    ] + [int(gguf.TokenType.BYTE)] * 256
    return tokens, scores, types


def _tensor_name(kind: gguf.MODEL_TENSOR, bid: int | None = None) -> str:
    """Return the canonical GGUF tensor name, e.g. ``blk.0.attn_q.weight``."""
    base = gguf.TENSOR_NAMES[kind]
    return (base.format(bid=bid) if bid is not None else base) + ".weight"


def write_tiny_gguf(
    path: pathlib.Path,
    *,
    chat_template: str | None = CHATML_TEMPLATE,
    context_length: int = 512,
    seed: int = 0,
) -> pathlib.Path:
    """Write a tiny random-weight ``llama`` GGUF model to ``path``.

    Args:
        path: Destination file; its parent directory must exist.
        chat_template: Jinja chat template stored as ``tokenizer.chat_template``;
            ``None`` leaves the key out entirely.
        context_length: Value of ``llama.context_length`` (training context).
        seed: Seed for the weight RNG; equal seeds give byte-identical files.

    Returns:
        ``path``, for convenience.
    """
    path = pathlib.Path(path)
    rng = np.random.default_rng(seed)

    def matrix(rows: int, cols: int) -> np.ndarray:
        # numpy (rows, cols) == ggml ne [cols, rows]: rows are output features.
        return rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(WEIGHT_STD)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer = gguf.GGUFWriter(path, ARCH)
    try:
        writer.add_name("moa-local tiny test model")
        writer.add_type("model")
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

        writer.add_vocab_size(N_VOCAB)
        writer.add_context_length(context_length)
        writer.add_embedding_length(N_EMBD)
        writer.add_block_count(N_LAYER)
        writer.add_feed_forward_length(N_FF)
        writer.add_head_count(N_HEAD)
        writer.add_head_count_kv(N_HEAD_KV)
        writer.add_rope_dimension_count(HEAD_DIM)
        writer.add_rope_freq_base(ROPE_FREQ_BASE)
        writer.add_layer_norm_rms_eps(RMS_EPS)

        tokens, scores, types = _vocab()
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(UNK_ID)
        writer.add_bos_token_id(BOS_ID)
        writer.add_eos_token_id(EOS_ID)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(False)
        if chat_template is not None:
            writer.add_chat_template(chat_template)

        t = gguf.MODEL_TENSOR
        writer.add_tensor(_tensor_name(t.TOKEN_EMBD), matrix(N_VOCAB, N_EMBD))
        for i in range(N_LAYER):
            writer.add_tensor(_tensor_name(t.ATTN_NORM, i), ones(N_EMBD))
            writer.add_tensor(_tensor_name(t.ATTN_Q, i), matrix(N_HEAD * HEAD_DIM, N_EMBD))
            writer.add_tensor(_tensor_name(t.ATTN_K, i), matrix(N_HEAD_KV * HEAD_DIM, N_EMBD))
            writer.add_tensor(_tensor_name(t.ATTN_V, i), matrix(N_HEAD_KV * HEAD_DIM, N_EMBD))
            writer.add_tensor(_tensor_name(t.ATTN_OUT, i), matrix(N_EMBD, N_HEAD * HEAD_DIM))
            writer.add_tensor(_tensor_name(t.FFN_NORM, i), ones(N_EMBD))
            writer.add_tensor(_tensor_name(t.FFN_GATE, i), matrix(N_FF, N_EMBD))
            writer.add_tensor(_tensor_name(t.FFN_UP, i), matrix(N_FF, N_EMBD))
            writer.add_tensor(_tensor_name(t.FFN_DOWN, i), matrix(N_EMBD, N_FF))
        writer.add_tensor(_tensor_name(t.OUTPUT_NORM), ones(N_EMBD))
        writer.add_tensor(_tensor_name(t.OUTPUT), matrix(N_VOCAB, N_EMBD))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
