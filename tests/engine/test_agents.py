"""Strategies' helpers and the repair of role-model replies."""

from __future__ import annotations

import json

from moa_local.agents import by_model, parse_roles, spread
from moa_local.prompts import GENERIC_ROLES


def test_spread_is_even_and_inclusive() -> None:
    assert spread(0.3, 1.0, 3) == [0.3, 0.65, 1.0]
    assert spread(0.3, 1.0, 1) == [0.65]


def test_by_model_names_repeats_uniquely() -> None:
    agents = by_model(["a", "b"], 3, 0.5)
    assert [a.name for a in agents] == ["a#1", "b#1", "a#2"]


def test_well_formed_roles() -> None:
    reply = json.dumps(
        [{"name": "A", "system_prompt": "Be A."}, {"name": "B", "system_prompt": "Be B."}]
    )
    parsed = parse_roles(reply, 2)
    assert parsed.outcome == "ok" and parsed.roles == [("A", "Be A."), ("B", "Be B.")]


def test_roles_in_fences_with_prose_and_other_keys_are_repaired() -> None:
    reply = (
        'Sure! Here are the roles:\n```json\n{"roles": [{"Role": "Historian", '
        '"Prompt": "You are a historian."}, {"name": "Economist"}]}\n```\nHope it helps.'
    )
    parsed = parse_roles(reply, 2)
    assert parsed.outcome == "repaired"
    assert parsed.roles[0] == ("Historian", "You are a historian.")
    assert parsed.roles[1][0] == "Economist" and "Economist" in parsed.roles[1][1]


def test_too_few_roles_are_topped_up_with_generic_ones() -> None:
    parsed = parse_roles('[{"name": "Only", "system_prompt": "One."}]', 3)
    assert parsed.outcome == "repaired"
    assert parsed.roles[0] == ("Only", "One.")
    assert [name for name, _ in parsed.roles[1:]] == [GENERIC_ROLES[0][0], GENERIC_ROLES[1][0]]
    assert "got 1 usable roles of 3" in parsed.detail


def test_garbage_falls_back_to_generic_roles() -> None:
    parsed = parse_roles("[{broken json", 2)
    assert parsed.outcome == "fallback"
    assert parsed.roles == list(GENERIC_ROLES[:2])


def test_duplicates_are_dropped_and_extra_roles_cut() -> None:
    reply = json.dumps(["Judge", "judge", "Jury", "Clerk"])
    parsed = parse_roles(reply, 2)
    assert [name for name, _ in parsed.roles] == ["Judge", "Jury"]


def test_more_roles_than_generic_ones_stay_distinct() -> None:
    parsed = parse_roles("", len(GENERIC_ROLES) + 2)
    names = [name for name, _ in parsed.roles]
    assert len(names) == len(set(names)) == len(GENERIC_ROLES) + 2
