"""moa-local: a local-first Mixture-of-Agents runtime.

Several local models answer a prompt as proposers, later layers refine, and
the strongest local model aggregates the final answer::

    from moa_local import MoA

    result = MoA(proposers=["qwen2.5-coder-0.5b", "smollm2-135m"], layers=2).run_sync(
        "Why is the sky blue?"
    )
    print(result.final_response)
"""

from .agents import Agent
from .config import Config, load_config
from .errors import (
    BackendUnavailable,
    ConfigError,
    ContextOverflowError,
    GenerationError,
    GenerationTimeout,
    InsufficientMemory,
    MoALocalError,
    ModelError,
    ModelNotInstalled,
    PullError,
    RunFailed,
)
from .moa import MoA
from .result import MoAResult, Proposal

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BackendUnavailable",
    "Config",
    "ConfigError",
    "ContextOverflowError",
    "GenerationError",
    "GenerationTimeout",
    "InsufficientMemory",
    "MoA",
    "MoALocalError",
    "MoAResult",
    "ModelError",
    "ModelNotInstalled",
    "Proposal",
    "PullError",
    "RunFailed",
    "__version__",
    "load_config",
]
