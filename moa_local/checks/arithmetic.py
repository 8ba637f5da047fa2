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
step and in the lines after it up to the one that states the answer. A slip
in an earlier step cannot be repaired this way (the steps after it build on
the wrong number), so the reply is only known to be wrong.

Not slips: a result within the rounding its decimals show (``10 / 3 = 3.3``), or
right when a term that rounds a simple fraction stands for it (``0.33 * 300 = 100``),
a whole number that is the floor or the ceiling on purpose (``45 / 7 = 6``),
a result of the other sign (``12/25 - 12/20 = 5 days``, ``2010-2015``: a date
or a range, not a computation). Not read: a sum of different units or a result in
another unit than its terms (``1 hour + 30 minutes = 1.5 hours``: a conversion), a
percentage added or taken away (``$50 - 10% = $45``), a number with a scale word
(``$1.5 million``), a time (``1:30 x 2``), prose before a step unless it leads into
it ("which is", "First,": ``Step 3 - 5 + 2 = 7`` is left alone).
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
_PERCENT = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*\\?%")
# A percentage added or taken away is relative ("$50 - 10% = $45"), not a hundredth.
_RELATIVE_PERCENT = re.compile(r"[+\-−]\s*\(?\d+(?:\.\d+)?\s*\\?%")
_SPACING = re.compile(r"\\left|\\right|\\[,!;: ]|\\quad|\\qquad")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Words that say an operation: never units to drop, never the prose before a step.
_OPERATION_WORDS = (
    r"(?:times|plus|minus|over|divided|multiplied|and|or|of|to|by|per|less|more|than|"
    r"squared|cubed|square|cube|root|twice|thrice|half|double|triple|percent)\b"
)
# Units after a number or a closing parenthesis: "200 GB", "15 miles/hour", "3 dollars".
_UNITS = re.compile(
    rf"(?<=[\d)])\s+(?!{_OPERATION_WORDS})[A-Za-z]+(?:/[A-Za-z]+)?\b\.?", re.IGNORECASE
)
# Words that scale the number before them: "$1.5 million + $500,000", "20 percent of".
_SCALED = re.compile(
    r"\d\s*(?:million|billion|trillion|thousand|hundred|dozens?|percent|k|m|bn|mn)\b", re.I
)
_ARITHMETIC = re.compile(r"[\d\s.+\-*/()^]+")
# A label before a step ends at a colon followed by a space ("Total cost: 1 + 2"), never
# at one between digits ("1:30 × 2" is a time).
_COLON = re.compile(r"[:：](?=\s|$)")
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")  # "1. 3 + 4 = 7", "- 3 + 4 = 7"
# Prose before a step, read past only when it ends in a word that leads into a result
# or a comma: "First, 2 * 160", "which is 60 - 20". Anything else before the numbers
# ("Step 3 - 5", "Apples - 5 * 2", "y - 2 + 3") may be part of what is computed.
_LEADING_WORDS = re.compile(
    r"^.*(?:\b(?:is|are|was|were|be|equals|gives|makes|gets?|then|so|thus|therefore|"
    r"hence|which|that)\b|[A-Za-z]{2,},)\s+",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=\d)\.(?=\s|$)|[,;](?=\s)|\s(?:and|so|which|because)\s")
_DECIMALS = re.compile(r"\.(\d+)")
# A number of two or three decimals, the last not 0: "0.33", "0.167" (not "1.10").
_ROUNDED_DECIMAL = re.compile(r"(?<![\d.])\d+\.\d?\d[1-9](?![\d.])")
_MAX_ROUNDED_TERMS = 3  # each has a few fractions; the choices multiply

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
    start: int  # where the written result is in that line: ``line[start:end]``
    end: int
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
        for span_start, span_end in _math_spans(line):
            found += _slips_in(index, line, span_start, span_end)
    return found


def _slips_in(index: int, line: str, span_start: int, span_end: int) -> list[Slip]:
    """The slips of the equation ``line[span_start:span_end]``, if it is one."""
    cuts = [m.start() for m in _EQUALS.finditer(line, span_start, span_end)]
    if not cuts:
        return []
    # Each side as (start, end) offsets in the line.
    sides = list(zip([span_start, *(c + 1 for c in cuts)], [*cuts, span_end], strict=True))
    first = _LIST_MARK.sub("", _COLON.split(line[sides[0][0] : sides[0][1]])[-1])
    if evaluate(first, computation=True) is None:
        first = _LEADING_WORDS.sub("", first)
    last_start, last_end = sides[-1]
    ending = _SENTENCE_END.search(line, last_start, last_end)
    sides[-1] = (last_start, ending.start() if ending else last_end)
    found: list[Slip] = []
    for position, ((left_start, left_end), (right_start, right_end)) in enumerate(
        itertools.pairwise(sides)
    ):
        left = first if position == 0 else line[left_start:left_end]
        slip = _slip(index, left, line, right_start, right_end)
        if slip is not None:
            found.append(slip)
    return found


