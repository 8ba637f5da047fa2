"""The documents that list settings say what the declaration says."""

from __future__ import annotations

import re

from moa_local.config import SETTINGS
from moa_local.config.settings import markdown_table, toml_text
from tests.conftest import REPO_ROOT

REGENERATE = (
    'python -c "from moa_local.config.settings import markdown_table; '
    "print(markdown_table(), end='')\""
)


def test_docs_settings_md_is_the_table_generated_from_the_declaration() -> None:
    text = (REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:begin -->\n(.*)<!-- settings:end -->", text, re.DOTALL)
    assert match, "docs/settings.md lost its <!-- settings:begin/end --> markers"
    assert match.group(1) == markdown_table(), (
        f"docs/settings.md is out of date: replace its table with the output of {REGENERATE}"
    )


def test_the_generated_table_lists_every_setting_with_its_default() -> None:
    table = markdown_table()
    for name, declared in SETTINGS.items():
        default = toml_text(declared.default).replace("|", "\\|")
        assert f"| `{name}` | `{default}` | {declared.rule.text} |" in table


def test_readme_settings_list_agrees_with_the_declaration() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Settings for any strategy")
    section = readme[start : readme.index("\n\n", readme.index("\n- ", start))]
    defaults = re.findall(r"`(\w+) = ([^`]+)`", section)
    assert {"task", "aggregate", "router", "verify", "verify_samples", "layout"} <= {
        key for key, _ in defaults
    }
    for key, value in defaults:
        assert value == toml_text(SETTINGS[key].default), f"README: {key} = {value}"
    flags = re.findall(r"`--([\w-]+) ([\w|]+)`", section)
    assert flags, "README's settings list shows no flag values"
    for flag, values in flags:
        declared = SETTINGS[flag.replace("-", "_")]
        assert set(values.split("|")) == set(declared.rule.choices), f"README: --{flag}"
