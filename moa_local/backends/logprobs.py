"""Token log-probabilities: from raw logits, and summed up as a confidence.

Every llama.cpp generation records the log-probability of each token it
produced (:class:`~.llamacpp_generate.TokenRecorder`, and the batch decoder
of :mod:`.batched`): the logits exist anyway, and a log-softmax value per
token costs one pass over the vocabulary. :mod:`.llamacpp_score` reads them
for a text the model did not necessarily write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def log_sum_exp(logits: Any) -> float:
    """``log(sum(exp(logits)))``, computed without overflow."""
    import numpy as np  # llama-cpp-python's dependency: only its backends call this

    top = float(np.max(logits))
    return top + float(np.log(np.sum(np.exp(logits - top, dtype=np.float64))))


def mean_logprob(logprobs: Sequence[float] | None) -> float | None:
    """The mean token log-probability (a length-normalized confidence); None when unknown."""
    if not logprobs:
        return None
    return sum(logprobs) / len(logprobs)
