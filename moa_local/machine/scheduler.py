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
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import InsufficientMemory
from ..models.estimate import MIB, MemoryEstimate
from ..models.references import ModelSpec

Emit = Callable[..., None]


class LoadTaken(Protocol):
    """What loading a model took (a backend's ``LoadReport``)."""

    @property
    def seconds(self) -> float: ...

    @property
    def measured(self) -> Mapping[str, int]: ...


class HoldsModels(Protocol):
    """The part of a backend the scheduler uses: where a model computes, its memory, loading.

    Declared here rather than imported from :mod:`moa_local.backends`, so that the
    machine's package sits below the backends (whose llama.cpp backend reads the
    devices) and the two never import each other.
    """

    def compute_device(self, model: ModelSpec) -> str | None: ...

    async def estimate(self, model: ModelSpec) -> MemoryEstimate: ...

    async def load(self, model: ModelSpec) -> LoadTaken: ...

    async def unload(self, model: ModelSpec) -> None: ...


class BackendsByModel(Protocol):
    """The backend for each model (a :class:`moa_local.backends.base.BackendRegistry`)."""

    def for_model(self, model: ModelSpec) -> HoldsModels: ...


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
    estimate: MemoryEstimate | None  # None until the backend has said
    slot_device: str | None
    future: asyncio.Future[None]
    emit: Emit
    queue: str


