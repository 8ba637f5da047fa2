"""The three compat styles run their users' code unchanged on echo models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from moa_local.compat.azcore_style import Agent as AzAgent
from moa_local.compat.azcore_style import MixtureOfAgents as AzMixture
from moa_local.compat.langchain_style import MoA as LangChainMoA
from moa_local.compat.proposer_style import MixtureOfAgents, ProposerConfig
from moa_local.trace import read_trace


def test_langchain_style_role_strategy_writes_traces_under_logs_moa() -> None:
    roles = json.dumps(
        [
            {"name": "Lawyer", "system_prompt": "You are a lawyer."},
            {"name": "Doctor", "system_prompt": "You are a doctor."},
        ]
    )
    moa = LangChainMoA(
        models_layer=["echo:m1", "echo:m2"],
        model_roles=f"echo:roles?reply={roles}",
        aggregator_model="echo:agg",
        nb_models_by_layer=2,
        layer=1,
        layer_strategy="role",
        temperature=0.1,
        max_tokens=512,
    )
    answer = asyncio.run(moa.run("Can I sue my doctor?"))
    assert answer == "[agg t=0.10 refs=2] Can I sue my doctor?"
    traces = list(Path("logs/moa").glob("*.jsonl"))
    assert len(traces) == 1
    events = read_trace(traces[0])
    agents = [e["agent"] for e in events if e["event"] == "proposal.done"]
    assert agents == ["Lawyer", "Doctor", "Lawyer", "Doctor"]  # layer=1: two layers


def test_langchain_style_temperature_and_model_strategies() -> None:
    moa = LangChainMoA(
        models_layer=["echo:a"],
        model_roles="echo:a",
        aggregator_model="echo:a",
        nb_models_by_layer=3,
        layer=0,
        layer_strategy="temperature",
    )
    assert asyncio.run(moa.run("Q")).endswith("Q")
    assert moa.last_result is not None
    assert len(moa.last_result.layer_history) == 1
    assert len(moa.last_result.layer_history[0]) == 3
    moa = LangChainMoA(
        models_layer=["echo:a", "echo:b", "echo:c"],
        model_roles="echo:a",
        aggregator_model="echo:a",
        nb_models_by_layer=1,
        layer=0,
        layer_strategy="model",
    )
    asyncio.run(moa.run("Q"))
    assert moa.nb_models_by_layer == 3
    assert [p.model for p in moa.last_result.layer_history[0]] == ["echo:a", "echo:b", "echo:c"]


def test_azcore_style_workflow() -> None:
    analyst = AzAgent(agent_name="Analyst", system_prompt="You analyse.", llm="echo:a")
    critic = AzAgent(agent_name="Critic", system_prompt="You criticise.", llm="echo:b?fail=down")
    writer = AzAgent(agent_name="Writer", system_prompt="You write.", llm="echo:c")
    lead = AzAgent(agent_name="Lead", system_prompt="You combine.", llm="echo:agg")
    workflow = AzMixture(
        agents=[analyst, critic, writer],
        aggregator_agent=lead,
        layers=2,
        final_agent=None,
        verbose=False,
    )
    out = workflow.run("Plan a picnic")
    assert out["final_output"] == "[agg t=0.70 refs=2] Plan a picnic"
    history = out["layer_history"]
    assert len(history) == 2
    assert history[0] == ["[a t=0.70 refs=0] Plan a picnic", "", "[c t=0.70 refs=0] Plan a picnic"]
    assert history[1][0] == "[a t=0.70 refs=2] Plan a picnic"


def test_azcore_style_with_final_agent_and_aggregator_prompt() -> None:
    lead = AzAgent(agent_name="Lead", system_prompt="You are the lead.", llm="echo:agg")
    editor = AzAgent(agent_name="Editor", system_prompt="Polish.", llm="echo:ed")
    workflow = AzMixture(
        agents=[AzAgent("A", "x", "echo:a")], aggregator_agent=lead, layers=1, final_agent=editor
    )
    out = workflow.run("T")
    assert out["final_output"].startswith("[ed ")
    aggregate = out["result"].aggregator
    assert aggregate.ok and aggregate.model == "echo:agg"


def test_proposer_style_returns_the_originals_values() -> None:
    moa = MixtureOfAgents(
        proposers=[
            ProposerConfig("coder", "echo:c", temperature=0.2),
            ProposerConfig("poet", "echo:p", system_prompt="Rhyme."),
            ProposerConfig("critic", "echo:p"),
        ],
        aggregator_model="echo:agg",
        num_layers=2,
    )
    result = asyncio.run(moa.run("Query"))
    assert isinstance(result, dict)
    assert result["final_response"] == "[agg t=0.70 refs=3] Query"
    # as the original: len(proposals) and [p.model for p in proposals] of the final layer
    assert result["num_proposals"] == 3
    assert result["models_used"] == ["echo:c", "echo:p", "echo:p"]
    assert result["layers"] == 2
    # the whole run stays available under keys the original does not use
    assert result["total_proposals"] == 6
    assert result["all_models_used"] == ["echo:c", "echo:p", "echo:agg"]
    assert [p["temperature"] for p in result["layer_history"][0]] == [0.2, 0.7, 0.7]


def test_proposer_style_counts_what_the_final_layer_produced() -> None:
    moa = MixtureOfAgents(
        proposers=[ProposerConfig("ok", "echo:a"), ProposerConfig("down", "echo:b?fail=x")],
        aggregator_model="echo:agg",
        num_layers=1,
    )
    result = asyncio.run(moa.run("Q"))
    assert result["num_proposals"] == 1 and result["models_used"] == ["echo:a"]
    assert result["layers"] == 1


AGREEING = ["echo:a?reply=42", "echo:b?reply=42"]


def layers_of_each_style(**options: object) -> dict[str, int]:
    """How many layers each style ran, two asked for, with proposers that agree."""
    langchain = LangChainMoA(
        models_layer=AGREEING,
        aggregator_model="echo:agg",
        layer=1,
        layer_strategy="model",
        **options,
    )
    asyncio.run(langchain.run("Q"))
    assert langchain.last_result is not None
    azcore = AzMixture(
        agents=[AzAgent(agent_name=m[5], llm=m) for m in AGREEING],
        aggregator_agent=AzAgent(agent_name="lead", llm="echo:agg"),
        layers=2,
        **options,
    ).run("Q")
    proposer = asyncio.run(
        MixtureOfAgents(
            proposers=[ProposerConfig(name=m[5], model=m) for m in AGREEING],
            aggregator_model="echo:agg",
            num_layers=2,
            **options,
        ).run("Q")
    )
    return {
        "langchain": len(langchain.last_result.layer_history),
        "azcore": len(azcore["layer_history"]),
        "proposer": len(proposer["layer_history"]),
    }


@pytest.mark.shipped_defaults
def test_every_style_runs_every_layer_and_synthesizes_under_the_shipped_defaults() -> None:
    # The shipped router stops a mixture whose answers agree; the originals never do.
    assert layers_of_each_style() == {"langchain": 2, "azcore": 2, "proposer": 2}


@pytest.mark.shipped_defaults
def test_an_argument_the_caller_passes_still_wins() -> None:
    assert layers_of_each_style(router="agree") == {"langchain": 1, "azcore": 1, "proposer": 1}
