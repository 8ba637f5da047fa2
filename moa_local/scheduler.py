"""Who may generate when: every generation runs under ``scheduler.lease(model)``.

This is the seam the memory-aware scheduler will fill. For now each device
pool is a plain concurrency limit: on a CPU-only machine one model generates
at a time (two llama.cpp models on the same cores only slow each other down),
while models that use no local compute (the echo backend) are not limited.
Waiters are served in arrival order (asyncio.Semaphore is FIFO), and a
cancelled waiter or holder gives its place back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .models import ModelSpec

# Pool used by backends that compute nothing locally.
UNLIMITED = "none"


def device_of(model: ModelSpec) -> str:
    """The pool a model's generations draw on."""
    if model.backend == "echo":
        return model.options.get("device", UNLIMITED)
    return "local"


class Scheduler:
    """Per-device concurrency limits for generations."""

    def __init__(self, max_concurrent: int = 1) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.max_concurrent = max_concurrent
        self._pools: dict[str, asyncio.Semaphore] = {}
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    @asynccontextmanager
    async def lease(self, model: ModelSpec) -> AsyncIterator[None]:
        """Hold a place in the model's device pool for the duration of the block."""
        device = device_of(model)
        if device == UNLIMITED:
            yield
            return
        pool = self._pools.setdefault(device, asyncio.Semaphore(self.max_concurrent))
        async with pool:
            self.active[device] = self.active.get(device, 0) + 1
            self.peak[device] = max(self.peak.get(device, 0), self.active[device])
            try:
                yield
            finally:
                self.active[device] -= 1
