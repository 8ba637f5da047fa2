"""HumanEval without its examples: the code questions people type state none.

The same 164 problems, splits and tests as :mod:`.humaneval`, but the model
sees each prompt without the examples the project's own examples reader
(:mod:`moa_local.checks.examples`) finds: doctest lines (``>>> f(2)``) and
their outputs, one-line examples (``f(2) == 4``, ``f(2) ➞ 4``...), and the
"For example:" lines that introduced them. The description stays. A test
keeps the reader finding no example left in any prompt, so a mixture run on
this suite gets no stated example to test against: only what it writes.
"""

from __future__ import annotations

import re
from typing import Any

from ..checks import examples
from .humaneval import HumanEvalSuite

# A line that only introduces examples: "For example:", "Examples", "e.g.", "Example 1:".
_HEADER = re.compile(
    r"^\s*(?:for\s+example|for\s+instance|examples?(?:\s*\d+)?|e\.g\.|sample\s+\w+)\s*[:,.]?\s*$",
    re.IGNORECASE,
)
_IO_LINE = re.compile(r"^\s*(?:input|output|explanation)\s*:", re.IGNORECASE)


def strip_examples(prompt: str, entry: str) -> str:
    """``prompt`` without the examples the examples reader finds, nor their headers."""
    kept: list[str] = []
    in_doctest = removed = False
    for line in prompt.splitlines():
        stripped = line.strip()
        if in_doctest and (not stripped or stripped.startswith(('"""', "'''"))):
            in_doctest = False  # a doctest's output runs to a blank line or the docstring's end
        if (
            stripped.startswith(">>>")
            or in_doctest
            or examples.stated_examples(line, entry, 1)
            or _IO_LINE.match(line)
            or _HEADER.match(line)
        ):
            in_doctest = in_doctest or stripped.startswith(">>>")
            removed = True
            continue
        if not stripped and removed and kept and not kept[-1].strip():
            continue  # no run of blank lines where examples were
        kept.append(line)
        removed = removed and not stripped
    return "\n".join(kept) + ("\n" if prompt.endswith("\n") else "")


class HumanEvalNoExamplesSuite(HumanEvalSuite):
    """HumanEval's problems with their stated examples removed from what the model sees."""

    name = "humaneval-noex"

    def shown(self, record: dict[str, Any]) -> str:
        """The record's prompt without its examples."""
        return strip_examples(str(record["prompt"]), str(record["entry_point"]))
