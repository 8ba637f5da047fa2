"""Candidates run against tests in the sandbox: which pass, and what the failing ones saw."""

from __future__ import annotations

import asyncio

from moa_local.checks import program_tests
from moa_local.checks.program_tests import probe, run_tests

TESTS = [
    program_tests.TestCase("assert add(2, 3) == 5", example=True),
    program_tests.TestCase("assert add(-1, 1) == 0", example=True),
    program_tests.TestCase("assert add('a', 'b') == 'ab'", example=True),
]


def verdict_of(code: str):
    return asyncio.run(run_tests(0, code, TESTS))


def test_a_failing_test_reports_what_the_call_returned_or_raised() -> None:
    verdict = verdict_of("def add(a, b):\n    return a * b\n")
    assert verdict.passed == (False, False, False)
    # 2 * 3, -1 * 1, and 'a' * 'b' raises.
    assert verdict.observed == ("6", "-1", "TypeError")


def test_a_passing_test_observes_nothing() -> None:
    verdict = verdict_of("def add(a, b):\n    return a + b if a != -1 else 7\n")
    assert verdict.passed == (True, False, True)
    assert verdict.observed == ("", "7", "")


def test_programs_that_fail_the_same_way_behave_the_same_whatever_their_source() -> None:
    one = verdict_of("def add(a, b):\n    return a * b\n")
    other = verdict_of("def add(x, y):\n    product = x\n    product *= y\n    return product\n")
    different = verdict_of("def add(a, b):\n    return a - b\n")
    assert one.behaviour() == other.behaviour()
    assert one.behaviour() != different.behaviour()


def test_a_program_that_cannot_run_has_no_behaviour() -> None:
    verdict = verdict_of("def add(a, b):\n    return (\n")
    assert verdict.error
    assert verdict.behaviour() is None


def test_the_probe_is_the_call_of_an_equality_assert_else_the_condition() -> None:
    assert probe("assert f(1, [2]) == 3") == "f(1, [2])"
    assert probe("assert is_prime(7)") == "is_prime(7)"
    assert probe("print(1)") == ""
