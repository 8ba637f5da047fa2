"""The memory-aware scheduler with echo models that declare their sizes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from moa_local import InsufficientMemory, MoA
from moa_local.backends.base import BackendRegistry
from moa_local.backends.echo import EchoBackend
from moa_local.config import load_config
from moa_local.machine.scheduler import Scheduler
from moa_local.models.estimate import MIB
from moa_local.models.references import resolve_model
from moa_local.models.store import ModelStore
from moa_local.trace import read_trace


def sized(name: str, size_mb: int, **options: object) -> str:
    extra = "".join(f"&{key}={value}" for key, value in options.items())
    return f"echo:{name}?size_mb={size_mb}{extra}"


def make(echo: EchoBackend, **kwargs: object) -> MoA:
    kwargs.setdefault("trace_dir", "traces")
    return MoA(backends={"echo": echo}, **kwargs)  # type: ignore[arg-type]


def spec(name: str):  # type: ignore[no-untyped-def]
    return resolve_model(name, load_config(), ModelStore(Path("home")))


async def test_budget_for_two_of_three_models(echo: EchoBackend) -> None:
    a, b, c = (sized(n, 400, delay=0.05) for n in "abc")
    moa = make(echo, proposers=[a, b, c], aggregator=a, layers=2, budget_mb=1000)
    result = await moa.run("Q")

    assert all(p.ok for layer in result.layer_history for p in layer)
    scheduler = moa.scheduler
    assert scheduler.peak["cpu"] <= 1000 * MIB  # never over budget
    assert scheduler.peak["cpu"] == 800 * MIB  # but two did fit at once
    assert echo.stats.max_in_flight == 2
    assert scheduler.grants[:3] == [a, b, c]  # served in arrival order
    assert echo.stats.unloads  # the third model needed room
    events = read_trace(result.trace_file)
    resident: dict[str, float] = {}
    for event in events:  # replay residency from the trace
        if event["event"] == "model.load":
            resident[event["model"]] = event["estimate_mb"]
            assert sum(resident.values()) <= 1000
        elif event["event"] == "model.unload":
            del resident[event["model"]]


async def test_a_model_larger_than_the_budget_fails_before_any_load(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=[sized("huge", 2000), sized("small", 100)],
        aggregator=sized("small", 100),
        layers=1,
        budget_mb=1000,
    )
    with pytest.raises(InsufficientMemory) as caught:
        await moa.run("Q")
    message = str(caught.value)
    assert "needs about 2000 MiB on cpu" in message and "budget is 1000 MiB" in message
    assert "n_ctx" in message and "--budget-mb" in message
    assert echo.stats.loads == [] and echo.stats.requests == []


async def test_cancelling_a_waiting_lease_releases_its_place(echo: EchoBackend) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 500 * MIB})
    first, second, third = (spec(sized(n, 400)) for n in ("first", "second", "third"))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with scheduler.lease(first):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(scheduler.lease(second).__aenter__())
    await asyncio.sleep(0.05)
    assert not waiter.done()  # no room while `first` is held
    assert "first" not in echo.stats.unloads  # a held model is never unloaded
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert scheduler.queued() == 0
    assert scheduler.used["cpu"] == 400 * MIB  # nothing reserved for the cancelled waiter
    release.set()
    await holder
    async with asyncio.timeout(5):
        async with scheduler.lease(third):
            assert set(scheduler.resident) == {third.resource_key}
    assert echo.stats.unloads == [first.name]


async def test_cancelling_a_running_lease_releases_everything(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=[sized("slow", 300, delay=30, slot=1)],
        aggregator=sized("agg", 300),
        layers=1,
        budget_mb=1000,
    )
    task = asyncio.create_task(moa.run("Q"))
    while echo.stats.in_flight == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    scheduler = moa.scheduler
    assert all(r.leases == 0 for r in scheduler.resident.values())
    assert scheduler.slots_used.get("cpu", 0) == 0


async def test_many_concurrent_runs_finish_without_deadlock(echo: EchoBackend) -> None:
    rng = random.Random(7)
    models = [sized(f"m{i}", rng.randint(100, 600), delay=0.01) for i in range(6)]
    moa = make(
        echo, proposers=models[:3], aggregator=models[3], layers=2, budget_mb=1000, trace_dir=""
    )

    async def one(index: int) -> None:
        run = make(
            echo,
            proposers=rng.sample(models, 3),
            aggregator=rng.choice(models),
            layers=2,
            trace_dir="",
            budget_mb=1000,
        )
        run.scheduler = moa.scheduler  # all runs share one scheduler, as in one process
        await run.run(f"question {index}")

    async with asyncio.timeout(20):
        await asyncio.gather(*(one(i) for i in range(20)))
    assert moa.scheduler.peak["cpu"] <= 1000 * MIB
    assert moa.scheduler.queued() == 0


async def test_cpu_slots_limit_concurrent_generations_and_share_threads(
    echo: EchoBackend,
) -> None:
    scheduler = Scheduler(
        BackendRegistry({"echo": echo}), {"cpu": 4000 * MIB}, cpu_slots=2, cpu_threads=8
    )
    specs = [spec(sized(f"s{i}", 10, slot=1)) for i in range(4)]
    threads = []

    async def use(s) -> None:  # type: ignore[no-untyped-def]
        async with scheduler.lease(s) as lease:
            threads.append(lease.threads)
            await asyncio.sleep(0.02)

    await asyncio.gather(*(use(s) for s in specs))
    assert scheduler.peak_slots["cpu"] == 2
    assert threads == [4, 4, 4, 4]


async def test_resident_models_are_reused_across_runs(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=[sized("a", 100), sized("b", 100)],
        aggregator=sized("a", 100),
        layers=2,
        budget_mb=1000,
    )
    await moa.run("one")
    await moa.run("two")
    assert sorted(echo.stats.loads) == sorted([sized("a", 100), sized("b", 100)])
    assert echo.stats.unloads == []


async def test_keep_alive_zero_unloads_idle_models(echo: EchoBackend) -> None:
    Path("models.toml").write_text("[resources]\nkeep_alive = 0\n")
    moa = make(
        echo, proposers=[sized("a", 100)], aggregator=sized("b", 100), layers=1, budget_mb=1000
    )
    result = await moa.run("Q")
    await asyncio.sleep(0.05)
    assert set(echo.stats.unloads) == {sized("a", 100), sized("b", 100)}
    assert echo.stats.resident == set()
    assert result.final_response


def test_budget_precedence_flag_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("models.toml").write_text("[resources]\nbudget_mb = 3000\n")
    assert MoA(proposers=["echo:a"]).scheduler.budgets["cpu"] == 3000 * MIB
    monkeypatch.setenv("MOA_LOCAL_BUDGET_MB", "2000")
    assert MoA(proposers=["echo:a"]).scheduler.budgets["cpu"] == 2000 * MIB
    assert MoA(proposers=["echo:a"], budget_mb=1000).scheduler.budgets["cpu"] == 1000 * MIB


async def test_cancelling_the_head_while_room_is_made_does_not_strand_the_next(
    echo: EchoBackend,
) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 500 * MIB})
    old = spec(sized("old", 400, unload_delay=0.2))
    head, behind = spec(sized("head", 400)), spec(sized("behind", 50))
    async with scheduler.lease(old):
        pass  # loaded, now idle
    waiting = asyncio.create_task(scheduler.lease(head).__aenter__())
    follower = asyncio.create_task(scheduler.lease(behind).__aenter__())
    await asyncio.sleep(0.05)  # `old` is being unloaded to make room for `head`
    waiting.cancel()
    async with asyncio.timeout(5):
        await follower  # served, not stranded behind the cancelled head
    assert scheduler.queued() == 0


async def test_a_failing_unload_does_not_stop_the_queue(echo: EchoBackend) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 500 * MIB})
    events: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    stuck = spec(sized("stuck", 400, unload_fail="driver error"))
    async with scheduler.lease(stuck, lambda e, **f: events.append((e, f))):
        pass
    async with asyncio.timeout(5):
        async with scheduler.lease(spec(sized("next", 400)), lambda e, **f: events.append((e, f))):
            pass
    unload = next(f for e, f in events if e == "model.unload")
    assert unload["model"] == stuck.name and "driver error" in unload["error"]


async def test_lru_only_unloads_models_on_the_short_device(echo: EchoBackend) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 500 * MIB, "gpu": 500 * MIB})
    on_gpu = spec(sized("gpu-model", 400, device="gpu"))
    on_cpu = spec(sized("cpu-model", 400))
    for model in (on_gpu, on_cpu):  # the GPU model is the least recently used
        async with scheduler.lease(model):
            pass
    async with scheduler.lease(spec(sized("another", 400))):
        pass
    assert echo.stats.unloads == [on_cpu.name]


async def test_hosts_do_not_wait_behind_each_other(echo: EchoBackend) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {}, slots={"host:a": 1})
    release = asyncio.Event()
    local_first = spec(sized("local1", 10, slot=1))

    async def hold(model) -> None:  # type: ignore[no-untyped-def]
        async with scheduler.lease(model):
            await release.wait()

    holder = asyncio.create_task(hold(local_first))
    await asyncio.sleep(0.01)
    queued_local = asyncio.create_task(
        scheduler.lease(spec(sized("local2", 10, slot=1))).__aenter__()
    )
    await asyncio.sleep(0.01)
    async with asyncio.timeout(2):  # granted although a CPU request came first
        async with scheduler.lease(spec(sized("remote", 10, slot="host:a"))):
            assert not queued_local.done()
    release.set()
    await holder
    await queued_local


async def test_requests_keep_the_order_they_were_made_in(echo: EchoBackend) -> None:
    scheduler = Scheduler(BackendRegistry({"echo": echo}), {"cpu": 1000 * MIB}, cpu_slots=1)
    slow_estimate = spec(sized("first", 10, slot=1, estimate_delay=0.05))
    quick = spec(sized("second", 10, slot=1))

    async def use(model) -> None:  # type: ignore[no-untyped-def]
        async with scheduler.lease(model):
            await asyncio.sleep(0.01)

    await asyncio.gather(use(slow_estimate), use(quick))
    assert scheduler.grants == [slow_estimate.name, quick.name]


def test_keep_alive_expiry_carries_over_to_the_next_event_loop(echo: EchoBackend) -> None:
    import time

    Path("models.toml").write_text("[resources]\nkeep_alive = 0.1\n")
    moa = make(
        echo, proposers=[sized("a", 100)], aggregator=sized("a", 100), layers=1, budget_mb=1000
    )
    moa.run_sync("one")  # `a` idle when this loop ends, before its keep-alive runs out
    assert echo.stats.unloads == []
    time.sleep(0.2)
    second = make(echo, proposers=["echo:other"], aggregator="echo:other", layers=1)
    second.scheduler = moa.scheduler
    second.run_sync("two")  # the next loop applies the expired keep-alive
    assert echo.stats.unloads == [sized("a", 100)]
