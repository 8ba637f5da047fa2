"""Recognising code questions and taking programs out of model answers.

Small models wrap code in prose, open a fence and never close it (cut off by
``max_tokens``), label it ``py`` or nothing, or give several fragments. These
helpers find the one program an answer means, so that aggregation, verification
and evaluation all agree on what "the code" of an answer is.
"""

from __future__ import annotations

import ast
import re
import textwrap

# A fenced block: ```lang\n ... ``` ; the closing fence is optional at the end
# of the text, since a generation cut off by max_tokens never writes it.
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_PYTHON_LABELS = {"", "python", "py", "python3", "py3"}

# Phrases that ask for code. Kept general on purpose (no benchmark wording).
_CODE_REQUEST = re.compile(
    r"\b(write|implement|complete|create|fix|refactor|code|define)\b[^.?!\n]{0,60}"
    r"\b(function|program|script|class|method|code|snippet|implementation|regex|query)\b"
    r"|\b(in|using)\s+(python|javascript|typescript|rust|go|java|c\+\+|c#|bash|sql)\b"
    r"|```|^\s*(def|class|import|from)\s+\w+",
    re.IGNORECASE | re.MULTILINE,
)


def asks_for_code(question: str) -> bool:
    """Whether ``question`` asks for a program (a code block, a signature, "write a function")."""
    return bool(_CODE_REQUEST.search(question))


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` as ``(language label, code)``, in order."""
    return [(label.lower(), body) for label, body in _FENCE.findall(text)]


def parses(code: str) -> bool:
    """Whether ``code`` is syntactically valid Python."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines a function or class called ``name`` at its top level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
        for node in tree.body
    )


def extract_python(text: str, entry_point: str | None = None) -> str | None:
    """The Python program an answer means, or None when it holds no code.

    Preference: fenced Python blocks that parse and define ``entry_point``
    (when given), then any that parse, then the longest; the last of equals
    wins, since models put their final version last. Without fences, the
    answer itself when it parses, else its longest run of lines that parses
    starting at a ``def``/``import``/``class`` line.
    """
    blocks = [body for label, body in code_blocks(text) if label in _PYTHON_LABELS]
    blocks = [textwrap.dedent(body).strip("\n") for body in blocks if body.strip()]
    if blocks:
        return _best(blocks, entry_point)
    stripped = text.strip()
    if stripped and parses(stripped) and _looks_like_code(stripped):
        return stripped
    return _code_run(text, entry_point)


def _best(candidates: list[str], entry_point: str | None) -> str:
    def rank(item: tuple[int, str]) -> tuple[bool, bool, int, int]:
        position, code = item
        return (
            entry_point is None or defines(code, entry_point),
            parses(code),
            len(code),
            position,
        )

    return max(enumerate(candidates), key=rank)[1]


def _looks_like_code(text: str) -> bool:
    # Plain prose can parse as Python (a single name, say); require a statement.
    return re.search(
        r"^\s*(def|class|import|from|return|for|while|if|print)\b", text, re.M
    ) is not (None)


def _code_run(text: str, entry_point: str | None) -> str | None:
    lines = text.splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if re.match(r"(def|class|import|from|@)\b|async def", line)
    ]
    found: list[str] = []
    for start in starts:
        for end in range(len(lines), start, -1):
            chunk = "\n".join(lines[start:end]).strip()
            if parses(chunk):
                found.append(chunk)
                break
    return _best(found, entry_point) if found else None


def normalize_code(code: str) -> str:
    """A canonical form of ``code`` for comparing answers: AST dump without docstrings.

    Two programs that differ only in comments, blank lines, quotes or
    docstrings normalize to the same text; unparsable code falls back to its
    whitespace-collapsed text.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return " ".join(code.split())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree, annotate_fields=False)


def fence(code: str) -> str:
    """``code`` in a Python fenced block."""
    return f"```python\n{code.strip()}\n```"
