"""Checking the arithmetic a worked answer writes out, and repairing its last step.

Small models reason well enough and add badly: ``$204 + $160 + $330 = $794``.
A program can see that slip for certain, where no vote can (two samples of one
model often share it). :func:`find_slips` reads each equation of a reply whose
left side is a computation of numbers alone (``+ - * / ^``, ``\\times``,
``\\div``, ``\\frac{}{}``, ``x`` between numbers, ``%``) and whose right side
is one number, LaTeX, ``$``, thousands commas and units after a number aside,
and evaluates it exactly. A step with a letter in it (``2x = 14``, ``5% of
$20``) is not read: only what a program can settle counts, and a bare number
set equal to another (``-15 = -7.5``) is not a step.

:func:`repair` fixes a reply whose one slip is its last step, the one its
stated answer comes from: the result is written again as computed, in that
line and in every later line that repeats it (the ``Answer:`` line). A slip
in an earlier step cannot be repaired this way (the steps after it build on
the wrong number), nor one whose computed result is negative where the
written one is not (``40 - 200 = 20``: the writer meant another step), so
the reply is only known to be wrong.

Not slips: a result rounded on purpose to a whole number (``45 / 7 = 6``,
the floor or the ceiling), and a result within rounding of the computed value
(``10 / 3 = 3.33``).
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

# An equation's sides: "=" alone, not "<=", ">=", "==", "!=".
_EQUALS = re.compile(r"(?<![<>!=])=(?!=)")
# Math a model sets inline or on display lines: \( ... \), \[ ... \].
_MATH_SPAN = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]")
_FRACTION = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_LATEX_WORDS = re.compile(r"\\(?:text|mathrm|textbf|mathbf|mbox)\{([^{}]*)\}")
_TIMES = re.compile(r"\\times|\\cdot|×|⋅|(?<=[\d)])\s*[xX]\s*(?=[\d($\\])")
_DIVIDED = re.compile(r"\\div|÷")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*\\?%")
_SPACING = re.compile(r"\\left|\\right|\\[,!;: ]|\\quad|\\qquad")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Units after a number or a closing parenthesis: "200 GB", "15 miles/hour", "3 dollars".
_UNITS = re.compile(r"(?<=[\d)])\s+[A-Za-z]+(?:/[A-Za-z]+)?\b\.?")
# Words that scale the number before them: "$1.5 million + $500,000", "20 percent of".
_SCALED = re.compile(
    r"\d\s*(?:million|billion|trillion|thousand|hundred|dozens?|percent|k|m|bn|mn)\b", re.I
)
_ARITHMETIC = re.compile(r"[\d\s.+\-*/()^]+")
_COLON = re.compile(r"[:：]")  # "Total cost: 1 + 2" reads from after the colon
# Words before a computation: "First, 2 * 160", "which is 60 - 20". The last one has
# two letters or more ("y - 2 + 3" is algebra), is no LaTeX command ("T \times 3"),
# and says no operation ("T times 3", "half of 20").
_LEADING_WORDS = re.compile(
    r"^.*(?<![\\A-Za-z])(?!(?:times|plus|minus|of|by|over|per|than|and|or|into)\b)"
    r"[A-Za-z]{2,}\b[,:;]?\s+"
)
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")  # "1. 3 + 4 = 7", "- 3 + 4 = 7"
_SENTENCE_END = re.compile(r"(?<=\d)\.(?=\s|$)|[,;](?=\s)|\s(?:and|so|which|because)\s")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

MAX_EXPONENT = 64  # "2^1000000" is not a step of a worked answer, and would hang the reader
MAX_OPERANDS = 40

_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


@dataclass(frozen=True)
class Slip:
    """One step whose stated result is not what its computation gives."""

    line: int  # the index of the reply's line that holds it (``text.splitlines()``)
    computation: str  # the left side, as the reply writes it
    stated: str  # the result as written ("$794")
    stated_value: float
    computed: float

    def describe(self) -> str:
        """The step set right, as the user reads it: ``204 + 160 + 330 = 694, not 794``."""
        computed = format_value(self.computed)
        return f"{_plain(self.computation)} = {computed}, not {_plain(self.stated)}"


def find_slips(text: str) -> list[Slip]:
    """Every step of ``text`` whose written result differs from its computation, in order."""
    found: list[Slip] = []
    for index, line in enumerate(text.splitlines()):
        for span in _math_spans(line):
            sides = _EQUALS.split(span)
            if len(sides) < 2:
                continue
            sides[0] = _LIST_MARK.sub("", _COLON.split(sides[0])[-1])
            sides[-1] = _SENTENCE_END.split(sides[-1])[0]
            if evaluate(sides[0], computation=True) is None:
                sides[0] = _LEADING_WORDS.sub("", sides[0])
            for left, right in itertools.pairwise(sides):
                slip = _slip(index, left, right)
                if slip is not None:
                    found.append(slip)
    return found


@dataclass(frozen=True)
class Repair:
    """A reply with its last step's result written again as computed."""

    text: str
    slip: Slip


