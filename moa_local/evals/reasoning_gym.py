"""reasoning-gym (Stojanovski et al., 2025): seeded generators of reasoning items.

The ``reasoning-gym`` package (the ``[reasoning]`` extra) makes about a
hundred tasks, each a generator that writes the same items for the same seed,
offline, and a scorer of its own. Any of them can be run (``--tasks``, named
as the package names them, e.g. ``knights_knaves``); default:
:data:`DEFAULT_TASKS`, chosen to stand for the BIG-bench dev tasks (a date
task, a logical deduction, tracking objects, counting).

Items. The data seed is ``--seed`` (the seed the mixture samples with, too):
a task's items are those its generator makes with that seed, item ``i``
being the same whatever the number asked for. Seed 0 is the dev seed; the
dev split is its first :data:`DEV_ITEMS` items of each task (0-99), ``all``
its first :data:`ALL_ITEMS` (0-499). Any other seed gives fresh items, for a
check the tuning has not seen. Each task is a group: ``--limit`` counts per
task, and the suite score is the mean of the task scores. Problem ids carry
the seed (``calendar_arithmetic/seed0/12``), so the log never mixes the items
of two seeds, and every logged score names its seed.

Scoring. The model is asked for brief reasoning and a last line ``Answer:
...``; the answer is read with :func:`moa_local.answers.answer_text` (the
last answer line, else the last line) and given to the task's own
``score_answer``, as written and without surrounding quotes or a trailing
full stop (the better of the two counts). Its scores are rewards, some with
partial credit (a weekday in the wrong case, a count near the right one);
here only a full 1.0 passes (the reward is kept in the log's details).
Outcomes: ``pass``, ``wrong``, ``no_answer`` (empty), ``score_error`` (the
package's scorer raised).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from ..answers import answer_text
from ..errors import ConfigError
from .suite import Problem, Score, split_indices

DEFAULT_TASKS = (
    "calendar_arithmetic",
    "zebra_puzzles",
    "color_cube_rotation",
    "leg_counting",
)
DEV_SEED = 0
DEV_ITEMS = 100  # per task, with the dev seed
ALL_ITEMS = 500
EXTRA_HINT = "the reasoning-gym suite needs the reasoning extra: pip install 'moa-local[reasoning]'"

INSTRUCTION = (
    "Think it through briefly, step by step. Then end with a last line of the form "
    '"Answer: ...", giving only the final answer.'
)


def _package() -> Any:
    """The ``reasoning_gym`` module; a ConfigError with the pip command when it is missing."""
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError(EXTRA_HINT) from None
    return reasoning_gym


def known_tasks() -> list[str]:
    """Every task name the installed reasoning-gym registers, sorted."""
    _package()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


class ReasoningGymSuite:
    """reasoning-gym tasks generated with one seed; dev split: items 0-99 of seed 0."""

    name = "reasoning-gym"
    dev_range = range(0, DEV_ITEMS)  # within each task
    confirm_range = range(DEV_ITEMS, 2 * DEV_ITEMS)
    quick_scorer = True  # each task's own scorer on the read answer (suite.rescores_logged)

    def __init__(self, tasks: Sequence[str] = DEFAULT_TASKS, seed: int = DEV_SEED):
        package = _package()
        self.tasks = list(dict.fromkeys(tasks))
        if not self.tasks:
            raise ConfigError("--tasks is empty: name at least one reasoning-gym task")
        self.seed = seed
        # The items of a seed are those of this version (the extra pins it).
        self.version = metadata.version("reasoning-gym")
        known = known_tasks()
        for task in self.tasks:
            if task not in known:
                raise ConfigError(_unknown(task, known))
        self._datasets: dict[str, Any] = {}
        for task in self.tasks:
            try:
                self._datasets[task] = package.create_dataset(task, seed=seed, size=ALL_ITEMS)
            except Exception as exc:  # the package's own checks raise bare errors
                raise ConfigError(
                    f"reasoning-gym task {task!r} cannot be generated with its default "
                    f"settings ({type(exc).__name__}: {_one_line(exc)}); name another task"
                ) from None

    @property
    def heading(self) -> str:
        """One line naming the package version, the data seed and the tasks, printed above
        the results."""
        which = "the dev seed" if self.seed == DEV_SEED else f"not the dev seed {DEV_SEED}"
        return (
            f"reasoning-gym {self.version}, data seed {self.seed} ({which}); "
            f"tasks: {', '.join(self.tasks)}"
        )

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split`` ("dev": items 0-99 of each task, "confirm": 100-199,
        "all": 0-499)."""
        wanted = split_indices(self, split)
        indices = [i for i in range(ALL_ITEMS) if i in wanted]
        return [self.problem(task, index) for task in self.tasks for index in indices]

    def problem(self, task: str, index: int) -> Problem:
        """Item ``index`` of ``task`` (made with the suite's seed) as a problem."""
        try:
            entry = self._datasets[task][index]
        except Exception as exc:  # as above: a generator that fails with its defaults
            raise ConfigError(
                f"reasoning-gym task {task!r} failed to generate its item {index} "
                f"({type(exc).__name__}: {_one_line(exc)}); name another task"
            ) from None
        prompt = f"{entry['question'].strip()}\n\n{INSTRUCTION}"
        data = {"task": task, "seed": self.seed, "entry": entry}
        return Problem(self.name, index, f"{task}/seed{self.seed}/{index}", prompt, data, task)

    def score(self, problem: Problem, answer: str) -> Score:
        """The task's own scorer on the reply's final answer; only a full 1.0 passes."""
        entry = problem.data["entry"]
        final = answer_text(answer)
        details: dict[str, Any] = {
            "answer": final[:200],
            "expected": str(entry["answer"])[:200],
            "seed": problem.data["seed"],
        }
        if not final:
            return Score("no_answer", 0.0, details)
        dataset = self._datasets[problem.data["task"]]
        try:
            reward = max(float(dataset.score_answer(text, entry)) for text in _forms(final))
        except Exception as exc:  # a third-party scorer must not end the run
            details["error"] = f"{type(exc).__name__}: {exc}"[:300]
            return Score("score_error", 0.0, details)
        details["reward"] = round(reward, 4)
        return Score("pass", 1.0, details) if reward >= 1.0 else Score("wrong", 0.0, details)


def _forms(final: str) -> list[str]:
    """The answer as written, and without surrounding quotes or a trailing full stop."""
    bare = final.strip().strip("\"'“”‘’").rstrip(".").strip()
    return [final] if bare in ("", final) else [final, bare]


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def _unknown(task: str, known: list[str]) -> str:
    close = difflib.get_close_matches(task, known, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (
        f"unknown reasoning-gym task {task!r} ({hint}{len(known)} tasks, e.g. "
        f"{', '.join(DEFAULT_TASKS)}, {', '.join(known[:3])}, ...)"
    )
