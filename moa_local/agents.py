"""Agents, and the strategies that fill a layer with ``n`` of them.

An :class:`Agent` is a model plus a perspective (system prompt) and a
temperature. The same agents answer in every layer; from layer 2 on each one
also sees the previous layer's answers, so an agent keeps its own perspective
while refining.

Strategies:

- ``model``: the listed models, each once, cycling when ``n`` is larger;
- ``temperature``: the listed models sampled at ``n`` temperatures spread
  evenly over a range; one model repeated ``n`` times is Self-MoA;
- ``role``: a role model writes ``n`` expert roles for the question (see
  :func:`parse_roles` for how a bad reply is repaired);
- explicit agents: the caller's own list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .prompts import GENERIC_ROLES


@dataclass(frozen=True)
class Agent:
    """One proposer: ``Agent(name, system_prompt, model, temperature)``.

    ``system_prompt`` gives the agent its perspective (kept in refinement
    layers); ``temperature`` None means the run's temperature.
    """

    name: str
    system_prompt: str | None = None
    model: str = ""
    temperature: float | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError(f"agent {self.name!r} has no model; pass model=...")


def by_model(models: list[str], n: int, temperature: float) -> list[Agent]:
    """Each listed model once, cycling when ``n`` exceeds the list."""
    agents = []
    for index in range(n):
        model = models[index % len(models)]
        agents.append(
            Agent(name=_unique_name(model, index, models, n), model=model, temperature=temperature)
        )
    return agents


def by_temperature(models: list[str], n: int, low: float, high: float) -> list[Agent]:
    """``n`` agents at temperatures spread evenly from ``low`` to ``high``."""
    temperatures = spread(low, high, n)
    return [
        Agent(
            name=f"{models[index % len(models)]}@{temp:.2f}",
            model=models[index % len(models)],
            temperature=temp,
        )
        for index, temp in enumerate(temperatures)
    ]


def by_roles(models: list[str], roles: list[tuple[str, str]], temperature: float) -> list[Agent]:
    """One agent per role, the models assigned in turn."""
    return [
        Agent(
            name=name,
            model=models[index % len(models)],
            system_prompt=prompt,
            temperature=temperature,
        )
        for index, (name, prompt) in enumerate(roles)
    ]


def spread(low: float, high: float, n: int) -> list[float]:
    """``n`` values evenly spaced from ``low`` to ``high`` inclusive (rounded to 3 places)."""
    if n == 1:
        return [round((low + high) / 2, 3)]
    step = (high - low) / (n - 1)
    return [round(low + step * index, 3) for index in range(n)]


def _unique_name(model: str, index: int, models: list[str], n: int) -> str:
    repeats = n > len(models)
    return f"{model}#{index // len(models) + 1}" if repeats else model


@dataclass(frozen=True)
class RoleParse:
    """The roles taken from a role model's reply, and how they were obtained."""

    roles: list[tuple[str, str]]
    outcome: str  # "ok", "repaired" or "fallback"
    detail: str = ""


def parse_roles(reply: str, n: int) -> RoleParse:
    """Turn a role model's reply into exactly ``n`` (name, system prompt) pairs.

    Accepted, in order of preference: a JSON list of ``{name, system_prompt}``
    objects (also under a ``"roles"`` key, in a code fence, or with prose
    around it); objects whose keys differ in case or use ``role``/``prompt``;
    a list of plain strings (names only). Duplicates are dropped. Missing
    roles are filled from the built-in generic ones, and the outcome says so.
    """
    problems: list[str] = []
    data = _first_json_value(reply)
    if data is None:
        problems.append("no JSON list found in the reply")
        items: Any = []
    else:
        items = data.get("roles", data.get("experts", [])) if isinstance(data, dict) else data
        if not isinstance(items, list):
            problems.append("JSON is not a list of roles")
            items = []
    roles: list[tuple[str, str]] = []
    repaired = False
    for item in items:
        role = _role_from(item)
        if role is None:
            problems.append(f"skipped an entry that is not a role: {str(item)[:60]!r}")
            continue
        if role[2]:
            repaired = True
        if role[0].lower() not in {name.lower() for name, _ in roles}:
            roles.append((role[0], role[1]))
    roles = roles[:n]
    outcome = "ok"
    if len(roles) < n:
        if roles:
            problems.append(f"got {len(roles)} usable roles of {n}; filled in generic ones")
            outcome = "repaired"
        else:
            outcome = "fallback"
        taken = {name.lower() for name, _ in roles}
        for name, prompt in _generic_roles(n * 2):
            if len(roles) == n:
                break
            if name.lower() not in taken:
                roles.append((name, prompt))
    elif repaired or problems:
        outcome = "repaired"
    return RoleParse(roles=roles, outcome=outcome, detail="; ".join(problems))


def _generic_roles(count: int) -> list[tuple[str, str]]:
    roles = list(GENERIC_ROLES)
    index = 2
    while len(roles) < count:
        for name, prompt in GENERIC_ROLES:
            roles.append((f"{name} {index}", prompt))
        index += 1
    return roles[:count]


def _role_from(item: Any) -> tuple[str, str, bool] | None:
    """(name, system_prompt, was_repaired) from one list entry, or None."""
    if isinstance(item, str) and item.strip():
        name = item.strip()
        return name, f"You are {name}. Answer the question from that expertise.", True
    if not isinstance(item, dict):
        return None
    lowered = {str(key).lower().replace(" ", "_"): value for key, value in item.items()}
    given = lowered.get("name") or lowered.get("role") or lowered.get("title")
    told = lowered.get("system_prompt") or lowered.get("prompt") or lowered.get("description")
    if not isinstance(given, str) or not given.strip():
        return None
    repaired = "name" not in lowered or "system_prompt" not in lowered
    if not isinstance(told, str) or not told.strip():
        told = f"You are {given.strip()}. Answer the question from that expertise."
        repaired = True
    return given.strip()[:80], told.strip(), repaired


def _first_json_value(text: str) -> Any:
    """The first JSON list or object found in ``text``, tolerating fences and prose."""
    text = re.sub(r"```(?:json)?", "", text)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, list | dict):
            return value
    return None