def repair(text: str, answer: float | None) -> Repair | None:
    """``text`` with its one slip repaired, when that slip is the step the stated
    ``answer`` comes from (its written result is the answer); else None."""
    slips = find_slips(text)
    if len(slips) != 1 or answer is None:
        return None
    slip = slips[0]
    if not math.isclose(slip.stated_value, answer, rel_tol=1e-9, abs_tol=1e-9):
        return None
    if slip.computed < 0 <= slip.stated_value:
        return None  # "40 - 200 = 20": the writer meant another step, not a negative answer
    lines = text.splitlines(keepends=True)
    written = _number_pattern(slip.stated_value)
    right = format_value(slip.computed, like=slip.stated)
    head, cut, tail = lines[slip.line].rpartition(slip.stated.strip())
    if not cut:
        return None
    lines[slip.line] = head + written.sub(right, cut, count=1) + tail
    for later in range(slip.line + 1, len(lines)):
        lines[later] = written.sub(right, lines[later])
    return Repair("".join(lines), slip)


def format_value(value: float, like: str = "") -> str:
    """``value`` as a reply writes a result: whole numbers without a decimal point, others
    to the decimals of ``like`` (at least two), thousands commas where ``like`` has them."""
    decimals = re.search(r"\.(\d+)", like.replace(",", ""))
    if value == round(value) and not decimals:
        shown = f"{round(value):,}" if "," in like else str(round(value))
    else:
        places = max(2, len(decimals.group(1)) if decimals else 0)
        shown = f"{value:,.{places}f}" if "," in like else f"{value:.{places}f}"
        if not decimals:
            shown = shown.rstrip("0").rstrip(".")
    return shown


def _math_spans(line: str) -> list[str]:
    """The math of one line: its ``\\( \\)`` and ``\\[ \\]`` spans, else the whole line."""
    spans = [inline or display for inline, display in _MATH_SPAN.findall(line)]
    return spans or [line]


def _slip(line: int, left: str, right: str) -> Slip | None:
    """The slip ``left = right`` makes, if ``left`` is a computation and ``right`` one
    number that differs from it by more than rounding."""
    computed = evaluate(left, computation=True)
    stated = evaluate(right, computation=False)
    if computed is None or stated is None:
        return None
    if abs(computed - stated) <= max(0.01, 0.005 * abs(stated)):
        return None
    if stated == round(stated) and stated in (math.floor(computed), math.ceil(computed)):
        return None  # rounded to a whole number on purpose (people, boxes, trips)
    return Slip(line, left.strip(), right.strip().rstrip("."), stated, computed)


def evaluate(expression: str, *, computation: bool) -> float | None:
    """The value of ``expression`` when it is arithmetic on numbers alone; with
    ``computation``, only when it computes something (an operator between numbers),
    else only when it is one number. None otherwise."""
    text = _numbers_only(expression)
    if text is None or len(re.findall(r"\d+(?:\.\d+)?", text)) > MAX_OPERANDS:
        return None  # a step has a few numbers; a run of thousands would recurse too deep
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if computation != isinstance(tree, ast.BinOp):
        return None
    try:
        return _value(tree)
    except (ArithmeticError, ValueError, RecursionError):
        return None


def _numbers_only(expression: str) -> str | None:
    """``expression`` as Python arithmetic, or None when anything but numbers,
    operators, parentheses, units after a number and markup is in it."""
    text = _LATEX_WORDS.sub(r" \1", expression)
    if _SCALED.search(text):
        return None  # read as units they would be dropped, and the value with them
    previous = None
    while previous != text:
        previous = text
        text = _FRACTION.sub(r"((\1)/(\2))", text)
    text = _TIMES.sub("*", text)
    text = _DIVIDED.sub("/", text)
    text = _PERCENT.sub(r"(\1/100)", text)
    text = _SPACING.sub(" ", text)
    text = text.replace("\\$", "").replace("$", "").replace("{", "(").replace("}", ")")
    text = _THOUSANDS.sub("", text)
    text = _UNITS.sub("", text).strip().rstrip(".").strip()
    if not text or not _ARITHMETIC.fullmatch(text) or not re.search(r"\d", text):
        return None
    if re.search(r"[\d.)]\s+[\d(.]", text):
        return None  # two numbers side by side: a list or a label, not one expression
    return text.replace("^", "**")


def _value(node: ast.expr) -> float:
    """The value of a parsed arithmetic expression; ValueError for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError("exponent too large")
        return float(_OPERATORS[type(node.op)](left, right))
    raise ValueError("not arithmetic")


def _number_pattern(value: float) -> re.Pattern[str]:
    """A number equal to ``value`` as a reply may write it (``1696``, ``1,696``,
    ``1696.00``), not part of a longer number."""
    if value == round(value):
        whole = abs(round(value))
        forms = sorted({str(whole), f"{whole:,}"}, key=len, reverse=True)
        sign = "-" if value < 0 else ""
        body = "|".join(re.escape(form) for form in forms)
        return re.compile(rf"(?<![\d.,]){sign}(?:{body})(?:\.0+)?(?![\d]|[.,]\d)")
    return re.compile(rf"(?<![\d.,]){re.escape(format_value(value))}0*(?![\d]|[.,]\d)")


def _plain(text: str) -> str:
    """A step as plain text: LaTeX marks and extra spaces out."""
    text = _LATEX_WORDS.sub(r"\1", text)
    text = _TIMES.sub(" * ", text)
    text = _DIVIDED.sub(" / ", text)
    text = _SPACING.sub(" ", text).replace("\\$", "$").replace("\\%", "%")
    return " ".join(text.split())


__all__ = ["Repair", "Slip", "evaluate", "find_slips", "format_value", "repair"]