class Scheduler:
    """Memory budgets per device, compute slots on the CPU, and model residency."""

    def __init__(
        self,
        backends: BackendsByModel,
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
        self.resident: dict[tuple[object, ...], _Resident] = {}
        self.used: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.slots_used: dict[str, int] = {}
        self.peak_slots: dict[str, int] = {}
        self.grants: list[str] = []  # model names in the order leases were granted
        self._estimates: dict[tuple[object, ...], MemoryEstimate] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # One first-come-first-served queue per device, so that a request for
        # one host (or the GPU) never waits behind one for another.
        self._queues: dict[str, deque[_Waiter]] = {}
        self._state_lock: asyncio.Lock | None = None
        self._load_lock: asyncio.Lock | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._emit: Emit = _no_emit

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
        return spec.resource_key in self.resident

    def residents(self) -> list[tuple[ModelSpec, int, float]]:
        """Loaded models: spec, estimated bytes, and seconds since last use."""
        now = time.monotonic()
        return [
            (r.spec, r.estimate.total, now - r.last_used)
            for r in self.resident.values()
            if r.loaded
        ]

    def queued(self) -> int:
        """Requests waiting for a lease."""
        return sum(len(queue) for queue in self._queues.values())

    async def estimate(self, spec: ModelSpec) -> MemoryEstimate:
        """The backend's estimate, asked once per model (it may cost a network call)."""
        key = spec.resource_key
        estimate = self._estimates.get(key)
        if estimate is None:
            estimate = await self.backends.for_model(spec).estimate(spec)
            if estimate.per_device:  # "unknown" is asked again next time
                self._estimates[key] = estimate
        return estimate

    # -- leases ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self, spec: ModelSpec, emit: Emit | None = None) -> AsyncIterator[Lease]:
        """Hold ``spec`` resident (loading it if needed) and a compute slot for the block."""
        emit = emit or _no_emit
        self._emit = emit
        self._bind_loop()
        backend = self.backends.for_model(spec)
        slot_device = backend.compute_device(spec)
        queue_name = slot_device or f"memory:{spec.backend}"
        loop = asyncio.get_running_loop()
        waiter = _Waiter(spec, None, slot_device, loop.create_future(), emit, queue_name)
        # Join the queue before any await, so requests keep the order they were made in.
        queue = self._queues.setdefault(queue_name, deque())
        queue.append(waiter)
        try:
            estimate = await self.estimate(spec)
            self.check_fits(spec, estimate)
        except BaseException:
            if waiter in queue:
                queue.remove(waiter)
            self._kick()
            raise
        waiter.estimate = estimate
        self._kick()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release(waiter)  # granted just as we were cancelled
            elif waiter in queue:
                queue.remove(waiter)
            self._kick()
            raise
        try:
            resident = self.resident[spec.resource_key]
            if resident.load_task is None:
                resident.load_task = asyncio.ensure_future(self._load(resident, emit))
            await asyncio.shield(resident.load_task)
            threads = self.threads_per_slot if slot_device == "cpu" else None
            yield Lease(spec, threads)
        finally:
            self._release(waiter)
            self._kick()

    def _release(self, waiter: _Waiter) -> None:
        resident = self.resident.get(waiter.spec.resource_key)
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
        else:
            self._schedule_keep_alive(resident, self.keep_alive)

    def _schedule_keep_alive(self, resident: _Resident, delay: float) -> None:
        if self.keep_alive < 0 or self._loop is None:
            return
        if delay <= 0:
            self._spawn(self._unload_idle(resident, "keep_alive"))
            return
        resident.unload_timer = self._loop.call_later(
            delay, lambda: self._spawn(self._unload_idle(resident, "keep_alive"))
        )

    # -- the queues -------------------------------------------------------------

    def _kick(self) -> None:
        """Make sure a pump is running to admit waiters."""
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        """Admit the head of each queue while it can be admitted; never dies."""
        assert self._state_lock is not None
        async with self._state_lock:
            progress = True
            while progress:
                progress = False
                for queue in list(self._queues.values()):
                    while queue:
                        head = queue[0]
                        if head.future.done():
                            queue.popleft()
                            continue
                        if head.estimate is None:
                            break  # its estimate is still coming
                        try:
                            admitted = await self._admit(head)
                        except Exception as exc:  # a backend failed while making room
                            if queue and queue[0] is head:
                                queue.popleft()
                            if not head.future.done():
                                head.future.set_exception(exc)
                            progress = True
                            continue
                        if not admitted:
                            break
                        # The head may have been cancelled (and removed) meanwhile.
                        if queue and queue[0] is head:
                            queue.popleft()
                        if head.future.done():
                            self._release(head)
                        else:
                            head.future.set_result(None)
                        progress = True

    async def _admit(self, waiter: _Waiter) -> bool:
        """Give ``waiter`` its residency and slot, or say it must wait."""
        assert waiter.estimate is not None
        device = waiter.slot_device
        limit = self.slots.get(device or "", 0)
        if device is not None and limit and self.slots_used.get(device, 0) >= limit:
            return False
        key = waiter.spec.resource_key
        resident = self.resident.get(key)
        if resident is None:
            while not self._fits(waiter.estimate):
                victim = self._least_recently_used_idle(self._short_devices(waiter.estimate))
                if victim is None:
                    return False
                await self._unload(victim, "lru", waiter.emit)
            resident = _Resident(waiter.spec, waiter.estimate)
            self.resident[key] = resident
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

    def _short_devices(self, estimate: MemoryEstimate) -> set[str]:
        return {
            device
            for device, need in estimate.per_device.items()
            if device in self.budgets and self.used.get(device, 0) + need > self.budgets[device]
        }

    def _after_load(self, resident: _Resident) -> None:
        if resident.leases == 0 and not resident.loaded:
            self._forget(resident)
        self._kick()

    def _least_recently_used_idle(self, devices: set[str]) -> _Resident | None:
        """The idle model used longest ago among those holding memory on ``devices``."""
        idle = [
            r
            for r in self.resident.values()
            if r.leases == 0 and r.loaded and devices & r.estimate.per_device.keys()
        ]
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
            snapshots_mb=round(estimate.snapshots / MIB, 1),
            measured_mb=None if measured is None else round(measured / MIB, 1),
            seconds=round(report.seconds, 3),
        )

    async def _unload(self, resident: _Resident, reason: str, emit: Emit) -> None:
        if resident.unload_timer is not None:
            resident.unload_timer.cancel()
            resident.unload_timer = None
        error = None
        try:
            await self.backends.for_model(resident.spec).unload(resident.spec)
        except Exception as exc:  # the memory is forgotten either way; say what happened
            error = f"{type(exc).__name__}: {exc}"
        self._forget(resident)
        emit("model.unload", model=resident.spec.name, reason=reason, error=error)

    def _forget(self, resident: _Resident) -> None:
        key = resident.spec.resource_key
        if self.resident.get(key) is not resident:
            return
        del self.resident[key]
        for device, need in resident.estimate.per_device.items():
            self.used[device] -= need

    async def _unload_idle(self, resident: _Resident, reason: str) -> None:
        assert self._state_lock is not None
        async with self._state_lock:
            current = self.resident.get(resident.spec.resource_key)
            if current is resident and resident.leases == 0 and resident.loaded:
                await self._unload(resident, reason, self._emit)
        self._kick()

    async def close(self, emit: Emit | None = None) -> None:
        """Unload every resident model (none may be leased)."""
        for resident in list(self.resident.values()):
            if resident.loaded and resident.leases == 0:
                await self._unload(resident, "close", emit or _no_emit)

    # -- event loops --------------------------------------------------------------

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # A new event loop (e.g. a second run_sync): keep residency, renew the
        # primitives, and restart keep-alive countdowns where they stood.
        self._loop = loop
        self._queues.clear()
        self._state_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._pump_task = None
        now = time.monotonic()
        for resident in list(self.resident.values()):
            resident.unload_timer = None
            if resident.load_task is not None and not resident.load_task.done():
                resident.load_task = None
            if resident.leases == 0 and resident.loaded:
                self._schedule_keep_alive(resident, resident.last_used + self.keep_alive - now)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._background.discard)
