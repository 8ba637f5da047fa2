"""README's commands are the ones the project really runs."""

from __future__ import annotations

import re

from .conftest import REPO_ROOT


def _block_after(marker: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*)\n```", readme)
    assert match, f"README.md has no command after <!-- {marker} -->"
    return match.group(1)


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _block_after("test-command") in ci_lines


def test_readme_run_command_installs_and_asks() -> None:
    command = _block_after("run-command")
    assert "pip install '.[llamacpp]'" in command and 'moa-local ask "' in command
