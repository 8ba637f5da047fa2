"""CodeT's dual execution agreement: which program to trust when only model-written
tests can tell the candidates apart.

Chen et al. (2022) have the model write both programs and tests, run every
program against every test, and group the programs that pass exactly the same
tests. A group scores by how many programs it holds times how many tests they
pass: programs that agree with each other and with the tests are the likely
right ones, and a single wrong test or a single odd program cannot decide
alone. The pure functions here know nothing of models; the engine calls them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .program_tests import TestCase, Verdict


@dataclass(frozen=True)
class Agreement:
    """The chosen candidate, its group's size and tests passed, and why, in words."""

    chosen: int
    programs: int  # how many candidates pass exactly the chosen one's tests
    tests_passed: int
    reason: str


def consistent(tests: Sequence[TestCase]) -> list[TestCase]:
    """``tests`` without those that contradict another: two asserts of one call with
    different expected values cannot both be right, so neither is kept."""
    expected: dict[str, set[str]] = defaultdict(set)
    for test in tests:
        parts = _call_and_value(test.source)
        if parts is not None:
            expected[parts[0]].add(parts[1])
    kept = []
    for test in tests:
        parts = _call_and_value(test.source)
        if parts is None or len(expected[parts[0]]) == 1:
            kept.append(test)
    return kept


def dual_agreement(verdicts: Sequence[Verdict], order: Sequence[int]) -> Agreement | None:
    """The candidate of the best-agreed group, or None when the tests decide nothing.

    ``verdicts`` are the candidates' results on the same tests; ``order`` is
    their positions greedy first (the greedy sample wins every tie, within a
    group and between groups). None when no test is passed by any candidate,
    or when every candidate that ran passes the same tests (they agree: the
    tests cannot tell them apart).
    """
    groups: dict[tuple[bool, ...], list[int]] = defaultdict(list)
    for position in order:
        verdict = verdicts[position]
        if not verdict.error:
            groups[verdict.passed].append(position)
    if not groups or not any(any(passed) for passed in groups):
        return None
    if len(groups) == 1 and len(next(iter(groups.values()))) == len(verdicts):
        return None
    rank = {position: index for index, position in enumerate(order)}

    def score(item: tuple[tuple[bool, ...], list[int]]) -> tuple[int, int]:
        passed, members = item
        return (len(members) * sum(passed), -rank[members[0]])

    passed, members = max(groups.items(), key=score)
    chosen = members[0]
    count = sum(passed)
    reason = (
        f"{len(members)} of {len(verdicts)} programs pass the same {count} of "
        f"{len(passed)} written tests"
    )
    return Agreement(chosen, len(members), count, reason)


def _call_and_value(source: str) -> tuple[str, str] | None:
    """``assert CALL == VALUE`` as (call, value), normalized; None for another shape."""
    try:
        node = ast.parse(source).body[0]
    except (SyntaxError, ValueError, IndexError):
        return None
    if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
        return None
    compare = node.test
    if len(compare.ops) != 1 or not isinstance(compare.ops[0], ast.Eq):
        return None
    return ast.unparse(compare.left), ast.unparse(compare.comparators[0])
