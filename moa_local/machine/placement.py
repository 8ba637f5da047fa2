"""How many of a model's layers go to the GPU: all when the model fits its budget, else
as many as fit, never more than the budget holds.

llama.cpp offloads whole layers (``n_gpu_layers``). Asking for all of them
on a GPU that cannot hold the model ends in an out-of-memory error at load
time; asking for none wastes the GPU. The estimate
(:mod:`moa_local.models.estimate`) knows the weights and the KV cache per
layer and the compute buffer that goes wherever any layer goes, so the
share that fits follows from the GPU's budget
(:func:`moa_local.machine.devices.budget_for`: free memory less a reserve).
"""

from __future__ import annotations

from ..models.estimate import ModelShape

ALL_LAYERS = -1


def gpu_layers_for(shape: ModelShape, n_ctx: int, budget_bytes: int, *, n_seq: int = 1) -> int:
    """``n_gpu_layers`` for ``shape`` under ``budget_bytes`` of GPU memory.

    -1 (all) when weights, KV cache and compute buffer fit together; else the
    number of layers whose weights and KV cache fit beside the compute
    buffer (0 when not even one does).
    """
    if shape.n_layers <= 0:
        return 0
    layered = shape.weight_bytes + shape.kv_bytes(n_ctx, n_seq)
    compute = shape.compute_bytes()
    if layered + compute <= budget_bytes:
        return ALL_LAYERS
    per_layer = layered / shape.n_layers
    room = budget_bytes - compute
    if room < per_layer:
        return 0
    return min(shape.n_layers - 1, int(room // per_layer))
