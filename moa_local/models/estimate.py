"""How much memory a model will take, estimated before it is loaded.

For a GGUF run by llama.cpp the footprint has three parts:

- **weights**: the tensor table's bytes (elements / block size x block bytes
  for each quantization type);
- **KV cache**: for every layer, (key_length + value_length) x n_kv_heads x
  2 bytes (f16) per token of context, times the number of parallel sequences.
  Sliding-window layers (Gemma 2/3, Cohere 2) only keep window + batch tokens,
  because moa-local loads them with ``swa_full=False``;
- **compute and runtime**: llama.cpp's compute buffer, output buffer and
  vocabulary, fitted on the starter models measured on a 2-core x86 CPU
  (llama-cpp-python 0.3.36, ``use_mmap=False``, n_ubatch 512):
  9 MiB + 258 B per vocabulary entry + 1,800 B per feed-forward unit.

Measured against what a load really took (process RSS delta), this is within
about 10 % for the four catalog models at 4k and 8k contexts; the table is in
README's memory section and ``scripts/bench_scheduler.py`` re-measures it.

Placement decides which budget a model draws on: with GPU offload, the
offloaded share of weights and KV cache (``n_gpu_layers`` / block count) goes
to the GPU, the rest and the compute overhead to the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .gguf_meta import GGUFMetadata

MIB = 1 << 20
N_UBATCH = 512
_KV_CACHE_BYTES = 2  # f16 keys and values
_COMPUTE_FIXED = 9 * MIB
_COMPUTE_PER_VOCAB = 258
_COMPUTE_PER_FF = 1800

# Architectures whose sliding-window layers follow a fixed pattern: every
# Nth layer (counting from 1) is a full-attention layer, the others use the
# window. Taken from llama.cpp's model loader.
SWA_PATTERNS: dict[str, int] = {"gemma2": 2, "gemma3": 6, "cohere2": 4}

# ggml type -> (block size, bytes per block), for the types GGUF files carry.
# Kept here so that estimates do not need the gguf package's numpy import.
_GGML_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}


@dataclass(frozen=True)
class ModelShape:
    """The architecture facts an estimate needs."""

    weight_bytes: int
    n_layers: int
    kv_bytes_per_token_per_layer: int  # (k_len + v_len) x n_kv_heads x 2 bytes
    n_vocab: int
    n_ff: int
    sliding_window: int = 0
    swa_pattern: int = 0  # every Nth layer is full attention; 0 = no sliding window

    def kv_bytes(self, n_ctx: int, n_seq: int = 1) -> int:
        """KV cache bytes for ``n_ctx`` tokens of context and ``n_seq`` sequences."""
        full_layers = self.n_layers
        swa_layers = 0
        if self.sliding_window and self.swa_pattern:
            full_layers = self.n_layers // self.swa_pattern
            swa_layers = self.n_layers - full_layers
        swa_tokens = min(n_ctx, _pad(self.sliding_window * n_seq + N_UBATCH, 256))
        per_layer = self.kv_bytes_per_token_per_layer
        return per_layer * (full_layers * n_ctx + swa_layers * swa_tokens)

    def compute_bytes(self) -> int:
        """Compute buffer, output buffer and vocabulary (fitted; see the module docstring)."""
        return _COMPUTE_FIXED + _COMPUTE_PER_VOCAB * self.n_vocab + _COMPUTE_PER_FF * self.n_ff


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a model needs, per device it draws on."""

    weights: int
    kv_cache: int
    compute: int
    per_device: dict[str, int] = field(default_factory=dict)
    snapshots: int = 0  # host memory for KV snapshots of finished sequences

    @property
    def total(self) -> int:
        """All parts together."""
        return self.weights + self.kv_cache + self.compute + self.snapshots

    @property
    def total_mb(self) -> float:
        """``total`` in MiB."""
        return self.total / MIB


NO_MEMORY = MemoryEstimate(0, 0, 0, {})


def _pad(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tensor_bytes(ggml_type: int, n_elements: int) -> int:
    """Bytes of a tensor of ``n_elements`` values of ``ggml_type``."""
    block, size = _GGML_SIZES.get(ggml_type, (1, 4))
    return n_elements // block * size


def shape_from_gguf(metadata: GGUFMetadata) -> ModelShape:
    """The :class:`ModelShape` of a GGUF file, from its header alone."""
    arch = metadata.architecture
    n_layers = int(metadata.arch_value("block_count", 0) or 0)
    n_embd = int(metadata.arch_value("embedding_length", 0) or 0)
    n_head = int(metadata.arch_value("attention.head_count", 1) or 1)
    n_head_kv = metadata.arch_value("attention.head_count_kv", n_head)
    head_dim = n_embd // n_head if n_head else 0
    key_length = int(metadata.arch_value("attention.key_length", head_dim) or head_dim)
    value_length = int(metadata.arch_value("attention.value_length", head_dim) or head_dim)
    n_ff = metadata.arch_value("feed_forward_length", 0) or 0
    sliding_window = int(metadata.arch_value("attention.sliding_window", 0) or 0)
    pattern = metadata.arch_value("attention.sliding_window_pattern")
    swa_pattern = int(pattern) if isinstance(pattern, int) else SWA_PATTERNS.get(arch, 0)
    return ModelShape(
        weight_bytes=sum(tensor_bytes(t.ggml_type, t.n_elements) for t in metadata.tensors),
        n_layers=n_layers,
        kv_bytes_per_token_per_layer=(key_length + value_length)
        * _first_int(n_head_kv)
        * _KV_CACHE_BYTES,
        n_vocab=metadata.array_lengths.get("tokenizer.ggml.tokens", 0),
        n_ff=_first_int(n_ff),
        sliding_window=sliding_window if swa_pattern else 0,
        swa_pattern=swa_pattern if sliding_window else 0,
    )


def _first_int(value: object) -> int:
    """Per-layer values may be stored as arrays; the header reader keeps scalars only."""
    return int(value) if isinstance(value, int | float) else 0


def estimate(
    shape: ModelShape,
    n_ctx: int,
    *,
    n_seq: int = 1,
    gpu_device: str | None = None,
    gpu_layers: int = 0,
    snapshot_bytes: int = 0,
) -> MemoryEstimate:
    """Estimate a llama.cpp load of ``shape`` with ``n_ctx`` context.

    ``gpu_layers`` of the model's layers (all when negative) are offloaded to
    ``gpu_device``; their share of weights and KV cache draws on that
    device's budget. ``snapshot_bytes`` (the bound of the model's KV snapshot
    store, see :mod:`moa_local.backends.reuse`) always lives in host memory.
    """
    weights = shape.weight_bytes
    kv_cache = shape.kv_bytes(n_ctx, n_seq)
    compute = shape.compute_bytes()
    per_device: dict[str, int] = {}
    share = 0.0
    if gpu_device and gpu_layers and shape.n_layers:
        offloaded = shape.n_layers if gpu_layers < 0 else min(gpu_layers, shape.n_layers)
        share = offloaded / shape.n_layers
        per_device[gpu_device] = int((weights + kv_cache) * share) + compute
    cpu = int((weights + kv_cache) * (1 - share)) + (0 if share else compute) + snapshot_bytes
    if cpu:
        per_device["cpu"] = cpu
    return MemoryEstimate(weights, kv_cache, compute, per_device, snapshot_bytes)
