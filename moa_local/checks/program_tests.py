"""Verified aggregation for code: candidates run against tests, the best one wins.

The idea of CodeT (Chen et al., 2022): when models write both programs and
tests, a program that passes more tests, and agrees with more other programs
on which tests it passes, is more likely correct. Tests come from two places:

- *examples* in the question itself (doctest lines ``>>> f(2)`` followed by the
  expected value, and ``assert`` lines): trusted, weighted higher;
- *generated* tests, assert statements the strongest model writes from the
  question: they can be wrong, which is why agreement between candidates
  counts too.

Each candidate runs once in :mod:`moa_local.checks.sandbox` with every test wrapped in
its own try/except and a per-test alarm, and prints which tests passed. The
pure functions here know nothing of models; the engine calls them.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from . import examples
from .programs import extract_python, normalize_code

EXAMPLE_WEIGHT = 3  # a passed example from the question counts as much as 3 generated tests
MAX_TESTS = 12
_PER_TEST_SECONDS = 3
_RESULT_MARK = "__moa_verify__"
_OBSERVED_CHARS = 80  # of a failing call's repr: enough to tell two wrong answers apart

TEST_WRITER_SYSTEM = "You are a meticulous software tester. You write short, correct test cases."
TEST_WRITER_USER = (
    "{question}\n\n"
    "Do not solve the task. Write {n} assert statements that a correct solution must pass: "
    "typical inputs and edge cases, each expected value worked out carefully by hand. "
    "Call only the function `{entry}`. Reply with the assert lines only, in one ```python "
    "block, one assert per line."
)


@dataclass(frozen=True)
class TestCase:
    """One assert statement, and whether it came from the question (an example)."""

    source: str
    example: bool

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for traces."""
        return {"source": self.source, "example": self.example}


@dataclass(frozen=True)
class Verdict:
    """How one candidate did: which tests passed, and its score."""

    candidate: int
    passed: tuple[bool, ...]
    error: str = ""
    # What each failing test's call returned (its repr, cut short) or raised (the
    # exception's name); "" for a passing test. Two programs that fail the same
    # way behave the same on the examples, whatever their source looks like.
    observed: tuple[str, ...] = ()

    def behaviour(self) -> tuple[tuple[bool, ...], tuple[str, ...]] | None:
        """What the candidate did on the tests, comparable between candidates (None:
        it could not be run)."""
        return None if self.error else (self.passed, self.observed)

    def score(self, tests: Sequence[TestCase]) -> int:
        """Weighted tests passed: examples from the question weigh more."""
        return sum(
            (EXAMPLE_WEIGHT if test.example else 1)
            for test, ok in zip(tests, self.passed, strict=True)
            if ok
        )

    def summary(self, tests: Sequence[TestCase]) -> str:
        """One line for the aggregator: passed counts and the first failing tests."""
        if self.error:
            return f"could not be run: {self.error}"
        failed = [t.source for t, ok in zip(tests, self.passed, strict=True) if not ok]
        line = f"passed {len(tests) - len(failed)} of {len(tests)} tests"
        if failed:
            line += "; failed: " + "; ".join(failed[:3])
        return line


