"""The function a code question asks for, and the examples it states, as asserts.

Questions show the behaviour they want in many notations: doctests
(``>>> f(2)`` then ``4``), asserts, one-line examples (``f(2) == 4``,
``f(2) => 4``, ``f(2) ➞ 4``, ``f(2)  # returns 4``), and, for a function of one
argument, ``Input: 2`` / ``Output: 4`` pairs or "For x = 2 the output should
be 4". Each example becomes one ``assert call == expected`` line, kept only
when the call's arguments and the expected value are plain literals (so that
prose such as ``f(x) -> x - 1 = 8`` or a made-up name never becomes a test
that no program can pass).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import textwrap
from dataclasses import dataclass

from .programs import code_blocks

# Between a call and its expected value: arrows, "==", "returns", "should be"...
_SEPARATOR = re.compile(
    r"\s*(?:==>|==|=>|-->|->|➞|→|⟶|=|:|,)?\s*"
    r"(?:#\s*)?(?:(?:it\s+)?(?:returns?|should\s+(?:return|be|give|output)|gives?|is|outputs?)\b)?"
    r"\s*(?:==>|=>|->|➞|→|:)?\s*",
    re.IGNORECASE,
)
# Separators that state a value outright, as a call in mid-sentence must.
_EXPLICIT = re.compile(r"==|->|=>|➞|→|⟶|\breturns?\b|\bshould\b|\bgives?\b|\boutputs?\b", re.I)
_CLAUSE_END = re.compile(r"\s*(?:$|[.,;:!?)]|(?:and|or|but)\b)")
_BUILTINS = frozenset(dir(builtins))
_CODE_START = re.compile(r"\s*(?:def|async\s+def|class|import|from)\s")
_LEAD_IN = re.compile(r"(?:^|\W)(?:e\.g\.|for example|for instance|such that)[,:]?$", re.I)
_PYTHON_WORDS = {"true": "True", "false": "False", "none": "None", "null": "None"}
_INPUT = re.compile(r"^\s*input\s*:\s*(?:\w+\s*=\s*)?(.+?)\s*$", re.IGNORECASE)
_OUTPUT = re.compile(r"^\s*output\s*:\s*(.+?)\s*$", re.IGNORECASE)
_FOR_VALUE = re.compile(
    r"^\s*for\s+\w+\s*=\s*(.+?),?\s+the\s+(?:output|result|answer)\s+should\s+be\s+(.+?)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Signature:
    """A function the question shows: its name, how many parameters it takes, and
    whether it is a stub (a body of only a docstring, ``pass`` or ``...``)."""

    name: str
    parameters: int
    stub: bool


def signatures(question: str) -> list[Signature]:
    """Every top-level function the question's code shows, in order."""
    found: list[Signature] = []
    for tree in _code_trees(question):
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                count = len(arguments.posonlyargs) + len(arguments.args)
                found.append(Signature(node.name, count, _is_stub(node.body)))
    return found


def _code_trees(question: str) -> list[ast.Module]:
    """The question's code that parses: its fenced blocks, else its text from the
    first ``def``/``import``/``class`` line (fence lines dropped), cut to the
    longest part that parses."""
    trees = [tree for _, body in code_blocks(question) if (tree := _parse(body))]
    if any(_has_function(tree) for tree in trees):
        return trees
    lines = [line for line in question.splitlines() if not line.lstrip().startswith("```")]
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    if not starts:
        return trees
    for end in range(len(lines), starts[0], -1):
        tree = _parse("\n".join(lines[starts[0] : end]))
        if tree is not None:
            return [*trees, tree]
    return trees


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        return None


def _has_function(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body)


def target(question: str) -> Signature | None:
    """The function to write: the last stub the question shows, else its first function."""
    shown = signatures(question)
    stubs = [s for s in shown if s.stub]
    if stubs:
        return stubs[-1]
    return shown[0] if shown else None


