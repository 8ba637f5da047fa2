"""README's commands are the ones the project really runs, and the docs' links resolve."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import REPO_ROOT

README_MAX_LINES = 400

# Markdown files whose relative links must resolve: README, CONTRIBUTING and docs/.
DOCS = [
    "README.md",
    "CONTRIBUTING.md",
    *sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "docs").glob("*.md")),
]

# Inline links and images, [text](target) and ![alt](target "title"), with an
# optional <...> around the target; and reference definitions, [label]: target.
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text], one level of nested brackets allowed
    r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"  # (target "optional title")
)
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _block_after(marker: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*)\n```", readme)
    assert match, f"README.md has no command after <!-- {marker} -->"
    return match.group(1)


def _local_targets(markdown: str) -> list[tuple[str, str]]:
    """(path, fragment) of every link and image of ``markdown`` that stays in the repository.

    Links inside fenced code blocks and code spans are not links; targets with
    a scheme (``http:``, ``https:``, ``mailto:``) are left out. A pure
    ``#anchor`` has an empty path.
    """
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    targets = [
        *_INLINE_LINK.findall(text),
        *_REFERENCE_LINK.findall(text),
        *_HTML_LINK.findall(text),
    ]
    local = []
    for target in targets:
        if _SCHEME.match(target):
            continue
        path, _, fragment = target.partition("#")
        local.append((unquote(path.split("?", 1)[0]), unquote(fragment)))
    return local


def relative_links(markdown: str) -> list[str]:
    """The relative link and image paths of ``markdown``, without ``#fragment``s."""
    return [path for path, _ in _local_targets(markdown) if path]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown`` (``## A b`` -> ``a-b``)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^ {0,3}#{1,6} +(.+?) *#* *$", _FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _block_after("test-command") in ci_lines


def test_readme_run_command_installs_and_asks() -> None:
    command = _block_after("run-command")
    assert "pip install '.[llamacpp]'" in command and 'moa-local ask "' in command


def test_link_finder_sees_links_and_images_but_not_code() -> None:
    markdown = "\n".join(
        [
            "See [the guide](docs/guide.md#setup) and ![chart](../scripts/figures/a.png).",
            '[`code` in text](CONTRIBUTING.md "title") and [web](https://example.org/x.md),',
            "[mail](mailto:someone@example.org), [anchor](#quick-start), [dir](scripts/).",
            "[ref]: docs/ref.md",
            '<img src="img/logo.png" alt="">',
            "`[not a link](inline/code.md)`",
            "```",
            "[not a link](fenced/code.md)",
            "```",
        ]
    )
    assert relative_links(markdown) == [
        "docs/guide.md",
        "../scripts/figures/a.png",
        "CONTRIBUTING.md",
        "scripts/",
        "docs/ref.md",
        "img/logo.png",
    ]


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc: str) -> None:
    source = REPO_ROOT / doc
    broken = []
    for link in relative_links(source.read_text(encoding="utf-8")):
        target = (source.parent / link).resolve()
        if not target.is_relative_to(REPO_ROOT.resolve()) or not target.exists():
            broken.append(link)
    assert not broken, f"{doc} links to paths that do not exist in the repository: {broken}"


@pytest.mark.parametrize("doc", DOCS)
def test_anchors_name_headings(doc: str) -> None:
    """A ``#fragment`` pointing into a Markdown file names one of its headings."""
    source = REPO_ROOT / doc
    broken = []
    for path, fragment in _local_targets(source.read_text(encoding="utf-8")):
        target = (source.parent / path).resolve() if path else source
        if not fragment or target.suffix != ".md" or not target.is_file():
            continue  # a missing file is test_relative_links_resolve's to report
        if fragment not in heading_anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{path}#{fragment}")
    assert not broken, f"{doc} links to headings that do not exist: {broken}"


def test_anchor_names_follow_github() -> None:
    markdown = "# moa-local\n## `moa-local serve` under load\n### Serve: a mixture, as a model\n"
    markdown += "```\n# not a heading\n```\n## Serve: a mixture, as a model\n"
    assert heading_anchors(markdown) == {
        "moa-local",
        "moa-local-serve-under-load",
        "serve-a-mixture-as-a-model",
        "serve-a-mixture-as-a-model-1",
    }


def test_readme_links_to_the_docs() -> None:
    links = set(relative_links((REPO_ROOT / "README.md").read_text(encoding="utf-8")))
    expected = {"docs/quality.md", "docs/performance.md", "docs/design.md", "CONTRIBUTING.md"}
    assert expected <= links, f"README.md does not link to {sorted(expected - links)}"


def test_readme_is_a_users_guide_of_at_most_400_lines() -> None:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: move measurements "
        "and details to docs/"
    )


def test_docs_exist() -> None:
    assert {"docs/quality.md", "docs/performance.md", "docs/design.md"} <= set(DOCS)
    assert all(Path(REPO_ROOT / doc).is_file() for doc in DOCS)
