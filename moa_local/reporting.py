"""Progress reporting for downloads: a tiny protocol, so that no library module needs tqdm.

A long transfer (a store pull, a hub download, an Ollama pull) asks a
:data:`ProgressFactory` for one :class:`Progress` per bar, giving a
description and a total in bytes; it then calls ``update(n)`` as bytes arrive
and ``close()`` at the end. The CLI passes a factory that makes tqdm bars (or
one summary line when stderr is not a terminal); the library's default,
:func:`silent_progress`, shows nothing.

This module depends on nothing else in moa-local, so the store, the sources
and the backends can all import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """What a source reports while it downloads (the CLI passes tqdm bars)."""

    def update(self, n: int) -> object:
        """``n`` more bytes are done."""
        ...

    def close(self) -> None:
        """The transfer is over."""
        ...


ProgressFactory = Callable[[str, int], Progress]


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def silent_progress(description: str, total: int) -> Progress:
    """A progress factory that shows nothing."""
    return _NoProgress()