def named_by_examples(question: str) -> str | None:
    """The function a question without code names in its examples ("add(2, 3) == 5"):
    the one with the most, first on a tie; never a builtin."""
    counts: dict[str, int] = {}
    for name in dict.fromkeys(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", question)):
        if name in _BUILTINS or keyword.iskeyword(name):
            continue
        if found := len(stated_examples(question, name)):
            counts[name] = found
    return max(counts, key=lambda name: counts[name]) if counts else None


def stated_examples(question: str, entry: str | None, parameters: int | None = None) -> list[str]:
    """The examples ``question`` states for ``entry``, each as one assert line, in order.

    ``parameters`` is the function's parameter count when known: only a
    one-parameter function reads ``Input:``/``Output:`` pairs and "For x = ..."
    lines, which do not name the function.
    """
    tests: list[str] = []
    lines = question.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        following = lines[index + 1 : index + 3]
        test = _doctest(stripped, following[0].strip() if following else "", entry) or _assert(
            stripped, entry
        )
        if test is not None:
            tests.append(test)
            continue
        inline = _inline(stripped, entry)
        if not inline and entry and parameters == 1:
            one = _input_output(stripped, following, entry) or _for_value(stripped, entry)
            inline = [one] if one else []
        tests += inline
    return tests


def _doctest(line: str, answer: str, entry: str | None) -> str | None:
    if not line.startswith(">>>"):
        return None
    call = line[3:].strip()
    if not call or not answer or answer.startswith(">>>") or (entry and entry not in call):
        return None
    try:  # unparsed, so that a comment after the call cannot swallow "== answer"
        call = ast.unparse(ast.parse(call, mode="eval"))
    except (SyntaxError, ValueError):
        return None
    return f"assert {call} == {answer}"


def _assert(line: str, entry: str | None) -> str | None:
    if line.startswith("assert ") and (entry is None or entry in line):
        return line
    return None


def _inline(line: str, entry: str | None) -> list[str]:
    """Every ``entry(args) <separator> expected`` on one line, args and expected literal.

    A call that opens the line (after a bullet, a label or "for example")
    may use any separator; one in the middle of a sentence ("Write add(a, b);
    add(2, 3) should return 5") only an explicit one (``==``, an arrow,
    "returns", "should be"...), and its value must end a clause, so that
    prose around a call does not become a test.
    """
    if not entry:
        return []
    line = line.replace("`", "")  # `f(2)` returns 4
    found = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(entry)}\s*\(", line):
        before = line[: match.start()].strip(" -*•\t")
        opens = not before or before.endswith(":") or _LEAD_IN.search(before) is not None
        end = _closing_paren(line, match.end() - 1)
        if end is None:
            continue
        call = line[match.start() : end + 1]
        rest = line[end + 1 :]
        separator = _SEPARATOR.match(rest)
        if separator is None or separator.end() == 0:
            continue
        if not opens and not _EXPLICIT.search(separator.group()):
            continue
        value = rest[separator.end() :]
        expected = _literal(value) if opens else _leading_literal(value)
        if expected is not None and _literal_call(call, entry):
            found.append(f"assert {call} == {expected}")
    return found


def _leading_literal(text: str) -> str | None:
    """The longest literal that opens ``text`` and ends a clause (the text ends, or a
    punctuation mark or "and"/"or" follows), or None."""
    for end in range(len(text), 0, -1):
        if _CLAUSE_END.match(text, end) and (literal := _literal(text[:end])) is not None:
            return literal
    return None


def _input_output(line: str, following: list[str], entry: str) -> str | None:
    given = _INPUT.match(line)
    if given is None:
        return None
    for after in following:
        output = _OUTPUT.match(after)
        if output:
            return _single_argument(entry, given.group(1), output.group(1))
    return None


def _for_value(line: str, entry: str) -> str | None:
    match = _FOR_VALUE.match(line)
    return _single_argument(entry, match.group(1), match.group(2)) if match else None


def _single_argument(entry: str, argument: str, result: str) -> str | None:
    value, expected = _literal(argument), _literal(result)
    if value is None or expected is None:
        return None
    return f"assert {entry}({value}) == {expected}"


def _literal(text: str) -> str | None:
    """``text`` as the source of a Python literal (true/false/null spelled as
    Python), or None when it is not one; a sentence's final period is dropped."""
    text = text.strip()
    for candidate in (text.rstrip(".,;").strip(), text):
        candidate = _PYTHON_WORDS.get(candidate.lower(), candidate)
        if not candidate:
            continue
        try:
            ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return candidate
    return None


def _literal_call(call: str, entry: str) -> bool:
    try:
        node = ast.parse(call, mode="eval").body
    except (SyntaxError, ValueError):
        return False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id != entry:
        return False
    try:
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(argument)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _closing_paren(text: str, opening: int) -> int | None:
    """Index of the parenthesis closing the one at ``opening``, skipping strings."""
    depth, quote, index = 0, "", opening
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _is_stub(body: list[ast.stmt]) -> bool:
    for statement in body:
        if isinstance(statement, ast.Pass):
            continue
        if (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and (isinstance(statement.value.value, str) or statement.value.value is Ellipsis)
        ):
            continue
        return False
    return True
