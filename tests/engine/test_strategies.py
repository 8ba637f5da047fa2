"""Task-aware aggregation, Self-MoA-Seq windows, the router and verified aggregation,
on echo models whose answers are scripted per agent."""

from __future__ import annotations

from typing import Any

import pytest

from moa_local import MoA
from moa_local.backends.base import GenerateRequest
from moa_local.backends.echo import EchoBackend
from moa_local.config import apply_overrides, load_config
from moa_local.prompts import CODE_REFINE, CODE_SYNTHESIZE, SYNTHESIZE
from moa_local.trace import read_trace

QUESTION = (
    "Complete this function.\n```python\ndef add_one(x):\n"
    '    """Return x plus one.\n    >>> add_one(1)\n    2\n    """\n```'
)
RIGHT = "```python\ndef add_one(x):\n    return x + 1\n```"
WRONG = "```python\ndef add_one(x):\n    return x + 2\n```"
RIGHT_AGAIN = "Here it is:\n```python\ndef add_one(x):\n    # increment\n    return x + 1\n```"


class Scripted(EchoBackend):
    """Echo models whose answer is looked up by model name (``echo:NAME``) and role."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__()
        self.replies = replies

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        name = request.model.name.removeprefix("echo:")
        return self.replies.get(f"{name}:{request.tag}") or self.replies.get(
            name, super().answer(request)
        )


def make(backend: EchoBackend, **kwargs: Any) -> MoA:
    kwargs.setdefault("trace_dir", "traces")
    return MoA(backends={"echo": backend}, **kwargs)


def system_of(request: GenerateRequest) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "system")


def events(result: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in read_trace(result.trace_file) if e["event"] == name]


async def test_code_question_gets_code_prompts_and_extracted_program() -> None:
    backend = Scripted({"a": RIGHT, "b": WRONG, "agg": "Best version:\n" + RIGHT + "\nDone."})
    moa = make(backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=2)
    result = await moa.run(QUESTION)
    refine_requests = [r for r in backend.stats.requests if r.tag in ("echo:a", "echo:b")][2:]
    assert all(CODE_REFINE in system_of(r) for r in refine_requests)
    assert CODE_SYNTHESIZE in system_of(backend.stats.requests[-1])
    assert result.code == "def add_one(x):\n    return x + 1"
    assert events(result, "run.start")[0]["task"] == "code"


async def test_text_question_keeps_prose_synthesis() -> None:
    backend = Scripted({})
    moa = make(backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1)
    result = await moa.run("Why is the sky blue?")
    assert SYNTHESIZE in system_of(backend.stats.requests[-1])
    assert result.code is None


async def test_self_moa_seq_aggregates_in_windows() -> None:
    backend = Scripted({})
    moa = make(
        backend,
        proposers=["echo:m"],
        strategy="temperature",
        n=5,
        layers=1,
        aggregator="echo:m",
        config=apply_overrides(load_config(), {"aggregate_window": 2}),
    )
    result = await moa.run("Tell me about owls.")
    aggregations = [r for r in backend.stats.requests if r.tag == "aggregator"]
    # 5 answers, 2 at a time: [1,2] -> s1; [s1,3] -> s2; [s2,4] -> s3; [s3,5] -> final
    assert len(aggregations) == 4
    assert all(system_of(r).count("Response ") == 2 for r in aggregations)
    windows = events(result, "aggregate.window")
    assert [w["step"] for w in windows] == [1, 2, 3, 4]
    assert "refs=2" in result.final_response


async def test_router_stops_when_answers_agree() -> None:
    backend = Scripted({"a": RIGHT, "b": RIGHT_AGAIN})
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=3, router="agree"
    )
    result = await moa.run(QUESTION)
    assert len(result.layer_history) == 1
    assert not [r for r in backend.stats.requests if r.tag == "aggregator"]
    decision = events(result, "router.decision")[-1]
    assert decision["action"] == "stop" and "same program" in decision["reason"]
    assert result.decisions[-1]["action"] == "stop"
    assert result.final_response in (RIGHT, RIGHT_AGAIN)


async def test_router_continues_when_answers_differ() -> None:
    backend = Scripted({"a": RIGHT, "b": WRONG, "agg": RIGHT})
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=2, router="agree"
    )
    result = await moa.run(QUESTION)
    assert len(result.layer_history) == 2
    actions = [d["action"] for d in events(result, "router.decision")]
    assert actions == ["continue", "continue"]


async def test_router_sends_a_simple_question_to_the_aggregator_alone() -> None:
    backend = Scripted({})
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=2, router="on"
    )
    result = await moa.run("What is the capital of France?")
    assert [r.model.name for r in backend.stats.requests] == ["echo:agg"]
    assert result.layer_history == []
    decision = events(result, "router.decision")[0]
    assert decision["action"] == "single" and "simple question" in decision["reason"]
    assert result.final_response.startswith("[agg")


async def test_single_plan_is_one_call_with_the_proposer_prompt() -> None:
    backend = Scripted({"m": RIGHT})
    moa = make(backend, proposers=["echo:m"], aggregator="echo:m", layers=1, single=True)
    result = await moa.run(QUESTION)
    assert len(backend.stats.requests) == 1
    assert "expert programmer" in system_of(backend.stats.requests[0])
    assert result.code == "def add_one(x):\n    return x + 1"


async def test_verify_keeps_the_candidate_that_passes() -> None:
    # The aggregator writes a wrong program; verification tests every candidate
    # against the question's example and the written tests, and keeps the right one.
    backend = Scripted(
        {
            "a": WRONG,
            "b": RIGHT,
            "agg": WRONG,
            "agg:tests": "```python\nassert add_one(5) == 6\nassert add_one(1) == 2\n```",
        }
    )
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1, verify=True
    )
    result = await moa.run(QUESTION)
    assert result.code == "def add_one(x):\n    return x + 1"
    question, written = (e["tests"] for e in events(result, "verify.tests"))
    assert question == [{"source": "assert add_one(1) == 2", "example": True}]
    # a written test that repeats an example is kept once, as the example
    assert written == [*question, {"source": "assert add_one(5) == 6", "example": False}]
    layer = events(result, "verify.layer")[0]["results"]
    assert layer[0]["passed"] == [False, False] and layer[1]["passed"] == [True, True]
    chosen = events(result, "verify.selected")[0]
    assert chosen["chosen"] == "echo:b" and "passed 2 of 2" in chosen["reason"]


async def test_verify_with_router_stops_at_the_first_candidate_passing_the_examples() -> None:
    backend = Scripted({"a": WRONG, "b": RIGHT, "c": WRONG})
    moa = make(
        backend,
        proposers=["echo:a", "echo:b", "echo:c"],
        aggregator="echo:agg",
        layers=2,
        verify=True,
        router="agree",
    )
    result = await moa.run(QUESTION)
    # echo:a fails the example, echo:b passes it: echo:c, layer 2, the aggregator and
    # the test writer are never asked.
    assert [r.tag for r in backend.stats.requests] == ["echo:a", "echo:b"]
    assert [len(layer) for layer in result.layer_history] == [2]
    assert result.final_response == RIGHT
    decision = events(result, "router.decision")[0]
    assert decision["action"] == "stop" and decision["reason"] == "echo:b passed 1 of 1 tests"


async def test_without_examples_the_written_tests_must_all_pass_to_stop() -> None:
    question = "Write a Python function add_one(x) that returns x plus one."
    backend = Scripted(
        {
            "a": WRONG,
            "b": RIGHT,
            "agg:tests": "```python\nassert add_one(1) == 2\nassert add_one(-1) == 0\n```",
        }
    )
    moa = make(
        backend,
        proposers=["echo:a", "echo:b"],
        aggregator="echo:agg",
        layers=1,
        verify=True,
        router="agree",
    )
    result = await moa.run(question)
    assert [r.tag for r in backend.stats.requests] == ["echo:a", "tests", "echo:b"]
    assert result.final_response == RIGHT
    assert events(result, "router.decision")[0]["reason"] == "echo:b passed 2 of 2 tests"


async def test_verify_tells_the_aggregator_which_tests_passed() -> None:
    backend = Scripted({"a": WRONG, "b": RIGHT, "agg": RIGHT, "agg:tests": "no asserts here"})
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1, verify=True
    )
    await moa.run(QUESTION)
    system = system_of(next(r for r in backend.stats.requests if r.tag == "aggregator"))
    assert "[Tests: passed 0 of 1 tests; failed: assert add_one(1) == 2]" in system
    assert "[Tests: passed 1 of 1 tests]" in system


async def test_verify_is_skipped_for_text_questions() -> None:
    backend = Scripted({})
    moa = make(
        backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", layers=1, verify=True
    )
    result = await moa.run("Why is the sky blue?")
    assert not events(result, "verify.tests")
    assert not [r for r in backend.stats.requests if r.tag == "tests"]


async def test_self_moa_seq_starts_by_itself_when_candidates_do_not_fit() -> None:
    long_answer = " ".join(f"word{i}" for i in range(120))
    backend = Scripted({"m": long_answer})
    moa = make(
        backend,
        proposers=["echo:m"],
        strategy="temperature",
        n=4,
        layers=1,
        aggregator="echo:agg?n_ctx=600",
        max_tokens=100,
    )
    result = await moa.run("Tell me about owls.")
    aggregations = [r for r in backend.stats.requests if r.tag == "aggregator"]
    assert len(aggregations) > 1
    assert all(system_of(r).count("Response ") < 4 for r in aggregations)
    assert not [e for e in events(result, "references.shortened") if e["agent"] == "aggregator"]


ESSAY = "Write a haiku about rain. Do not use the letter e."


async def test_select_returns_the_candidate_the_aggregator_names() -> None:
    backend = Scripted({"a": "Drops on a tin roof", "b": "Rain falls on a hill", "agg": "2"})
    moa = make(backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", aggregate="select")
    result = await moa.run(ESSAY)
    assert result.final_response == "Rain falls on a hill"
    (selector,) = [r for r in backend.stats.requests if r.tag == "select"]
    assert selector.max_tokens == 8 and selector.temperature == 0.0
    shown = selector.messages[-1]["content"]
    assert "Candidate 1:\nDrops on a tin roof" in shown and "Candidate 2:\nRain falls" in shown
    assert not [r for r in backend.stats.requests if r.tag == "aggregator"]
    decision = events(result, "aggregate.select")[0]
    assert decision["chosen"] == "echo:b" and "candidate 2 of 2" in decision["reason"]


async def test_select_keeps_the_strongest_answer_when_the_reply_names_none() -> None:
    strong, weak = "a?params=2000000000", "b?params=500000000"
    backend = Scripted({strong: "Drops on a tin roof", weak: "Rain falls", "agg": "both fine"})
    moa = make(
        backend,
        proposers=[f"echo:{weak}", f"echo:{strong}"],
        aggregator="echo:agg",
        aggregate="select",
    )
    result = await moa.run(ESSAY)
    assert result.final_response == "Drops on a tin roof"
    reason = events(result, "aggregate.select")[0]["reason"]
    assert "names no candidate" in reason and "strongest" in reason


async def test_auto_takes_the_consensus_of_text_and_votes_on_programs() -> None:
    backend = Scripted({"a": WRONG, "b": RIGHT, "c": RIGHT_AGAIN, "agg": "```python\nx\n```"})
    moa = make(
        backend, proposers=["echo:a", "echo:b", "echo:c"], aggregator="echo:agg", aggregate="auto"
    )
    coded = await moa.run(QUESTION)
    # A program is never rewritten: no aggregator runs, a candidate is returned as written.
    assert not [r for r in backend.stats.requests if r.tag == "aggregator"]
    assert coded.final_response == RIGHT  # b and c give one program, b is the greedier
    assert events(coded, "aggregate.vote") and not events(coded, "aggregate.select")
    text = await moa.run(ESSAY)
    assert events(text, "aggregate.consensus") and not events(text, "aggregate.select")


AUTO = {"strategy": "model", "layers": 1, "aggregate": "auto"}


async def test_auto_votes_when_the_candidates_state_short_answers() -> None:
    replies = {"a": "Counting: 8.\nAnswer: 8", "b": "Adding: 7.\nAnswer: seven", "c": "Answer: 7"}
    backend = Scripted({**replies, "agg": "1"})
    moa = make(backend, proposers=["echo:a", "echo:b", "echo:c"], aggregator="echo:agg", **AUTO)
    result = await moa.run("What is 3 + 4? End with 'Answer: N'.")
    assert result.final_response == replies["b"]  # b and c agree; b is the greedier
    assert not [r for r in backend.stats.requests if r.tag == "aggregator"]
    assert events(result, "aggregate.auto")[0] == {
        **events(result, "aggregate.auto")[0],
        "kind": "checkable",
        "chooser": "vote",
    }
    # One candidate in three stating a short answer is not enough: free text, whose
    # consensus is a (its words "answer" and "7" are what the others share most).
    prose = {"a": "Answer: 7", "b": "Seven, since 3 and 4 make 7.", "c": "It is 7, clearly."}
    picked = await make(
        Scripted({**prose, "agg": "2"}),
        proposers=["echo:a", "echo:b", "echo:c"],
        aggregator="echo:agg",
        **AUTO,
    ).run("What is 3 + 4?")
    assert events(picked, "aggregate.auto")[0]["kind"] == "text"
    assert picked.final_response == prose["a"]


async def test_a_stop_string_cuts_a_selected_answer() -> None:
    backend = Scripted({"a": "Drops on a tin roof", "b": "Rain falls. STOP here", "agg": "2"})
    moa = make(backend, proposers=["echo:a", "echo:b"], aggregator="echo:agg", aggregate="select")
    result = await moa.run(ESSAY, stop=["STOP"])
    assert result.final_response == "Rain falls. "
    assert result.aggregator.content == "Rain falls. STOP here"


class InTurn(EchoBackend):
    """One echo model whose proposals are ``replies`` in the order they are asked for."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies
        self.proposals = 0

    def answer(self, request: GenerateRequest) -> str:  # type: ignore[override]
        if request.tag in ("aggregator", "tests"):
            return WRONG if request.tag == "aggregator" else "no asserts"
        self.proposals += 1
        return self.replies[min(self.proposals, len(self.replies)) - 1]