@dataclass(frozen=True)
class Repair:
    """A reply with its last step's result written again as computed."""

    text: str
    slip: Slip


def repair(text: str, answer: float, answer_line: int) -> Repair | None:
    """``text`` with its one slip repaired, when that slip is the step the stated
    ``answer`` comes from: its written result is the answer, and the answer is stated
    on ``answer_line`` (an index of ``text.splitlines()``), at or after the step. The
    result is written again as computed in the step, after it in its line, and in the
    lines after it up to the answer's; None when the reply is not of that kind, or
    when a slip is left after the repair."""
    slips = find_slips(text)
    if len(slips) != 1:
        return None
    slip = slips[0]
    if not math.isclose(slip.stated_value, answer, rel_tol=1e-9, abs_tol=1e-9):
        return None
    lines = text.splitlines(keepends=True)
    if not slip.line <= answer_line < len(lines):
        return None  # the answer is stated before the step: it does not come from it
    written = _number_pattern(slip.stated_value)

    def right(match: re.Match[str]) -> str:
        return format_value(slip.computed, like=match.group())  # "$13.00" -> "$12.00"

    line = lines[slip.line]
    # The step's own result, and the line after it ("= 13, so she pays $13.00").
    after = written.sub(right, line[slip.start :])
    lines[slip.line] = line[: slip.start] + after
    for later in range(slip.line + 1, answer_line + 1):
        lines[later] = written.sub(right, lines[later])
    fixed = "".join(lines)
    return Repair(fixed, slip) if not find_slips(fixed) else None


def format_value(value: float, like: str = "") -> str:
    """``value`` as a reply writes a result: to the decimals of ``like`` when it has
    some, else whole numbers without a decimal point and others to two decimals;
    thousands commas where ``like`` has them."""
    decimals = _DECIMALS.search(like.replace(",", ""))
    places = len(decimals.group(1)) if decimals else (0 if value == round(value) else 2)
    shown = f"{value:,.{places}f}" if "," in like else f"{value:.{places}f}"
    if not decimals and places:
        shown = shown.rstrip("0").rstrip(".")
    return shown


def _math_spans(line: str) -> list[tuple[int, int]]:
    """Where the math of one line is: its ``\\( \\)`` and ``\\[ \\]`` spans, else the
    whole line, as (start, end) offsets."""
    spans = [m.span(1) if m.group(1) is not None else m.span(2) for m in _MATH_SPAN.finditer(line)]
    return spans or [(0, len(line))]


