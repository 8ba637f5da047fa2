"""Verification of code candidates: the tests of one run, and how candidates do on them.

Tests come first from the examples the question states (collected once, on
first need), then, when asked for, from asserts the aggregator model writes.
:mod:`moa_local.checks.program_tests` holds the pure parts (parsing tests, running a
candidate in the sandbox, ranking); this module keeps one run's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from ..backends.base import Message
from ..checks import form, program_tests, stated_form
from ..checks.isolation import INSTALL_BWRAP, default_isolation
from ..checks.programs import extract_python
from ..result import Proposal
from ..trace import Tracer
from .generation import Generator, proposal_from
from .plan import Plan


def wants_verification(
    setting: bool | str, prompt: str, write_tests: bool = False
) -> tuple[bool, str | None]:
    """Whether a code question is verified under ``setting`` (true, false or "auto"),
    and, when "auto" leaves it off, the one line that says how to turn it on.

    "auto" verifies a question that states examples (something to test
    against from the start), or, with ``write_tests``, any code question
    (against tests the strongest model writes), and only when model-written
    code runs under bubblewrap: a program a model wrote is run on the user's
    machine only where it sees neither the network nor the user's files.
    """
    if isinstance(setting, bool):
        return setting, None
    if default_isolation().name != "bwrap":
        return False, (
            "code answers are not tested: model-written code runs only under bubblewrap; "
            f"{INSTALL_BWRAP}, or turn verify on (--verify) to test with rlimits only"
        )
    if not write_tests and not program_tests.example_tests(
        prompt, program_tests.entry_point(prompt)
    ):
        return False, (
            "code answers are not tested: the question states no examples; set "
            "write_tests = true (or --verify) to test against tests the models write"
        )
    return True, None


def wants_form_check(plan: Plan, prompt: str) -> tuple[str | None, str | None]:
    """How a text question's candidates are checked against its stated form ("stated",
    "written" or None), and, when the setting asks for a written checker that the
    machine cannot run, the line that says why.

    Constraints a program reads in the question (:mod:`moa_local.checks.stated_form`)
    run no model-written code. A model-written checker is asked for only with
    ``check_form = "written"``, when the program reads none but the question
    uses words about its form, and only under bubblewrap unless verify is
    explicitly true.
    """
    if plan.check_form == "off":
        return None, None
    if stated_form.stated_constraints(prompt):
        return "stated", None
    if plan.check_form != "written" or not form.states_form(prompt):
        return None, None
    if plan.verify is not True and default_isolation().name != "bwrap":
        return None, (
            "the answer's form is not checked: model-written checkers run only under "
            f"bubblewrap; {INSTALL_BWRAP}, or turn verify on (--verify) to run them with "
            "rlimits only"
        )
    return "written", None


class Verification:
    """One run's tests and the function they call, with the generations that made them."""

    def __init__(
        self, plan: Plan, prompt: str, tracer: Tracer, generator: Generator, extra: list[Proposal]
    ) -> None:
        self.plan = plan
        self.prompt = prompt
        self.tracer = tracer
        self.generator = generator
        self.extra = extra  # the run's extra generations: the test writer's goes there
        self.tests: list[program_tests.TestCase] | None = None  # None until the examples are read
        self.tests_written = False
        self.entry: str | None = None  # the function the tests call
        # Each program is run once per set of tests: the cascade, the references'
        # notes and the final choice ask about the same candidates, and a program
        # that loops costs the whole sandbox timeout each time.
        self._verdicts: dict[tuple[str | None, tuple[str, ...]], program_tests.Verdict] = {}

    @property
    def known_tests(self) -> list[program_tests.TestCase]:
        """The tests collected so far."""
        return self.tests or []

    def programs(self, texts: Sequence[str]) -> list[str | None]:
        """The program of each answer (None when it holds none)."""
        entry = program_tests.entry_point(self.prompt)
        return [extract_python(text, entry) for text in texts]

    def collect_examples(self, candidates: Sequence[str]) -> bool:
        """Read the question's examples into the tests (once, traced); whether it states any."""
        if self.tests is None:
            self.entry = program_tests.entry_point(
                self.prompt, [c for c in self.programs(candidates) if c]
            )
            self.tests = program_tests.example_tests(self.prompt, self.entry)
            self.tracer.emit(
                "verify.tests",
                entry_point=self.entry,
                source="question",
                tests=[t.to_dict() for t in self.tests],
            )
        return any(t.example for t in self.tests)

    async def check(
        self, layer: int, candidates: Sequence[str], *, written: bool = True
    ) -> list[program_tests.Verdict]:
        """Run candidates against the tests, traced.

        The written tests count too unless ``written`` is false; they are
        written on first need.
        """
        programs = self.programs(candidates)
        self.collect_examples(candidates)
        if written and not self.tests_written:
            await self._write_tests(programs)
        verdicts = await self.verdicts(programs)
        self.tracer.emit(
            "verify.layer",
            layer=layer,
            results=[
                {"candidate": v.candidate, "passed": list(v.passed), "error": v.error}
                for v in verdicts
            ],
        )
        return verdicts

    async def verdicts(
        self,
        programs: Sequence[str | None],
        tests: Sequence[program_tests.TestCase] | None = None,
    ) -> list[program_tests.Verdict]:
        """How each program does on ``tests`` (default: those collected so far), untraced."""
        tests = self.known_tests if tests is None else tests
        sources = tuple(t.source for t in tests)

        async def one(index: int, program: str | None) -> program_tests.Verdict:
            key = (program, sources)
            if key not in self._verdicts:
                self._verdicts[key] = await program_tests.run_tests(index, program, tests)
            return replace(self._verdicts[key], candidate=index)

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(programs))))

    async def annotate(self, layer: int, references: Sequence[str]) -> list[str]:
        """``references``, each headed by how its program did on the tests."""
        verdicts = await self.check(layer, references)
        return [
            f"[Tests: {v.summary(self.known_tests)}]\n{text}"
            for v, text in zip(verdicts, references, strict=True)
        ]

    async def _write_tests(self, programs: Sequence[str | None]) -> None:
        """Add asserts the aggregator writes from the question to the tests."""
        self.tests_written = True
        plan = self.plan
        if self.entry is None:
            self.entry = program_tests.entry_point(self.prompt, [p for p in programs if p])
        if self.entry is None:
            return
        messages: tuple[Message, ...] = (
            {"role": "system", "content": program_tests.TEST_WRITER_SYSTEM},
            {
                "role": "user",
                "content": program_tests.TEST_WRITER_USER.format(
                    question=self.prompt, n=6, entry=self.entry
                ),
            },
        )
        request = self.generator.base_request(plan, plan.aggregator, messages, 0.2, 7, "tests")
        outcome = await self.generator.complete(request, None, self.tracer)
        proposal = proposal_from(0, "test_writer", request, outcome, False)
        self.extra.append(proposal)
        tests = self.tests if self.tests is not None else []
        if proposal.ok:
            known = {t.source for t in tests}
            tests += [
                t
                for t in program_tests.parse_tests(proposal.content, self.entry)
                if t.source not in known
            ]
        self.tests = tests[: program_tests.MAX_TESTS]
        self.tracer.emit(
            "verify.tests",
            entry_point=self.entry,
            source="written",
            tests=[t.to_dict() for t in self.tests],
        )