def sampled(backend: EchoBackend, **settings: Any) -> MoA:
    return make(
        backend,
        proposers=["echo:x"],
        aggregator="echo:x",
        strategy="temperature",
        num_proposers=3,
        layers=1,
        verify=True,
        router="agree",
        **settings,
    )


async def test_more_samples_are_drawn_until_one_passes_the_examples() -> None:
    backend = InTurn([WRONG, WRONG, WRONG, WRONG, RIGHT, RIGHT])
    result = await sampled(backend, verify_samples=3, verify_stop="never").run(QUESTION)
    assert result.final_response == RIGHT
    assert backend.proposals == 5  # the three agents, then two more samples: the second passed
    decision = events(result, "router.decision")[-1]
    assert decision["action"] == "stop" and decision["reason"].endswith("+2 passed 1 of 1 tests")
    extra = [r for r in backend.stats.requests if r.tag.endswith(("+1", "+2"))]
    hottest = max(r.temperature for r in backend.stats.requests[:3])
    assert hottest >= 0.7 and [r.temperature for r in extra] == [hottest, hottest]
    assert len({r.seed for r in backend.stats.requests if r.tag.startswith("echo:x")}) == 5


# add_one(1) returns 3 here too, written another way: the same behaviour as WRONG.
WRONG_ALIKE = "```python\ndef add_one(value):\n    value += 1\n    return value + 1\n```"
WRONG_OTHER = "```python\ndef add_one(x):\n    return x * 5\n```"


