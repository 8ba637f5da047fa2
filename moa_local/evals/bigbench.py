"""BIG-bench (Srivastava et al., 2022): reasoning tasks with exact answers.

Any BIG-bench JSON task can be run (``--tasks``, named by its folder under
``benchmark_tasks``), as long as its examples have exact answers:

- ``target_scores`` (multiple choice): the options are shown lettered (A),
  (B), ... in a fixed order that does not depend on the file's (sorted, then
  shuffled with a seed made of the task and example number, as BIG-bench
  itself shuffles them: in several task files the right option comes first).
  The options with the highest score (1 in practice) are right;
- ``target`` (a string or a list of accepted strings, e.g. ``["three", "3"]``).

The data comes from the ``bigbench`` source archive on PyPI, see
:mod:`.bigbench_data`. Default tasks: :data:`DEFAULT_TASKS`. Dev split: the
even-numbered examples of each task; the odd ones are kept aside. Each task
is a group: ``--limit`` counts per task, and the suite score is the mean of
the task scores.

The model is asked for brief reasoning and a last line ``Answer: ...``.
Scoring (:mod:`.exact`) reads the answer with the reader votes use too
(:func:`moa_local.answers.read_answer`: the last stated answer, else the
last line, in canonical form) and compares exactly: for multiple choice the
letter ("B", "(B)", "(B) the text", "option B") or the option's text; for a
``target``, the text, or the number when it is one (digits or words:
"three" = 3, "3 things" = 3).
Outcomes: ``pass``, ``wrong``, ``no_answer`` (empty, or no option recognised).
"""

from __future__ import annotations

import random
import string
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from ..answers import choose_option
from ..errors import ConfigError
from .bigbench_data import BigBenchData
from .exact import score_choice, score_target
from .suite import Problem, Score, split_indices

# choose_option: the option rule lives with the reader (moa_local.answers); named here too.
__all__ = ["DEFAULT_TASKS", "BigBenchSuite", "choose_option", "make_problem", "score_answer"]

DEFAULT_TASKS = (
    "date_understanding",
    "logical_deduction/three_objects",
    "tracking_shuffled_objects/three_objects",
    "object_counting",
)

CHOICE_INSTRUCTION = (
    "Think it through briefly, step by step. Then end with a last line of the form "
    '"Answer: (X)", where X is the letter of the right option.'
)
TARGET_INSTRUCTION = (
    "Think it through briefly, step by step. Then end with a last line of the form "
    '"Answer: ...", giving only the final answer.'
)


class BigBenchSuite:
    """BIG-bench JSON tasks; dev split: the even-numbered examples of each task."""

    name = "bigbench"
    dev_range = range(0, sys.maxsize, 2)  # within each task
    confirm_range = range(1, sys.maxsize, 2)
    quick_scorer = True  # an exact reading of the answer (suite.rescores_logged)

    def __init__(self, tasks: Sequence[str] = DEFAULT_TASKS, data: BigBenchData | None = None):
        self.tasks = list(dict.fromkeys(tasks))
        if not self.tasks:
            raise ConfigError("--tasks is empty: name at least one BIG-bench task")
        self.data = data if data is not None else BigBenchData()

    @cached_property
    def _examples(self) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each task's ``task.json`` and its checked examples, in ``--tasks`` order."""
        loaded = self.data.load(self.tasks)
        return {name: (task, self._checked(name, task)) for name, task in loaded.items()}

    def _checked(self, name: str, task: dict[str, Any]) -> list[dict[str, Any]]:
        examples = task.get("examples")
        if not examples or not isinstance(examples, list):
            subtasks = self.data.subtasks(name)
            if subtasks:
                raise ConfigError(
                    f"BIG-bench task {name!r} has no examples of its own: name one of its "
                    f"subtasks ({', '.join(subtasks)})"
                )
            raise ConfigError(f"BIG-bench task {name!r} has no examples")
        for number, example in enumerate(examples):
            if not _scorable(example):
                raise ConfigError(
                    f"BIG-bench task {name!r} is not exact-answer: its example {number} has "
                    "no target_scores with a right option nor a text target"
                )
        return examples

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split`` ("dev": the even examples of each task, "confirm": the
        odd ones, "all": all)."""
        wanted = split_indices(self, split)
        problems = []
        for name, (task, examples) in self._examples.items():
            for index, example in enumerate(examples):
                if index not in wanted:
                    continue
                problems.append(make_problem(self.name, name, task, index, example))
        return problems

    def score(self, problem: Problem, answer: str) -> Score:
        """Compare the answer's final line with the accepted answers."""
        return score_answer(problem.data, answer)


def _scorable(example: Any) -> bool:
    if not isinstance(example, dict) or not isinstance(example.get("input"), str):
        return False
    scores = example.get("target_scores")
    if scores is not None:
        return (
            isinstance(scores, dict)
            and 2 <= len(scores) <= len(string.ascii_uppercase)
            and all(isinstance(v, int | float) for v in scores.values())
            and max(scores.values()) > 0
        )
    target = example.get("target")
    targets = [target] if isinstance(target, str) else target
    return isinstance(targets, list) and bool(targets) and all(isinstance(t, str) for t in targets)


def make_problem(
    suite: str, name: str, task: dict[str, Any], index: int, example: dict[str, Any]
) -> Problem:
    """One example as a problem: the prompt, and the accepted answers in ``data``."""
    question = str(task.get("task_prefix") or "") + example["input"].strip()
    scores = example.get("target_scores")
    if scores is not None:
        options = sorted(scores)
        random.Random(f"{name}/{index}").shuffle(options)
        best = max(scores.values())
        letters = string.ascii_uppercase
        lines = "\n".join(f"({letters[i]}) {option}" for i, option in enumerate(options))
        prompt = f"{question}\n\nOptions:\n{lines}\n\n{CHOICE_INSTRUCTION}"
        right = [letters[i] for i, option in enumerate(options) if scores[option] == best]
        data: dict[str, Any] = {"options": options, "right": right}
    else:
        target = example["target"]
        prompt = f"{question}\n\n{TARGET_INSTRUCTION}"
        data = {"targets": [target] if isinstance(target, str) else list(target)}
    return Problem(suite, index, f"{name}/{index}", prompt, data, group=name)


def score_answer(data: dict[str, Any], answer: str) -> Score:
    """Score ``answer`` against a problem's ``data`` (options and right letters, or targets)."""
    if "options" in data:
        return score_choice(answer, data["options"], data["right"])
    return score_target(answer, data["targets"])
