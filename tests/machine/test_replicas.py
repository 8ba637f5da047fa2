"""One model over several hosts: placement, failure, probing; real llama_cpp.server hosts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from moa_local import MoA
from moa_local.config import HostConfig, load_config
from moa_local.errors import ConfigError, GenerationError, HostUnreachable
from moa_local.machine.replicas import FIRST_BACKOFF_S, Replicas
from moa_local.models.references import ModelSpec
from moa_local.trace import read_trace
from tests.servers import LlamaServer, stopping_servers

HOSTS = tuple(HostConfig(name, f"http://{name}:1", kind="openai") for name in "abc")
SPEC = ModelSpec(name="m", backend="openai", host=HOSTS[0], replicas=HOSTS, remote_model="m")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def answers(spec: ModelSpec) -> list[str]:
    return ["m"]


async def refuses(spec: ModelSpec) -> list[str]:
    raise ConnectionError("refused")


async def test_requests_go_to_the_least_loaded_host_then_the_fastest() -> None:
    replicas = Replicas()
    chosen = [(await replicas.choose(SPEC, answers)) for _ in range(4)]
    assert [c.host.name for c in chosen if c and c.host] == ["a", "b", "c", "a"]
    assert all(c is not None and c.replicas == () for c in chosen)  # one host each
    for host, seconds in (("a", 3.0), ("a", 3.0), ("b", 1.0), ("c", 2.0)):
        replicas.finished(host, seconds, None)
    # All idle again: the lowest recent latency wins the tie.
    best = await replicas.choose(SPEC, answers)
    assert best is not None and best.host is not None and best.host.name == "b"


async def test_a_failed_host_is_down_until_it_answers_its_probe() -> None:
    clock = Clock()
    replicas = Replicas(clock)
    first = await replicas.choose(SPEC, answers)
    assert first is not None and first.host is not None
    replicas.finished("a", 0.1, HostUnreachable("m@a: cannot reach openai at http://a:1"))
    others = {(await replicas.choose(SPEC, answers)).host.name for _ in range(4)}  # type: ignore[union-attr]
    assert others == {"b", "c"}
    assert replicas.hosts["a"].to_dict()["state"] == "down"
    # After the back-off, a probe that fails keeps it down, twice as long.
    clock.now += FIRST_BACKOFF_S
    await replicas.choose(SPEC, refuses)
    assert not replicas.hosts["a"].up
    assert replicas.hosts["a"].down_until == pytest.approx(clock.now + 2 * FIRST_BACKOFF_S)
    # A probe that answers brings it back.
    clock.now += 2 * FIRST_BACKOFF_S
    back = await replicas.choose(SPEC, answers)
    assert replicas.hosts["a"].up and back is not None and back.host is not None
    assert back.host.name == "a"  # the least loaded: nothing in flight there


async def test_an_ordinary_error_does_not_take_a_host_down() -> None:
    replicas = Replicas()
    await replicas.choose(SPEC, answers)
    replicas.finished("a", 0.1, GenerationError("m@a: the model wrote nothing"))
    assert replicas.hosts["a"].up


def test_a_model_names_several_hosts(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    hosts = "".join(f'[hosts.{n}]\nurl = "http://{n}:1"\nkind = "openai"\n' for n in "ab")
    path.write_text(hosts + '[models.m]\nhost = ["a", "b"]\nmodel = "m"\n')
    config = load_config(path)
    assert config.models["m"].replicas == ("a", "b") and config.models["m"].host == "a"
    path.write_text(hosts + '[models.m]\nhost = ["a", "z"]\nmodel = "m"\n')
    with pytest.raises(ConfigError, match="host 'z' is not a"):
        load_config(path)
    path.write_text(hosts + '[models.m]\nhost = ["a", "a"]\nmodel = "m"\n')
    with pytest.raises(ConfigError, match="names a host twice"):
        load_config(path)


@pytest.fixture
def three_hosts(tmp_path: Path, tiny_model: Path) -> Iterator[list[LlamaServer]]:
    """Hosts a, b, c; every server started until the test ends is stopped, restarted ones too."""
    pytest.importorskip("llama_cpp.server.app")
    with stopping_servers():
        servers = [LlamaServer(tiny_model, tmp_path / f"{n}.log") for n in "abc"]
        yield [server.wait_ready() for server in servers]


def test_a_server_started_inside_the_fixture_is_stopped_with_it(
    tmp_path: Path, tiny_model: Path
) -> None:
    # What three_hosts relies on: a server the test puts in place of another
    # (a restart) is stopped at the block's end, though the test never stops
    # it; one the test stopped itself is stopped again harmlessly.
    pytest.importorskip("llama_cpp.server.app")
    with stopping_servers():
        hosts = [LlamaServer(tiny_model, tmp_path / "first.log")]
        hosts[0].stop()
        hosts[0] = LlamaServer(tiny_model, tmp_path / "restarted.log")
        restarted = hosts[0]
        assert restarted.process.poll() is None
    assert restarted.process.returncode is not None


def replicated_config(servers: list[LlamaServer]) -> str:
    text = ""
    for name, server in zip("abc", servers, strict=True):
        text += f'[hosts.{name}]\nurl = "{server.url}"\nkind = "openai"\ntimeout = 60\n\n'
    return text + (
        '[models.tiny]\nhost = ["a", "b", "c"]\nmodel = "tiny"\nn_ctx = 4096\n\n'
        '[defaults]\nproposers = ["tiny"]\naggregator = "tiny"\nstrategy = "temperature"\n'
        'num_proposers = 3\nlayers = 1\nmax_tokens = 8\nrouter = "off"\naggregate = "vote"\n'
        'trace_dir = "traces"\n'
    )


def test_one_model_over_three_real_hosts_fails_over_and_recovers(
    three_hosts: list[LlamaServer], tmp_path: Path, tiny_model: Path
) -> None:
    Path("models.toml").write_text(replicated_config(three_hosts))
    moa = MoA()

    async def scenario() -> None:
        first = await moa.run("hello")
        # The three samples went to the three hosts, one each.
        assert Counter(s["host"] for s in moa.replicas.snapshot() if s["served"]) == {
            "a": 1,
            "b": 1,
            "c": 1,
        }
        assert all(p.ok for p in first.layer_history[0])
        three_hosts[1].stop()  # b dies
        second = await moa.run("hello again")
        # b's sample went to another host: nothing failed, and the trace says so.
        assert all(p.ok for p in second.layer_history[0])
        failovers = [e for e in read_trace(second.trace_file) if e["event"] == "replica.failover"]
        assert [e["host"] for e in failovers] == ["b"]
        assert "cannot reach openai" in failovers[0]["error"]
        state = {s["host"]: s for s in moa.replicas.snapshot()}
        assert state["b"]["state"] == "down" and state["a"]["state"] == "up"
        # b comes back on its port; after its back-off a probe lets it work again.
        three_hosts[1] = LlamaServer(
            tiny_model, tmp_path / "b.log", port=three_hosts[1].port
        ).wait_ready()
        await asyncio.sleep(FIRST_BACKOFF_S + 0.2)
        served = state["b"]["served"]
        await moa.run("hello once more")
        state = {s["host"]: s for s in moa.replicas.snapshot()}
        assert state["b"]["state"] == "up" and state["b"]["served"] == served + 1
        await moa.aclose()

    asyncio.run(scenario())


def test_every_host_down_is_one_error_naming_them(tmp_path: Path) -> None:
    text = "".join(
        f'[hosts.{n}]\nurl = "http://127.0.0.1:9"\nkind = "openai"\ntimeout = 5\n\n' for n in "ab"
    )
    Path("models.toml").write_text(
        text + '[models.m]\nhost = ["a", "b"]\nmodel = "m"\n\n'
        '[defaults]\nproposers = ["m"]\naggregator = "m"\nlayers = 1\nstrategy = "model"\n'
        'num_proposers = 0\ntrace_dir = ""\n'
    )
    result = asyncio.run(_run_failing())
    assert "m: no host could answer (m@a: cannot reach openai" in result
    assert "m@b: cannot reach openai" in result


async def _run_failing() -> str:
    moa = MoA()
    try:
        await moa.run("hello")
    except Exception as exc:
        return str(exc)
    finally:
        await moa.aclose()
    return ""


def test_doctor_shows_a_model_on_several_hosts(three_hosts: list[LlamaServer]) -> None:
    import json

    from click.testing import CliRunner

    from moa_local.cli import main

    Path("models.toml").write_text(replicated_config(three_hosts))
    three_hosts[2].stop()
    text = CliRunner().invoke(main, ["doctor"])
    assert text.exit_code == 0, text.output
    assert "  tiny: one model on 3 hosts (a up, b up, c down); least loaded first" in text.stdout
    report = json.loads(CliRunner().invoke(main, ["doctor", "--json"]).stdout)
    assert report["replicated"] == {"tiny": ["a", "b", "c"]}


def test_serve_in_front_of_three_hosts_reports_each_in_api_ps(
    three_hosts: list[LlamaServer], tmp_path: Path
) -> None:
    import httpx

    from tests.serve_process import running_server

    config = tmp_path / "serve.toml"
    config.write_text(
        replicated_config(three_hosts).replace('trace_dir = "traces"', 'trace_dir = ""')
    )
    with running_server(config) as server:
        body = {"model": "moa", "messages": [{"role": "user", "content": "hi"}], "stream": False}
        assert httpx.post(f"{server.url}/api/chat", json=body, timeout=60).status_code == 200
        ps = httpx.get(f"{server.url}/api/ps", timeout=10).json()
    replicas = {r["host"]: r for r in ps["replicas"]}
    assert set(replicas) == {"a", "b", "c"}
    assert all(r["state"] == "up" and r["served"] == 1 for r in replicas.values())
    assert replicas["a"]["url"] == three_hosts[0].url