async def test_the_cascade_stops_drawing_when_a_sample_fails_as_an_earlier_one_did() -> None:
    backend = InTurn([WRONG, WRONG_OTHER, WRONG_ALIKE, RIGHT])
    result = await sampled(backend, verify_samples=3, verify_stop="repeat").run(QUESTION)
    # The third sample returns 3 for add_one(1), as the first did: no fourth is drawn.
    assert backend.proposals == 3
    [stop] = [e for e in events(result, "router.decision") if e["action"] == "stop drawing"]
    assert stop["reason"].startswith("sample 3 fails the examples exactly as sample 1")


async def test_the_cascade_stops_when_two_samples_in_a_row_pass_no_example() -> None:
    backend = InTurn([WRONG, WRONG_OTHER, RIGHT])
    result = await sampled(backend, verify_samples=3, verify_stop="stalled").run(QUESTION)
    assert backend.proposals == 2
    [stop] = [e for e in events(result, "router.decision") if e["action"] == "stop drawing"]
    assert stop["reason"] == "samples 1 and 2 pass none of the examples"


async def test_samples_that_fail_differently_keep_the_cascade_drawing() -> None:
    backend = InTurn([WRONG, WRONG_OTHER, "```python\ndef add_one(x):\n    return 0\n```", RIGHT])
    result = await sampled(backend, verify_samples=3, verify_stop="repeat").run(QUESTION)
    assert backend.proposals == 4 and result.final_response == RIGHT