def entry_point(question: str, candidates: Sequence[str] = ()) -> str | None:
    """The function the task is about: the one the question asks for (its last stub,
    else its first function), else the one its prose examples call, else the
    top-level function most candidates define."""
    asked = examples.target(question)
    if asked is not None:
        return asked.name
    match = re.search(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", question, re.M)
    if match:
        return match.group(1)
    named = examples.named_by_examples(question)
    if named is not None:
        return named
    names: Counter[str] = Counter()
    for code in candidates:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            continue
        functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        if functions:
            names[functions[-1]] += 1
    return names.most_common(1)[0][0] if names else None


def example_tests(question: str, entry: str | None) -> list[TestCase]:
    """Examples stated in the question (:mod:`moa_local.checks.examples`), as trusted tests."""
    shown = {s.name: s.parameters for s in examples.signatures(question)}
    tests = examples.stated_examples(question, entry, shown.get(entry) if entry else None)
    return [TestCase(t, example=True) for t in _valid_unique(tests)]


def parse_tests(reply: str, entry: str | None) -> list[TestCase]:
    """Assert lines from a test writer's reply (fenced or not), valid and deduplicated."""
    code = extract_python(reply) or reply
    tests = [
        line.strip()
        for line in code.splitlines()
        if line.strip().startswith("assert ") and (entry is None or entry in line)
    ]
    return [TestCase(t, example=False) for t in _valid_unique(tests)]


def _valid_unique(tests: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for test in tests:
        try:
            ast.parse(test)
        except (SyntaxError, ValueError):
            continue
        if test not in seen:
            seen.append(test)
    return seen


def probe(test: str) -> str:
    """The expression whose value a failing ``test`` is reported by: the left side of
    ``assert CALL == EXPECTED``, else the whole assert's condition ("" if none)."""
    try:
        statement = ast.parse(test).body[0]
    except (SyntaxError, ValueError, IndexError):
        return ""
    if not isinstance(statement, ast.Assert):
        return ""
    condition = statement.test
    if isinstance(condition, ast.Compare) and len(condition.ops) == 1:
        return ast.unparse(condition.left)
    return ast.unparse(condition)


def harness(code: str, tests: Sequence[TestCase]) -> str:
    """A program that defines ``code`` and reports, as JSON, which tests pass and what
    each failing one observed."""
    cases = json.dumps([[t.source, probe(t.source)] for t in tests])
    return (
        f"{code}\n\n"
        "import json as _json, signal as _signal\n"
        "def _moa_alarm(*_):\n"
        "    raise TimeoutError('test took too long')\n"
        "_signal.signal(_signal.SIGALRM, _moa_alarm)\n"
        "_moa_passed, _moa_observed = [], []\n"
        f"for _moa_test, _moa_probe in {cases}:\n"
        f"    _signal.alarm({_PER_TEST_SECONDS})\n"
        "    try:\n"
        "        exec(_moa_test, globals())\n"
        "        _moa_passed.append(True)\n"
        "        _moa_observed.append('')\n"
        "    except BaseException as _moa_error:\n"
        "        _moa_passed.append(False)\n"
        "        _moa_seen = type(_moa_error).__name__\n"
        "        if _moa_probe and isinstance(_moa_error, AssertionError):\n"
        "            try:\n"
        f"                _moa_seen = repr(eval(_moa_probe, globals()))[:{_OBSERVED_CHARS}]\n"
        "            except BaseException as _moa_again:\n"
        "                _moa_seen = type(_moa_again).__name__\n"
        "        _moa_observed.append(_moa_seen)\n"
        "    finally:\n"
        "        _signal.alarm(0)\n"
        "_moa_found = {'passed': _moa_passed, 'observed': _moa_observed}\n"
        f"print({_RESULT_MARK!r}, _json.dumps(_moa_found))\n"
    )


async def run_tests(index: int, code: str | None, tests: Sequence[TestCase]) -> Verdict:
    """Run ``tests`` against one candidate's code in the sandbox."""
    # Imported here: the sandbox is only needed when a run verifies.
    from .sandbox import marked_result

    if code is None:
        return Verdict(index, tuple(False for _ in tests), error="no code in the answer")
    found, result = await marked_result(harness(code, tests), _RESULT_MARK)
    if isinstance(found, dict) and len(found.get("passed", ())) == len(tests):
        observed = tuple(str(o) for o in found.get("observed", ()))
        return Verdict(index, tuple(bool(p) for p in found["passed"]), observed=observed)
    return Verdict(index, tuple(False for _ in tests), error=result.detail)


def rank(
    verdicts: Sequence[Verdict], codes: Sequence[str | None], tests: Sequence[TestCase]
) -> list[int]:
    """Candidate indices, best first.

    Order: weighted tests passed; then CodeT's agreement, the number of
    candidates with the same normalized code or the same pass pattern; then
    the earlier candidate (later candidates are the aggregate, put first by
    the caller when it should win ties).
    """
    normalized = [normalize_code(c) if c else None for c in codes]
    same_code = Counter(n for n in normalized if n)
    same_pattern = Counter(v.passed for v in verdicts if not v.error)

    def key(position: int) -> tuple[int, int, int, int]:
        verdict = verdicts[position]
        code = normalized[position]
        agreement = same_code[code] if code else 0
        pattern = 0 if verdict.error else same_pattern[verdict.passed]
        return (verdict.score(tests), agreement, pattern, -position)

    return sorted(range(len(verdicts)), key=key, reverse=True)


def settles(verdict: Verdict, tests: Sequence[TestCase]) -> bool:
    """Whether a candidate can be trusted without the rest of the mixture: it passes
    every example of the question, or, when the question has none, every test."""
    if verdict.error:
        return False
    examples = [ok for test, ok in zip(tests, verdict.passed, strict=True) if test.example]
    return all(examples) if examples else all_pass(verdict, tests)


def all_pass(verdict: Verdict, tests: Sequence[TestCase]) -> bool:
    """Whether a candidate passed every test (and there was at least one)."""
    return bool(tests) and not verdict.error and all(verdict.passed)