def _slip(line: int, left: str, text: str, start: int, end: int) -> Slip | None:
    """The slip ``left = text[start:end]`` makes, if ``left`` is a computation and the
    right side one number that differs from it by more than its rounding."""
    right = text[start:end]
    if _converts_units(left, right):
        return None
    computed = evaluate(left, computation=True)
    stated = evaluate(right, computation=False)
    if computed is None or stated is None or not math.isfinite(computed):
        return None
    if (computed < 0 < stated) or (stated < 0 < computed):
        return None  # "12/25 - 12/20 = 5 days", "2010-2015 = 5 years": not a computation
    number = _number_pattern(stated).search(text, start, end)
    if number is None:
        return None
    decimals = _DECIMALS.search(number.group().replace(",", ""))
    places = len(decimals.group(1)) if decimals else 0
    if abs(computed - stated) <= 0.5 * 10**-places + 1e-9 * max(1.0, abs(stated)):
        return None  # the written result is the computed one, rounded
    if not places and stated in (math.floor(computed), math.ceil(computed)):
        return None  # rounded to a whole number on purpose (people, boxes, trips)
    if any(abs(value - stated) <= 0.5 * 10**-places for value in _unrounded_values(left)):
        return None  # "0.33 * 300 = 100": a term was rounded before it was used
    return Slip(
        line,
        number.start(),
        number.end(),
        left.strip(),
        right.strip().rstrip("."),
        stated,
        computed,
    )


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
        value = _value(tree)
    except (ArithmeticError, ValueError, TypeError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def _numbers_only(expression: str) -> str | None:
    """``expression`` as Python arithmetic, or None when anything but numbers,
    operators, parentheses, units after a number and markup is in it."""
    text = _LATEX_WORDS.sub(r" \1", expression)
    if _SCALED.search(text) or _RELATIVE_PERCENT.search(text):
        return None  # read as units they would be dropped, and the value with them
    previous = None
    while previous != text:
        previous = text
        text = _FRACTION.sub(r"((\1)/(\2))", text)
    text = _TIMES.sub("*", text)
    text = _DIVIDED.sub("/", text)
    text = _PERCENT.sub(r"(\1/100)", text)
    text = _SPACING.sub(" ", text).replace("−", "-")
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
        result = _OPERATORS[type(node.op)](left, right)
        if not isinstance(result, float | int):
            raise ValueError("not a real number")  # (-8) ** (1/3) is complex
        return float(result)
    raise ValueError("not arithmetic")


def _converts_units(left: str, right: str) -> bool:
    """Whether the step ``left = right`` adds or subtracts in more than one unit, or
    states its sum in a unit its terms do not have: a conversion
    (``1 hour + 30 minutes = 1.5 hours``), whose numbers alone do not add up. A
    product or a quotient may change the unit (``5 hours × 60 minutes/hour``)."""
    if (
        "*" in left
        or "/" in left
        or any(pattern.search(left) for pattern in (_TIMES, _DIVIDED, _FRACTION))
    ):
        return False
    terms = _unit_names(left)
    return len(terms) > 1 or bool(terms and _unit_names(right) - terms)


def _unit_names(expression: str) -> set[str]:
    """The units written after the numbers of ``expression``, singular and lower case."""
    words = _UNITS.findall(_LATEX_WORDS.sub(r" \1", expression))
    return {re.sub(r"s$", "", word.strip().rstrip(".").lower()) for word in words}


def _unrounded_values(expression: str) -> list[float]:
    """The values ``expression`` takes when its numbers of two or three decimals that
    round a simple fraction (``0.33`` for 1/3, ``0.17`` for 1/6; denominators up to
    12, none ending in 0) stand for that fraction: a writer who rounded a term
    before using it (``0.33 * 300 = 100``) did not slip."""
    text = _numbers_only(expression)
    if text is None:
        return []
    numbers = list(_ROUNDED_DECIMAL.finditer(text))[:_MAX_ROUNDED_TERMS]
    choices = [[number.group(), *_fractions_rounded_to(number.group())] for number in numbers]
    if all(len(options) == 1 for options in choices):
        return []
    values = []
    for chosen in itertools.product(*choices):
        pieces, last = [], 0
        for number, written in zip(numbers, chosen, strict=True):
            pieces += [text[last : number.start()], written]
            last = number.end()
        value = evaluate("".join(pieces) + text[last:], computation=True)
        if value is not None:
            values.append(value)
    return values


def _fractions_rounded_to(written: str) -> list[str]:
    """``(p/q)`` for each fraction with q up to 12 that ``written`` rounds but is not."""
    value, places = float(written), len(written.partition(".")[2])
    found: dict[float, str] = {}
    for denominator in range(3, 13):
        numerator = round(value * denominator)
        fraction = numerator / denominator
        if abs(fraction - value) < 0.5 * 10**-places and not math.isclose(fraction, value):
            found.setdefault(fraction, f"({numerator}/{denominator})")
    return list(found.values())


def _number_pattern(value: float) -> re.Pattern[str]:
    """A number equal to ``value`` as a reply may write it (``1696``, ``1,696``,
    ``1696.00``), not part of a longer number."""
    if value == round(value):
        whole = abs(round(value))
        forms = sorted({str(whole), f"{whole:,}"}, key=len, reverse=True)
        sign = "-?" if value < 0 else ""
        body = "|".join(re.escape(form) for form in forms)
        return re.compile(rf"(?<![\d.,]){sign}(?:{body})(?:\.0+)?(?![\d]|[.,]\d)")
    integer, _, fraction = f"{abs(value):.12f}".rstrip("0").partition(".")
    wholes = sorted({integer, f"{int(integer):,}"}, key=len, reverse=True)
    body = "|".join(re.escape(form) for form in wholes)
    return re.compile(rf"(?<![\d.,])-?(?:{body})\.{fraction}0*(?![\d]|[.,]\d)")


def _plain(text: str) -> str:
    """A step as plain text: LaTeX marks and extra spaces out."""
    text = _LATEX_WORDS.sub(r"\1", text)
    text = _TIMES.sub(" * ", text)
    text = _DIVIDED.sub(" / ", text)
    text = _SPACING.sub(" ", text).replace("\\$", "$").replace("\\%", "%")
    return " ".join(text.split())


__all__ = ["Repair", "Slip", "evaluate", "find_slips", "format_value", "repair"]
