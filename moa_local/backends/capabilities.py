"""Optional backend capabilities, each a small protocol checked with ``isinstance``.

Every backend implements :class:`~moa_local.backends.base.Backend`. Some can
do more, and callers ask for that by capability rather than by backend name::

    if isinstance(backend, PullsModels):
        await backend.pull(spec, progress)

- :class:`PullsModels`: the backend's host can fetch a model it lacks
  (Ollama's pull), and say whether it has it;
- :class:`ReportsResidency`: the host can say how much memory models other
  than ours hold there (Ollama's ``/api/ps``), so a host given a total can be
  budgeted what is left;
- :class:`ListsHostModels`: the host can list the models it serves (for
  ``doctor``);
- :class:`ScoresText`: the backend can read the log-probability of each
  token of a given reply (llama.cpp: one prefill that reuses the chat's KV).

The protocols are ``runtime_checkable``: ``isinstance`` checks that the
methods exist, not their signatures, so a backend that has them must give
them the signatures below. A third-party backend gains a capability by
defining the methods; nothing is registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..models.references import ModelSpec
from ..reporting import ProgressFactory
from .base import Message


@runtime_checkable
class PullsModels(Protocol):
    """A backend whose host can pull models it does not have yet."""

    async def is_pulled(self, spec: ModelSpec) -> bool | None:
        """Whether the host has ``spec``'s model; None when the host cannot be asked."""
        ...

    async def pull(self, spec: ModelSpec, progress: ProgressFactory) -> None:
        """Have the host fetch ``spec``'s model, reporting through ``progress``."""
        ...


@runtime_checkable
class ReportsResidency(Protocol):
    """A backend whose host can say what memory other models hold there."""

    async def resident_elsewhere(self, spec: ModelSpec, ours: set[str]) -> int:
        """Bytes ``spec``'s host holds for models not in ``ours`` (0 when it cannot say)."""
        ...


@runtime_checkable
class ListsHostModels(Protocol):
    """A backend whose host can list the models it serves."""

    async def host_models(self, spec: ModelSpec) -> list[str]:
        """Names of the models on ``spec``'s host; raises when the host cannot be listed."""
        ...


@runtime_checkable
class ScoresText(Protocol):
    """A backend that can score a reply it did not necessarily write."""

    async def score(
        self, spec: ModelSpec, messages: Sequence[Message], continuation: str
    ) -> list[float]:
        """The log-probability of each token of ``continuation`` as ``spec``'s reply to
        ``messages`` (natural log, under the model's own distribution)."""
        ...
