"""Who may generate when, and which models stay in memory.

Every generation runs under ``scheduler.lease(model)``. A lease:

1. weighs the model's estimated bytes (per device, from the backend) against
   each device's budget. A model larger than a whole budget is refused at
   once (:class:`InsufficientMemory`, before anything is loaded);
2. waits in one first-come-first-served queue until the model is resident,
   or its bytes can be reserved, unloading idle models least-recently-used
   first to make room. A model with a lease held is never unloaded, so the
   sum of resident estimates never exceeds a budget;
3. takes a compute slot when the backend computes on the CPU: concurrent
   llama.cpp generations share the physical cores (each slot gets
   cores / slots threads) instead of each taking all of them;
4. loads the model if needed (one load at a time, so the measured process
   memory delta belongs to one model) and traces ``model.load`` with the
   estimate and the measurement; unloads are traced as ``model.unload``.

Models stay resident after use while memory allows (``keep_alive = -1``), for
``keep_alive`` seconds, or not at all (``0``). A cancelled waiter leaves the
queue; a cancelled holder releases its slot and lease. The queue is strictly
in arrival order, so no request waits forever behind later ones, and since
every holder eventually releases, a waiter that fits the budget on its own is
always served: no deadlock.

The scheduler outlives a single event loop (``MoA.run_sync`` twice): resident
models are kept, and the asyncio primitives are made anew for each loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .backends.base import BackendRegistry
from .errors import InsufficientMemory, MoALocalError
from .estimate import MIB, MemoryEstimate
from .models import ModelSpec

Emit = Callable[..., None]


def _no_emit(event: str, **fields: Any) -> None:
    return None


@dataclass(frozen=True)
class Lease:
    """What a granted lease gives: the model, and CPU threads when it computes on the CPU."""

    model: ModelSpec
    threads: int | None = None


@dataclass
class _Resident:
    spec: ModelSpec
    estimate: MemoryEstimate
    leases: int = 0
    last_used: float = field(default_factory=time.monotonic)
    load_task: asyncio.Task[None] | None = None
    loaded: bool = False
    unload_timer: asyncio.TimerHandle | None = None


@dataclass
class _Waiter:
    spec: ModelSpec
    estimate: MemoryEstimate
    slot_device: str | None
    future: asyncio.Future[None]
    emit: Emit


class Scheduler:
    """Memory budgets per device, compute slots on the CPU, and model residency."""

    def __init__(
        self,
        backends: BackendRegistry,
        budgets: dict[str, int],
        *,
        cpu_slots: int = 1,
        cpu_threads: int = 1,
        keep_alive: float = -1.0,
        slots: dict[str, int] | None = None,
    ) -> None:
        self.backends = backends
        self.budgets = dict(budgets)
        self.cpu_slots = max(1, cpu_slots)
        # Concurrent generations per device; a device not listed has no limit
        # (hosts: one budget and one slot count each, so hosts run in parallel).
        self.slots = {**(slots or {}), "cpu": self.cpu_slots}
        self.threads_per_slot = max(1, cpu_threads // self.cpu_slots)
        self.keep_alive = keep_alive
        self.resident: dict[str, _Resident] = {}
        self.used: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.slots_used: dict[str, int] = {}
        self.peak_slots: dict[str, int] = {}
        self.grants: list[str] = []  # model names in the order leases were granted
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[_Waiter] = deque()
        self._state_lock: asyncio.Lock | None = None
        self._load_lock: asyncio.Lock | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- checks ---------------------------------------------------------------

    def check_fits(self, spec: ModelSpec, estimate: MemoryEstimate) -> None:
        """Raise :class:`InsufficientMemory` when ``spec`` can never fit a budget."""
        for device, need in estimate.per_device.items():
            budget = self.budgets.get(device)
            if budget is not None and need > budget:
                raise InsufficientMemory(
                    f"model {spec.name!r} needs about {need / MIB:.0f} MiB on {device} "
                    f"(weights {estimate.weights / MIB:.0f} + KV cache "
                    f"{estimate.kv_cache / MIB:.0f} for n_ctx {spec.n_ctx} + compute "
                    f"{estimate.compute / MIB:.0f}) but the {device} budget is "
                    f"{budget / MIB:.0f} MiB; try a smaller n_ctx, a smaller quantization, "
                    "or a larger --budget-mb"
                )

    def _fits(self, estimate: MemoryEstimate) -> bool:
        for device, need in estimate.per_device.items():
            budget = self.budgets.get(device)
            if budget is not None and self.used.get(device, 0) + need > budget:
                return False
        return True

    def is_resident(self, spec: ModelSpec) -> bool:
        """Whether ``spec`` is loaded (or being loaded) right now."""
        return spec.name in self.resident

    # -- leases ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self, spec: ModelSpec, emit: Emit | None = None) -> AsyncIterator[Lease]:
        """Hold ``spec`` resident (loading it if needed) and a compute slot for the block."""
        emit = emit or _no_emit
        backend = self.backends.for_model(spec)
        estimate = await backend.estimate(spec)
        self.check_fits(spec, estimate)
        self._bind_loop()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(spec, estimate, backend.compute_device(spec), loop.create_future(), emit)
        self._queue.append(waiter)
        self._kick()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release(waiter)  # granted just as we were cancelled
            elif waiter in self._queue:
                self._queue.remove(waiter)
            self._kick()
            raise
        try:
            resident = self.resident[spec.name]
            if resident.load_task is None:
                resident.load_task = asyncio.ensure_future(self._load(resident, emit))
            await asyncio.shield(resident.load_task)
            threads = self.threads_per_slot if waiter.slot_device == "cpu" else None
            yield Lease(spec, threads)
        finally:
            self._release(waiter)
            self._kick()

    def _release(self, waiter: _Waiter) -> None:
        resident = self.resident.get(waiter.spec.name)
        if waiter.slot_device is not None:
            self.slots_used[waiter.slot_device] -= 1
        if resident is None:
            return
        resident.leases -= 1
        resident.last_used = time.monotonic()
        if resident.leases > 0:
            return
        if not resident.loaded:
            task = resident.load_task
            if task is not None and not task.done():
                # Every holder left while the model is still loading: keep the
                # reservation until the load ends, then keep or drop it.
                task.add_done_callback(lambda _: self._after_load(resident))
            else:
                self._forget(resident)  # the load failed: the reservation goes away
        elif self.keep_alive == 0:
            self._spawn(self._unload_idle(resident, "keep_alive", waiter.emit))
        elif self.keep_alive > 0 and self._loop is not None:
            resident.unload_timer = self._loop.call_later(
                self.keep_alive,
                lambda: self._spawn(self._unload_idle(resident, "keep_alive", waiter.emit)),
            )

    # -- the queue ------------------------------------------------------------

    def _kick(self) -> None:
        """Make sure a pump is running to admit waiters."""
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        assert self._state_lock is not None
        async with self._state_lock:
            while self._queue:
                head = self._queue[0]
                if head.future.done():
                    self._queue.popleft()
                    continue
                if not await self._admit(head):
                    return
                self._queue.popleft()
                if head.future.done():  # cancelled while we made room for it
                    self._release(head)
                else:
                    head.future.set_result(None)

    async def _admit(self, waiter: _Waiter) -> bool:
        """Give ``waiter`` its residency and slot, or say it must wait."""
        device = waiter.slot_device
        limit = self.slots.get(device or "", 0)
        if device is not None and limit and self.slots_used.get(device, 0) >= limit:
            return False
        resident = self.resident.get(waiter.spec.name)
        if resident is None:
            while not self._fits(waiter.estimate):
                victim = self._least_recently_used_idle()
                if victim is None:
                    return False
                await self._unload(victim, "lru", waiter.emit)
            resident = _Resident(waiter.spec, waiter.estimate)
            self.resident[waiter.spec.name] = resident
            for dev, need in waiter.estimate.per_device.items():
                self.used[dev] = self.used.get(dev, 0) + need
                self.peak[dev] = max(self.peak.get(dev, 0), self.used[dev])
        if resident.unload_timer is not None:
            resident.unload_timer.cancel()
            resident.unload_timer = None
        resident.leases += 1
        if device is not None:
            self.slots_used[device] = self.slots_used.get(device, 0) + 1
            self.peak_slots[device] = max(self.peak_slots.get(device, 0), self.slots_used[device])
        self.grants.append(waiter.spec.name)
        return True

    def _after_load(self, resident: _Resident) -> None:
        if resident.leases == 0 and not resident.loaded:
            self._forget(resident)
        self._kick()

    def _least_recently_used_idle(self) -> _Resident | None:
        idle = [r for r in self.resident.values() if r.leases == 0 and r.loaded]
        return min(idle, key=lambda r: r.last_used, default=None)

    # -- loading and unloading --------------------------------------------------

    async def _load(self, resident: _Resident, emit: Emit) -> None:
        assert self._load_lock is not None
        spec = resident.spec
        async with self._load_lock:
            report = await self.backends.for_model(spec).load(spec)
        resident.loaded = True
        estimate = resident.estimate
        device = max(estimate.per_device, key=lambda d: estimate.per_device[d], default="none")
        measured = report.measured.get(device)
        emit(
            "model.load",
            model=spec.name,
            device=device,
            estimate_mb=round(estimate.per_device.get(device, 0) / MIB, 1),
            measured_mb=None if measured is None else round(measured / MIB, 1),
            seconds=round(report.seconds, 3),
        )

    async def _unload(self, resident: _Resident, reason: str, emit: Emit) -> None:
        if resident.unload_timer is not None:
            resident.unload_timer.cancel()
        await self.backends.for_model(resident.spec).unload(resident.spec)
        self._forget(resident)
        emit("model.unload", model=resident.spec.name, reason=reason)

    def _forget(self, resident: _Resident) -> None:
        if self.resident.get(resident.spec.name) is not resident:
            return
        del self.resident[resident.spec.name]
        for device, need in resident.estimate.per_device.items():
            self.used[device] -= need

    async def _unload_idle(self, resident: _Resident, reason: str, emit: Emit) -> None:
        assert self._state_lock is not None
        async with self._state_lock:
            current = self.resident.get(resident.spec.name)
            if current is resident and resident.leases == 0 and resident.loaded:
                await self._unload(resident, reason, emit)
        self._kick()

    async def close(self, emit: Emit | None = None) -> None:
        """Unload every resident model (none may be leased)."""
        for resident in list(self.resident.values()):
            if resident.loaded and resident.leases == 0:
                with contextlib.suppress(MoALocalError):
                    await self._unload(resident, "close", emit or _no_emit)

    # -- event loops --------------------------------------------------------------

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # A new event loop (e.g. a second run_sync): keep residency, renew primitives.
        self._loop = loop
        self._queue.clear()
        self._state_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._pump_task = None
        for resident in self.resident.values():
            resident.unload_timer = None
            if resident.load_task is not None and resident.load_task.done():
                continue
            resident.load_task = None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._background.discard)
