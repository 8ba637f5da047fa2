"""The suites ``moa-local eval`` knows, by name.

Each suite is one entry of :data:`REGISTRY`: a name and a function that
builds it from a :class:`SuiteRequest` (what the command line asked for).
The suite's module is imported only when it is built, so that the others'
data and dependencies are not loaded. Adding a suite is adding its module
and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..reporting import ProgressFactory, silent_progress
from .suite import Suite


@dataclass(frozen=True)
class SuiteRequest:
    """What a suite may be built with: the ``tasks`` of a suite of tasks, the ``seed`` its
    items are made with (reasoning-gym), and a bar for a data download."""

    tasks: Sequence[str] | None = None
    seed: int = 0
    progress: ProgressFactory = silent_progress


def _humaneval(request: SuiteRequest) -> Suite:
    from .humaneval import HumanEvalSuite

    return HumanEvalSuite()


def _humaneval_noex(request: SuiteRequest) -> Suite:
    from .humaneval_noex import HumanEvalNoExamplesSuite

    return HumanEvalNoExamplesSuite()


def _ifbench(request: SuiteRequest) -> Suite:
    from .ifbench import IFBenchSuite

    return IFBenchSuite()


def _bigbench(request: SuiteRequest) -> Suite:
    from .bigbench import DEFAULT_TASKS, BigBenchSuite
    from .bigbench_data import BigBenchData

    tasks = DEFAULT_TASKS if request.tasks is None else request.tasks
    return BigBenchSuite(tasks, BigBenchData(progress=request.progress))


def _gsm8k(request: SuiteRequest) -> Suite:
    from .gsm8k import GSM8KSuite
    from .olmo_data import OlmoEvalData

    return GSM8KSuite(OlmoEvalData(progress=request.progress))


def _arc(request: SuiteRequest) -> Suite:
    from .arc import ARCSuite
    from .olmo_data import OlmoEvalData

    return ARCSuite(OlmoEvalData(progress=request.progress))


def _reasoning_gym(request: SuiteRequest) -> Suite:
    from .reasoning_gym import DEFAULT_TASKS, ReasoningGymSuite

    tasks = DEFAULT_TASKS if request.tasks is None else request.tasks
    return ReasoningGymSuite(tasks, seed=request.seed)


# name -> the function that builds the suite
REGISTRY: dict[str, Callable[[SuiteRequest], Suite]] = {
    "humaneval": _humaneval,
    "humaneval-noex": _humaneval_noex,
    "ifbench": _ifbench,
    "bigbench": _bigbench,
    "gsm8k": _gsm8k,
    "arc": _arc,
    "reasoning-gym": _reasoning_gym,
}
SUITES = tuple(REGISTRY)
TAKES_TASKS = ("bigbench", "reasoning-gym")  # the suites --tasks applies to


def load_suite(
    name: str,
    *,
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    progress: ProgressFactory = silent_progress,
) -> Suite:
    """The suite called ``name``; a ConfigError names the known ones.

    ``tasks`` picks the tasks of BIG-bench or reasoning-gym (default: their dev
    tasks), ``seed`` reasoning-gym's items; ``progress`` shows a data download
    (the first time a suite's data is needed).
    """
    build = REGISTRY.get(name)
    if build is None:
        raise ConfigError(f"unknown suite {name!r} (known: {', '.join(REGISTRY)})")
    if tasks is not None and name not in TAKES_TASKS:
        takers = " and ".join(TAKES_TASKS)
        raise ConfigError(f"--tasks only applies to the {takers} suites, not {name}")
    return build(SuiteRequest(tasks, seed, progress))
