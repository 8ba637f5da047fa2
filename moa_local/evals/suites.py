"""The suites ``moa-local eval`` knows, by name."""

from __future__ import annotations

from ..errors import ConfigError
from .suite import Suite

SUITES = ("humaneval", "ifbench")


def load_suite(name: str) -> Suite:
    """The suite called ``name``; a ConfigError names the known ones."""
    if name == "humaneval":
        from .humaneval import HumanEvalSuite

        return HumanEvalSuite()
    if name == "ifbench":
        from .ifbench import IFBenchSuite

        return IFBenchSuite()
    raise ConfigError(f"unknown suite {name!r} (known: {', '.join(SUITES)})")