async def test_each_program_runs_once_against_the_same_tests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moa_local.checks import program_tests

    runs: list[str | None] = []
    real = program_tests.run_tests

    async def counted(index: int, code: str | None, tests: Any) -> Any:
        runs.append(code)
        return await real(index, code, tests)

    monkeypatch.setattr(program_tests, "run_tests", counted)
    backend = InTurn([WRONG, WRONG_OTHER, WRONG])
    await sampled(backend, verify_samples=0).run(QUESTION)
    # The cascade, the references' notes and the final choice all ask about the same
    # two programs (and the aggregate, WRONG again): each ran once.
    assert sorted(set(runs), key=runs.index) == runs and len(runs) == 2


async def test_auto_rewrites_nothing_when_no_sample_passes_the_examples() -> None:
    backend = InTurn([WRONG_OTHER, WRONG, WRONG_OTHER])
    result = await sampled(backend, verify_samples=0, aggregate="auto").run(QUESTION)
    assert "aggregator" not in [r.tag for r in backend.stats.requests]
    [selected] = events(result, "verify.selected")
    assert selected["chosen"] == "echo:x@0.30" and "aggregate" not in selected["reason"]
    assert result.final_response == WRONG_OTHER
    # With synthesize the aggregator writes its own program, which competes (and ties win).
    synthesized = InTurn([WRONG_OTHER, WRONG, WRONG_OTHER])
    result = await sampled(synthesized, verify_samples=0, aggregate="synthesize").run(QUESTION)
    assert "aggregator" in [r.tag for r in synthesized.stats.requests]


async def test_no_more_samples_when_turned_off_or_without_examples() -> None:
    off = InTurn([WRONG])
    result = await sampled(off, verify_samples=0, verify_stop="never").run(QUESTION)
    assert off.proposals == 3 and result.final_response == WRONG
    no_examples = InTurn([WRONG])
    await sampled(no_examples, verify_samples=3).run(
        "Write a Python function add_one(x) that returns x plus one."
    )
    assert no_examples.proposals == 3  # written tests are not trusted enough to sample on
