"""The suites ``moa-local eval`` knows, by name."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from ..reporting import ProgressFactory, silent_progress
from .suite import Suite

SUITES = ("humaneval", "ifbench", "bigbench")


def load_suite(
    name: str,
    *,
    tasks: Sequence[str] | None = None,
    progress: ProgressFactory = silent_progress,
) -> Suite:
    """The suite called ``name``; a ConfigError names the known ones.

    ``tasks`` picks BIG-bench's tasks (default: its dev tasks); ``progress``
    shows a data download (BIG-bench's archive, the first time).
    """
    if tasks is not None and name != "bigbench":
        raise ConfigError(f"--tasks only applies to the bigbench suite, not {name}")
    if name == "humaneval":
        from .humaneval import HumanEvalSuite

        return HumanEvalSuite()
    if name == "ifbench":
        from .ifbench import IFBenchSuite

        return IFBenchSuite()
    if name == "bigbench":
        from .bigbench import DEFAULT_TASKS, BigBenchSuite
        from .bigbench_data import BigBenchData

        return BigBenchSuite(
            DEFAULT_TASKS if tasks is None else tasks, BigBenchData(progress=progress)
        )
    raise ConfigError(f"unknown suite {name!r} (known: {', '.join(SUITES)})")
