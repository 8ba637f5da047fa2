"""The one exception tree of moa-local.

``str(exc)`` is the sentence a command-line user reads, so every message says
what went wrong and, where it can, what to do about it. ``exit_code`` is what
the CLI exits with; library callers can ignore it.

::

    MoALocalError                 base; never raised itself
    ├── ConfigError               bad models.toml, flag or environment value   (exit 2)
    ├── ModelError                unknown name, not a GGUF, no chat template   (exit 2)
    │   ├── ModelNotInstalled     known model whose file is not pulled yet      (exit 2)
    │   └── InsufficientMemory    the model can never fit its device's budget   (exit 2)
    ├── BackendUnavailable        an optional dependency is missing             (exit 2)
    ├── PullError                 a download failed or its hash did not match   (exit 1)
    ├── GenerationError           one generation failed (becomes a proposal error)
    │   ├── ContextOverflowError  the prompt cannot fit the model's context
    │   └── GenerationTimeout     the generation ran past its time limit
    │   (ContextOverflowError before a run starts: exit 2)
    ├── RunFailed                 too few proposers succeeded in a layer        (exit 1)
    ├── Terminated                SIGTERM ended a run (it was cancelled)         (exit 143)
    └── ServeError                `serve` cannot listen (address in use, ...)   (exit 1)
"""

from __future__ import annotations


class MoALocalError(Exception):
    """Base of every error moa-local raises on purpose."""

    exit_code: int = 1


class ConfigError(MoALocalError):
    """A configuration value (file, environment or flag) is invalid.

    When one setting's value is at fault, ``setting`` names it (``"layers"``),
    ``where`` is where the value came from, as the message begins with it
    (``models.toml: [defaults] layers``, ``MOA_LOCAL_LAYERS``, or the keyword
    ``layers``), and ``reason`` is the rest (``must be >= 1, got 0``): the CLI
    puts the flag in place of a keyword. Otherwise all three are None.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        setting: str | None = None,
        where: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.setting = setting
        self.where = where
        self.reason = reason


class ModelError(MoALocalError):
    """A model reference cannot be used as given."""

    exit_code = 2


class ModelNotInstalled(ModelError):
    """A catalog model is known but its file has not been pulled."""


class InsufficientMemory(ModelError):
    """A model's estimated memory exceeds the whole budget of its device."""


class BackendUnavailable(MoALocalError):
    """A backend's optional dependency is not installed."""

    exit_code = 2


class PullError(MoALocalError):
    """Fetching a model failed; nothing was left under the final file name."""

    exit_code = 1


class GenerationError(MoALocalError):
    """One generation failed. The engine turns it into a proposal with ``error`` set."""

    exit_code = 1


class ContextOverflowError(GenerationError):
    """Even with references shortened, the prompt does not fit the model's context."""

    exit_code = 2


class HostUnreachable(GenerationError):
    """A remote host refused, reset or dropped the connection (it is down, not slow)."""


class GenerationTimeout(GenerationError):
    """A generation did not finish within its time limit."""


class RunFailed(MoALocalError):
    """A layer ended with fewer successful proposals than ``min_proposers``."""

    exit_code = 1


class ServeError(MoALocalError):
    """``moa-local serve`` cannot start as asked (address in use, no permission)."""


class Terminated(MoALocalError):
    """SIGTERM arrived during a run: the run was cancelled and its models freed."""

    exit_code = 143
