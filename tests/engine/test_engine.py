"""The MoA algorithm on echo models: layers, references, failures, strategies, limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from moa_local import Agent, MoA, RunFailed
from moa_local.backends.echo import EchoBackend
from moa_local.errors import ConfigError
from moa_local.prompts import CONTINUE_REFINE, GENERIC_ROLES, REFINE, SYNTHESIZE
from moa_local.trace import read_trace
from tests.conftest import RESULT_KEYS


def make(echo: EchoBackend, **kwargs: object) -> MoA:
    kwargs.setdefault("trace_dir", "traces")
    return MoA(backends={"echo": echo}, **kwargs)  # type: ignore[arg-type]


def system_of(request: object) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "system")  # type: ignore[attr-defined]


async def test_layer_two_receives_successful_layer_one_answers(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=2)
    result = await moa.run("What is 2+2?")

    layer1 = [p.content for p in result.layer_history[0]]
    layer2_requests = [r for r in echo.stats.requests if r.tag in ("echo:a", "echo:b")][2:]
    assert len(layer2_requests) == 2
    for request in layer2_requests:
        system = system_of(request)
        assert REFINE in system
        for answer in layer1:
            assert answer in system
    aggregator_request = echo.stats.requests[-1]
    assert SYNTHESIZE in system_of(aggregator_request)
    for proposal in result.layer_history[1]:
        assert proposal.content in system_of(aggregator_request)
    assert result.final_response == "[agg t=0.70 refs=2] What is 2+2?"
    assert result.layers == 2 and result.num_proposals == 4
    assert result.models_used == ["echo:a", "echo:b", "echo:agg"]


async def test_failed_proposer_is_excluded_and_traced(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:good", "echo:bad?fail=boom"], aggregator="echo:agg", layers=2)
    result = await moa.run("Question?")

    bad = [p for layer in result.layer_history for p in layer if p.model.startswith("echo:bad")]
    assert len(bad) == 2 and all(p.error and "boom" in p.error for p in bad)
    assert all(p.content == "" for p in bad)
    # layer 2 and the aggregator saw exactly one reference: the good answer
    assert "refs=1" in result.layer_history[1][0].content
    assert "refs=1" in result.final_response
    assert "echo:bad?fail=boom" not in result.models_used
    events = read_trace(result.trace_file)
    failed = [e for e in events if e["event"] == "proposal.done" and e["error"]]
    assert len(failed) == 2 and "boom" in failed[0]["error"]


async def test_run_fails_listing_each_failure_when_too_few_succeed(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:x?fail=disk on fire", "echo:y?fail=out of memory"],
        aggregator="echo:agg",
        layers=2,
    )
    with pytest.raises(RunFailed) as caught:
        await moa.run("Question?")
    message = str(caught.value)
    assert "layer 1: 0 of 2 proposers succeeded" in message
    assert "disk on fire" in message and "out of memory" in message
    trace_files = list(Path("traces").glob("*.jsonl"))
    events = read_trace(trace_files[0])
    assert events[-1]["event"] == "run.error"


async def test_min_proposers_is_enforced_per_layer(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a", "echo:b?fail_after=2"],
        aggregator="echo:agg",
        layers=2,
        min_proposers=2,
    )
    with pytest.raises(RunFailed, match="layer 2: 1 of 2"):
        await moa.run("Question?")


async def test_model_strategy_cycles_models(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1, n=5)
    result = await moa.run("Q")
    assert [p.model for p in result.layer_history[0]] == [
        "echo:a",
        "echo:b",
        "echo:a",
        "echo:b",
        "echo:a",
    ]
    assert len({p.agent for p in result.layer_history[0]}) == 5


async def test_temperature_strategy_spreads_temperatures(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:self"],
        aggregator="echo:self",
        layers=1,
        strategy="temperature",
        n=4,
        temperature_range=(0.3, 0.9),
    )
    result = await moa.run("Q")
    temps = [p.temperature for p in result.layer_history[0]]
    assert temps == [0.3, 0.5, 0.7, 0.9]
    assert {p.model for p in result.layer_history[0]} == {"echo:self"}
    assert [
        f"t={t:.2f}" in p.content for t, p in zip(temps, result.layer_history[0], strict=True)
    ] == [True] * 4


async def test_role_strategy_uses_roles_written_by_the_role_model(echo: EchoBackend) -> None:
    roles = json.dumps(
        [
            {"name": "Chemist", "system_prompt": "You are a chemist."},
            {"name": "Poet", "system_prompt": "You are a poet."},
        ]
    )
    moa = make(
        echo,
        proposers=["echo:a", "echo:b"],
        aggregator="echo:agg",
        layers=2,
        strategy="role",
        n=2,
        role_model=f"echo:roles?reply={roles}",
    )
    result = await moa.run("Why is water wet?")
    assert [p.agent for p in result.layer_history[0]] == ["Chemist", "Poet"]
    # each role keeps its perspective in the refinement layer
    layer2 = [r for r in echo.stats.requests if r.tag in ("Chemist", "Poet")][2:]
    assert system_of(layer2[0]).startswith("You are a chemist.")
    assert system_of(layer2[1]).startswith("You are a poet.")
    event = next(e for e in read_trace(result.trace_file) if e["event"] == "roles.generated")
    assert event["outcome"] == "ok"


async def test_malformed_role_json_falls_back_to_generic_roles(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a"],
        aggregator="echo:agg",
        layers=1,
        strategy="role",
        n=3,
        role_model="echo:roles?reply=I cannot do JSON, sorry",
    )
    result = await moa.run("Q")
    assert [p.agent for p in result.layer_history[0]] == [n for n, _ in GENERIC_ROLES[:3]]
    event = next(e for e in read_trace(result.trace_file) if e["event"] == "roles.generated")
    assert event["outcome"] == "fallback"
    assert "no JSON" in event["detail"]


async def test_failing_role_model_falls_back_and_is_traced(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a"],
        aggregator="echo:agg",
        layers=1,
        strategy="role",
        n=2,
        role_model="echo:roles?fail=crashed",
    )
    result = await moa.run("Q")
    assert len(result.layer_history[0]) == 2
    event = next(e for e in read_trace(result.trace_file) if e["event"] == "roles.generated")
    assert event["outcome"] == "fallback" and "crashed" in event["detail"]


async def test_explicit_agents_keep_their_system_prompts(echo: EchoBackend) -> None:
    agents = [
        Agent("optimist", "Look on the bright side.", "echo:a", temperature=0.1),
        Agent("pessimist", "Expect the worst.", "echo:b", temperature=0.9),
    ]
    moa = make(echo, proposers=agents, aggregator="echo:agg", layers=2)
    result = await moa.run("Will it rain?")
    assert [(p.agent, p.temperature) for p in result.layer_history[1]] == [
        ("optimist", 0.1),
        ("pessimist", 0.9),
    ]
    layer2 = [r for r in echo.stats.requests if r.tag in ("optimist", "pessimist")][2:]
    assert system_of(layer2[0]).startswith("Look on the bright side.")
    assert system_of(layer2[1]).startswith("Expect the worst.")


async def test_long_references_are_shortened_proportionally(echo: EchoBackend) -> None:
    long_a = " ".join(f"alpha{i}" for i in range(280))
    long_b = " ".join(f"beta{i}" for i in range(140))
    moa = make(
        echo,
        proposers=[f"echo:a?reply={long_a}", f"echo:b?reply={long_b}"],
        aggregator="echo:agg?n_ctx=600",
        layers=1,
        max_tokens=300,
    )
    result = await moa.run("Summarize.")
    request = echo.stats.requests[-1]
    system = system_of(request)
    words = sum(len(m["content"].split()) for m in request.messages)
    assert words + request.max_tokens <= 600  # never sent an over-long prompt
    kept_a = [w for w in system.split() if w.startswith("alpha")]
    kept_b = [w for w in system.split() if w.startswith("beta")]
    assert kept_a[0] == "alpha0" and kept_b[0] == "beta0"  # beginnings kept
    assert 0 < len(kept_b) < 140 and 0 < len(kept_a) < 280
    assert abs(len(kept_a) / 280 - len(kept_b) / 140) < 0.05  # same share each
    assert result.aggregator.references_shortened
    events = read_trace(result.trace_file)
    shortened = [e for e in events if e["event"] == "references.shortened"]
    assert shortened and shortened[0]["model"] == "echo:agg?n_ctx=600"


async def test_prompt_larger_than_context_is_a_proposal_error(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:small?n_ctx=40", "echo:big"], aggregator="echo:big", layers=1)
    result = await moa.run(" ".join(["word"] * 100))
    small = result.layer_history[0][0]
    assert small.error and "context" in small.error
    assert result.layer_history[0][1].ok


async def test_timeout_becomes_a_proposal_error(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:slow?delay=30", "echo:fast"],
        aggregator="echo:fast",
        layers=1,
        timeout=0.2,
    )
    result = await moa.run("Q")
    slow = result.layer_history[0][0]
    assert slow.error and "0.2 s" in slow.error
    assert echo.stats.in_flight == 0


async def test_cancellation_stops_everything_and_leaves_a_valid_trace(echo: EchoBackend) -> None:
    moa = make(
        echo, proposers=["echo:a?delay=30", "echo:b?delay=30"], aggregator="echo:agg", layers=2
    )
    task = asyncio.create_task(moa.run("Q"))
    while echo.stats.in_flight < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert echo.stats.in_flight == 0
    assert echo.stats.cancelled == 2
    events = read_trace(next(Path("traces").glob("*.jsonl")))
    assert events[0]["event"] == "run.start"
    assert events[-1]["event"] == "run.error" and events[-1]["kind"] == "cancelled"


async def test_proposers_of_one_layer_run_concurrently(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a?delay=0.05", "echo:b?delay=0.05", "echo:c?delay=0.05"],
        aggregator="echo:agg",
        layers=1,
    )
    await moa.run("Q")
    assert echo.stats.max_in_flight == 3


async def test_local_device_pool_runs_one_model_at_a_time(echo: EchoBackend) -> None:
    Path("models.toml").write_text("[resources]\ncpu_slots = 1\n")
    moa = make(
        echo,
        proposers=["echo:a?delay=0.05&slot=1", "echo:b?delay=0.05&slot=1"],
        aggregator="echo:agg",
        layers=1,
    )
    await moa.run("Q")
    assert echo.stats.max_in_flight == 1


async def test_stream_yields_text_then_result(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1)
    pieces: list[str] = []
    result = None
    async for item in moa.stream("hello there"):
        if isinstance(item, str):
            pieces.append(item)
        else:
            result = item
    assert result is not None
    assert len(pieces) > 1
    assert "".join(pieces) == result.final_response


async def test_final_agent_rewrites_the_aggregate(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a"],
        aggregator="echo:agg",
        layers=1,
        final_agent=Agent("editor", "Polish it.", "echo:editor"),
    )
    result = await moa.run("Q")
    assert result.final_agent is not None
    assert result.final_response.startswith("[editor")
    request = echo.stats.requests[-1]
    assert system_of(request) == "Polish it."
    assert result.aggregator.content in request.messages[-1]["content"]


async def test_auto_aggregator_picks_the_largest_model(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:small?params=1e8", "echo:large?params=9e8"],
        aggregator="auto",
        layers=1,
    )
    result = await moa.run("Q")
    assert result.aggregator.model == "echo:large?params=9e8"


async def test_result_reads_like_a_dict(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1)
    result = await moa.run("Q")
    data = result.to_dict()
    for key in RESULT_KEYS:
        assert result[key] == data[key]
    assert (
        data["usage"]["total_tokens"]
        == (data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"])
        > 0
    )
    json.dumps(data)


def test_run_sync_twice_reuses_the_moa(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1)
    first = moa.run_sync("one")
    second = moa.run_sync("two")
    assert first.final_response.endswith("one") and second.final_response.endswith("two")
    assert first.run_id != second.run_id


async def test_references_stay_whole_when_only_the_answer_budget_is_large(
    echo: EchoBackend,
) -> None:
    answer = " ".join(f"w{i}" for i in range(100))
    moa = make(
        echo,
        proposers=[f"echo:a?reply={answer}", f"echo:b?reply={answer}"],
        aggregator="echo:agg?n_ctx=4096",
        layers=1,
        max_tokens=4096,
    )
    result = await moa.run("Q")
    assert not result.aggregator.references_shortened
    request = echo.stats.requests[-1]
    assert system_of(request).count(answer) == 2
    words = sum(len(m["content"].split()) for m in request.messages)
    assert words + request.max_tokens <= 4096  # the answer budget gave way instead


async def test_trace_lines_are_on_disk_while_the_run_is_going(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a", "echo:slow?delay=30"], aggregator="echo:agg", layers=1)
    task = asyncio.create_task(moa.run("Q"))
    while echo.stats.in_flight < 1 or not list(Path("traces").glob("*.jsonl")):
        await asyncio.sleep(0.01)
    for _ in range(200):  # the fast proposer's line arrives while the slow one still runs
        events = [e["event"] for e in read_trace(next(Path("traces").glob("*.jsonl")))]
        if "proposal.done" in events:
            break
        await asyncio.sleep(0.01)
    assert events[:2] == ["run.start", "layer.start"] and "proposal.done" in events
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_echo_options_are_checked_before_the_run(echo: EchoBackend) -> None:
    from moa_local import ModelError

    with pytest.raises(ModelError, match="echo option delay='abc'"):
        make(echo, proposers=["echo:a"], aggregator="echo:agg?delay=abc").prepare()
    with pytest.raises(ModelError, match="unknown echo option 'dealy'"):
        make(echo, proposers=["echo:a?dealy=1"]).prepare()


async def test_each_run_gets_its_own_seed_unless_one_is_set(echo: EchoBackend) -> None:
    def seeds(moa: MoA) -> list[int | None]:
        return [r.seed for r in echo.stats.requests[-2:]]

    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1)
    first = await moa.run("Q")
    first_seeds = [r.seed for r in echo.stats.requests[:2]]
    second = await moa.run("Q")
    start = next(e for e in read_trace(first.trace_file) if e["event"] == "run.start")
    assert first_seeds == [start["seed"], start["seed"] + 1]  # one per agent
    again = next(e for e in read_trace(second.trace_file) if e["event"] == "run.start")
    assert again["seed"] != start["seed"]
    fixed = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1, seed=42)
    await fixed.run("Q")
    assert seeds(fixed) == [42, 42]  # the proposer and the aggregator, each at offset 0


async def test_continue_layout_keeps_each_agent_in_its_own_chat(echo: EchoBackend) -> None:
    moa = make(
        echo,
        proposers=["echo:a", "echo:b", "echo:c"],
        aggregator="echo:agg",
        layers=2,
        layout="continue",
    )
    result = await moa.run("What is 2+2?")

    layer1 = result.layer_history[0]
    first_requests = echo.stats.requests[:3]
    layer2_requests = echo.stats.requests[3:6]
    for index, request in enumerate(layer2_requests):
        roles = [m["role"] for m in request.messages]
        assert roles == ["system", "user", "assistant", "user"]
        # the chat so far is exactly the agent's layer-1 request and its answer
        assert tuple(request.messages[:2]) == tuple(first_requests[index].messages)
        assert request.messages[2]["content"] == layer1[index].content
        others = [p.content for i, p in enumerate(layer1) if i != index]
        last = request.messages[3]["content"]
        assert CONTINUE_REFINE in last
        assert all(other in last for other in others)
        assert layer1[index].content not in last
    # the aggregator still sees every layer-2 answer as a reference
    aggregator_system = system_of(echo.stats.requests[-1])
    assert all(p.content in aggregator_system for p in result.layer_history[1])


async def test_continue_layout_shows_all_answers_to_an_agent_whose_own_failed(
    echo: EchoBackend,
) -> None:
    moa = make(
        echo,
        proposers=["echo:a", "echo:b", "echo:bad?fail=boom"],
        aggregator="echo:agg",
        layers=2,
        layout="continue",
    )
    result = await moa.run("Question?")
    good = [p.content for p in result.layer_history[0] if p.ok]
    assert len(good) == 2
    continuing, _, fresh = echo.stats.requests[3:6]
    # an agent with its own answer continues and sees only the other success;
    # the failed agent has no chat to continue and sees every success
    assert [m["role"] for m in continuing.messages] == ["system", "user", "assistant", "user"]
    assert good[1] in continuing.messages[3]["content"]
    assert [m["role"] for m in fresh.messages] == ["system", "user"]
    assert all(answer in system_of(fresh) for answer in good)


async def test_chat_history_and_system_reach_every_proposer_and_the_aggregator(
    echo: EchoBackend,
) -> None:
    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=2)
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
    ]
    await moa.run("What is my name?", history=history, system="Answer like a pirate.")
    assert len(echo.stats.requests) == 5
    for request in echo.stats.requests:
        # system, the earlier turns as chat turns (not flattened), then the question
        assert [m["role"] for m in request.messages] == ["system", "user", "assistant", "user"]
        assert list(request.messages[1:3]) == history
        assert request.messages[-1]["content"] == "What is my name?"
        assert system_of(request).startswith("Answer like a pirate.")


async def test_a_turn_with_an_unknown_role_is_refused(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1)
    with pytest.raises(ConfigError, match="role must be user or assistant"):
        await moa.run("Hi", history=[{"role": "tool", "content": "x"}])


async def test_request_settings_replace_the_configured_ones_for_one_run(
    echo: EchoBackend,
) -> None:
    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1)
    result = await moa.run("one two three four", temperature=0.3, max_tokens=3, seed=11)
    assert all(r.max_tokens <= 3 for r in echo.stats.requests)
    # the temperature is the answer's: the aggregator's; proposers keep the preset's
    assert echo.stats.requests[-1].temperature == pytest.approx(0.3)
    assert echo.stats.requests[0].temperature == pytest.approx(0.7)
    assert sorted(r.seed for r in echo.stats.requests) == [11, 11, 12]
    assert len(result.final_response.split()) == 3
    # the next run is back to the configured settings
    await moa.run("again")
    assert echo.stats.requests[-1].max_tokens > 3


async def test_stop_strings_end_the_final_answer_only(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a"], aggregator="echo:agg", layers=1)
    streamed: list[str] = []
    result = await moa.run("alpha STOP beta", streamed.append, stop=["STOP"])
    aggregator_request = echo.stats.requests[-1]
    assert aggregator_request.stop == ("STOP",)
    assert echo.stats.requests[0].stop == ()
    assert "STOP" not in result.final_response and "beta" not in result.final_response
    assert "alpha" in result.final_response


async def test_live_observers_see_every_agent_stream(echo: EchoBackend) -> None:
    moa = make(echo, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1)
    events: list[tuple[str, dict]] = []
    result = await moa.run("hello there", observers=[lambda e, r: events.append((e, r))], live=True)
    text: dict[str, str] = {}
    for event, record in events:
        if event == "proposal.delta":
            text[record["agent"]] = text.get(record["agent"], "") + record["text"]
    assert text == {p.agent: p.content for p in result.layer_history[0]}
    aggregate = "".join(r["text"] for e, r in events if e == "aggregate.delta")
    assert aggregate == result.final_response
    # without live, observers get the trace events only
    events.clear()
    await moa.run("hello there", observers=[lambda e, r: events.append((e, r))])
    assert events and not any(e.endswith(".delta") for e, _ in events)
    # and no trace file holds a delta
    for path in Path("traces").glob("*.jsonl"):
        assert not any(e["event"].endswith(".delta") for e in read_trace(path))


BROKEN = "```python\ndef add(a, b):\n    return [a +\n```"
WHOLE = "```python\ndef add(a, b):\n    return a + b\n```"


async def test_an_aggregate_whose_program_cannot_parse_gives_way_to_a_whole_candidate(
    echo: EchoBackend,
) -> None:
    from urllib.parse import quote

    moa = make(
        echo,
        proposers=[f"echo:greedy?reply={quote(WHOLE)}", "echo:other?reply=no%20code%20here"],
        aggregator=f"echo:agg?reply={quote(BROKEN)}",
        layers=1,
    )
    streamed: list[str] = []
    result = await moa.run("Write a Python function add(a, b).", streamed.append)
    assert result.final_response == WHOLE
    assert result.code == "def add(a, b):\n    return a + b"
    (decision,) = [d for d in result.decisions if d["event"] == "aggregate.fallback"]
    assert decision["chosen"] == "echo:greedy?reply=" + quote(WHOLE)
    assert "does not parse" in decision["reason"]
    # what streamed ends with the note and the program that is returned
    assert "".join(streamed).endswith(WHOLE) and "does not parse" in "".join(streamed)


async def test_a_parsing_aggregate_and_a_text_answer_are_kept(echo: EchoBackend) -> None:
    from urllib.parse import quote

    moa = make(
        echo,
        proposers=[f"echo:greedy?reply={quote(BROKEN)}"],
        aggregator=f"echo:agg?reply={quote(WHOLE)}",
        layers=1,
    )
    result = await moa.run("Write a Python function add(a, b).")
    assert result.final_response == WHOLE and not result.decisions
    text = make(echo, proposers=["echo:a"], aggregator=f"echo:agg?reply={quote(BROKEN)}", layers=1)
    answer = await text.run("Tell me about rivers.")
    assert answer.final_response == BROKEN  # not a code question: nothing is checked
