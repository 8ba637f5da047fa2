"""Recognising code questions and taking programs out of model answers.

Small models wrap code in prose, open a fence and never close it (cut off by
``max_tokens``), label it ``py`` or nothing, or give several fragments. These
helpers find the one program an answer means, so that aggregation, verification
and evaluation all agree on what "the code" of an answer is.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
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


# Names every module has without defining them.
_MODULE_NAMES = frozenset(dir(builtins)) | {"__file__", "__builtins__", "__annotations__"}


def undefined_names(program: str, question: str = "") -> set[str]:
    """Names ``program`` reads from the module scope but never defines or imports.

    A static check (nothing runs): such a program stops with a ``NameError``
    where it uses the name, typically a module it forgot to import. Names
    the question's own code defines or imports count as defined (the
    program may be meant to follow that code), and so do builtins. A program
    that does not parse, or imports with ``*``, has none that can be told.
    """
    tables = _module_tables(program)
    if tables is None:
        return set()
    defined = _MODULE_NAMES | _bound_names(tables)
    for text in [question, *(body for _, body in code_blocks(question))]:
        given = _module_tables(text) if text.strip() else None
        if given is not None:
            defined |= _bound_names(given)
    return {name for name in _global_reads(tables) if name not in defined}


def is_whole(program: str, question: str = "") -> bool:
    """Whether ``program`` parses and uses no name it never defines (:func:`undefined_names`)."""
    return parses(program) and not undefined_names(program, question)


def _module_tables(source: str) -> symtable.SymbolTable | None:
    """The symbol table of ``source``; None when it does not parse or star-imports."""
    try:
        tree = ast.parse(source)
        table = symtable.symtable(source, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
    return table


def _bound_names(module: symtable.SymbolTable) -> set[str]:
    """Names bound at module scope: assigned, imported, def/class, or ``global`` and assigned."""
    bound = {
        s.get_name()
        for s in module.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    }
    for table in _scopes(module):
        bound |= {
            s.get_name() for s in table.get_symbols() if s.is_declared_global() and s.is_assigned()
        }
    return bound


def _global_reads(module: symtable.SymbolTable) -> set[str]:
    """Names some scope reads from the module scope (or builtins)."""
    reads = {s.get_name() for s in module.get_symbols() if s.is_referenced()}
    for table in _scopes(module):
        reads |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
    return reads


def _scopes(table: symtable.SymbolTable) -> list[symtable.SymbolTable]:
    """Every scope nested in ``table``, at any depth."""
    nested = []
    for child in table.get_children():
        nested += [child, *_scopes(child)]
    return nested
