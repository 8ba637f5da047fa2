"""The form a text question states for its answer, read by a program, and checked.

"Why is the sky blue? Answer in three sentences." states something a
program can check exactly; so do "in at least 60 words", "do not use any
commas", "write everything in lowercase", "end your response with 'Any
other questions?'", "wrap your whole answer in double quotation marks",
"reply in JSON". :func:`stated_constraints` reads such constraints out of the
question (the common English phrasings of instruction-following benchmarks'
verifiable instructions, IFEval's taxonomy), and each :class:`Constraint`
says of an answer what is unmet, in words a reviser can act on ("the
question asks for exactly 3 sentences; the answer has 1").

A phrase is read as a constraint only in a shape that leaves no doubt
(a count needs a comparison word or "in"/"with"/"using" before it; a phrase
to end with needs quotes), so that a question that merely mentions words or
sentences is not held to a form it never asked for. Nothing here runs code a
model wrote: the checks are this module's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_NUMBER_WORDS = {
    "one": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100,
}  # fmt: skip
_NUMBER = r"(?P<n>\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_COMPARISON = (
    r"(?P<cmp>exactly|precisely|at\s+least|at\s+most|no\s+more\s+than|no\s+fewer\s+than|"
    r"no\s+less\s+than|fewer\s+than|less\s+than|more\s+than|over|under|up\s+to|a\s+maximum\s+of|"
    r"a\s+minimum\s+of|maximum|minimum)"
)
_UNIT = (
    r"(?P<unit>sentences?|words?|paragraphs?|bullet\s+points?|bullets?|"
    r"(?:numbered\s+)?(?:list\s+)?items?|lines?)\b"
)
_COUNT = re.compile(
    rf"(?:\b{_COMPARISON}\s+|\b(?P<lead>in|into|with|using|use|write|give)\s+(?:only\s+)?)"
    rf"{_NUMBER}\s+(?:(?:short|brief|complete|full|separate|distinct|concise)\s+)?{_UNIT}",
    re.IGNORECASE,
)
_MAX_PARTS = 100  # sentences, paragraphs, bullets, items or lines an answer may be asked for
_MAX_WORDS = 5000
_QUOTED = r"[\"'“‘](?P<text>[^\"'“”‘’\n]{1,120})[\"'”’]"
_ENDS = re.compile(
    r"\b(?:end|finish|conclude)s?\s+(?:your\s+|the\s+|each\s+)?(?:entire\s+)?"
    r"(?:response|answer|reply|text|message|it)?\s*with\s+(?:the\s+)?(?:exact\s+)?"
    rf"(?:phrase|sentence|words?|question)?\s*:?\s*{_QUOTED}",
    re.IGNORECASE,
)
_STARTS = re.compile(
    r"\b(?:start|begin)s?\s+(?:your\s+|the\s+|each\s+)?(?:entire\s+)?"
    r"(?:response|answer|reply|text|message|it)?\s*with\s+(?:the\s+)?(?:exact\s+)?"
    rf"(?:phrase|sentence|words?)?\s*:?\s*{_QUOTED}",
    re.IGNORECASE,
)
_NO_COMMAS = re.compile(
    r"\b(?:do\s+not|don't|never|without|avoid|refrain\s+from)\s+(?:use\s+|using\s+|"
    r"include\s+|including\s+|any\s+)*(?:any\s+)?commas?\b|\bno\s+commas\b",
    re.IGNORECASE,
)
_LOWER = re.compile(
    r"\b(?:all|entire(?:ly)?|whole|only|everything)\b[^.!?\n]{0,40}?\blower\s*-?\s*case\b|"
    r"\bin\s+lower\s*-?\s*case\b|\bno\s+capital\s+letters\b",
    re.IGNORECASE,
)
_UPPER = re.compile(
    r"\b(?:all|entire(?:ly)?|whole|only|everything)\b[^.!?\n]{0,40}?"
    r"\b(?:upper\s*-?\s*case|capital\s+letters|caps)\b|\bin\s+(?:all\s+)?(?:caps|upper\s*-?\s*case|"
    r"capital\s+letters)\b",
    re.IGNORECASE,
)
_DOUBLE_QUOTES = re.compile(
    r"\b(?:wrap|enclose|put|surround)\s+(?:your\s+|the\s+)?(?:entire\s+|whole\s+)?"
    r"(?:response|answer|reply|output)\s+(?:with|in|inside|within|between)\s+"
    r"double\s+quot(?:ation|e)",
    re.IGNORECASE,
)
_JSON = re.compile(
    r"\b(?:in|as|using|into|with)\s+(?:valid\s+|a\s+|the\s+)?JSON\b|\bJSON\s+format\b|"
    r"\bwrap\b[^.!?\n]{0,40}\bJSON\b",
    re.IGNORECASE,
)
# A sentence ends at . ! or ? before a space or the line's end, but not after an
# initial or a common abbreviation ("Dr.", "e.g.").
_ABBREVIATIONS = ("Mr", "Ms", "Dr", "St", "vs", "etc", "e.g", "i.e", "No")
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z])"
    + "".join(rf"(?<!\b{re.escape(a)})" for a in _ABBREVIATIONS)
    + r"[.!?]+[\"')\]]*(?=\s|$)"
)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+\S")
_NUMBERED = re.compile(r"^\s*(?:\*\*)?\d+[.)](?:\*\*)?\s+(?P<text>\S.*)$")


@dataclass(frozen=True)
class Parts:
    """A count of parts a question asks for (sentences, paragraphs, bullets, items or
    lines) that a reviser can meet as a numbered list, one part per entry, which a
    program then writes in the asked form.

    A small model miscounts its own sentences: asked again for "three sentences"
    it rewrote one sentence as one sentence, but it numbers a list of three
    correctly; counting is the program's job.
    """

    unit: str  # "sentence", "paragraph", "bullet point", "item" or "line"
    low: int | None
    high: int | None

    def have(self, answer: str) -> int:
        """How many of the unit ``answer`` has."""
        return len(_COUNTERS[self.unit](answer))

    def target(self, answer: str) -> int:
        """The count a revision of ``answer`` is asked for: the nearest allowed one."""
        count = self.have(answer)
        if self.low is not None:
            count = max(count, self.low)
        if self.high is not None:
            count = min(count, self.high)
        return max(count, 1)

    def render(self, parts: Sequence[str]) -> str:
        """``parts`` (a numbered list's entries) written in the asked form."""
        if self.unit == "sentence":
            return " ".join(p if _SENTENCE_END.search(p) else p + "." for p in parts)
        if self.unit == "paragraph":
            return "\n\n".join(parts)
        if self.unit == "bullet point":
            return "\n".join(f"- {p}" for p in parts)
        if self.unit == "item":
            return "\n".join(f"{i}. {p}" for i, p in enumerate(parts, 1))
        return "\n".join(parts)


@dataclass(frozen=True)
class Constraint:
    """One constraint a question states: what it asks, and a check of an answer that
    returns what is unmet (None when it is met)."""

    asked: str  # e.g. "exactly 3 sentences"
    check: Callable[[str], str | None]
    parts: Parts | None = None  # a count a reviser can meet as a numbered list


def stated_constraints(question: str) -> list[Constraint]:
    """Every constraint on the answer's form that ``question`` states in a shape this
    module reads, in the order found (one per kind and unit)."""
    found: dict[str, Constraint] = {}
    for match in _COUNT.finditer(question):
        constraint = _count(match)
        if constraint is not None:
            found.setdefault(constraint.asked.split()[-1], constraint)
    for pattern, make in ((_ENDS, _ends_with), (_STARTS, _starts_with)):
        phrase = pattern.search(question)
        if phrase is not None:
            constraint = make(phrase.group("text"))
            found.setdefault(constraint.asked, constraint)
    for pattern, constraint in (
        (_NO_COMMAS, Constraint("no commas", _no_commas)),
        (_LOWER, Constraint("lowercase only", _lowercase)),
        (_UPPER, Constraint("capital letters only", _uppercase)),
        (_DOUBLE_QUOTES, Constraint("the whole answer in double quotes", _in_double_quotes)),
        (_JSON, Constraint("valid JSON", _json)),
    ):
        if pattern.search(question):
            found.setdefault(constraint.asked, constraint)
    return list(found.values())


def failures(constraints: list[Constraint], answer: str) -> list[str]:
    """What ``answer`` leaves unmet of ``constraints``, in words (empty: all met)."""
    return [failure for c in constraints if (failure := c.check(answer)) is not None]


def parts_to_revise(constraints: list[Constraint], answer: str) -> Parts | None:
    """The first count of parts ``answer`` misses, which a revision can meet as a
    numbered list (None: it misses none)."""
    for constraint in constraints:
        if constraint.parts is not None and constraint.check(answer) is not None:
            return constraint.parts
    return None


def numbered_entries(reply: str) -> list[str]:
    """The entries of a numbered list in ``reply`` ("1. ...", "2) ..."), without their
    numbers; lines outside the list (a preface, a closing remark) are left out."""
    entries = []
    for line in reply.splitlines():
        entry = _NUMBERED.match(line)
        if entry is not None:
            entries.append(entry.group("text").strip())
    return entries


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (markdown bullets and headings count as their own)."""
    parts: list[str] = []
    for line in _plain(text).splitlines():
        start = 0
        for end in _SENTENCE_END.finditer(line):
            parts.append(line[start : end.end()])
            start = end.end()
        parts.append(line[start:])
    return [p.strip() for p in parts if _WORD.search(p)]


def words(text: str) -> list[str]:
    """The words of ``text`` (letters and digits, with inner apostrophes and hyphens)."""
    return _WORD.findall(_plain(text))


def paragraphs(text: str) -> list[str]:
    """The paragraphs of ``text``: blocks between blank lines or ``***`` dividers."""
    blocks = re.split(r"\n\s*\n|^\s*\*\*\*\s*$", text.strip(), flags=re.MULTILINE)
    return [b.strip() for b in blocks if _WORD.search(b)]


def bullets(text: str) -> list[str]:
    """The bullet (or numbered) lines of ``text``."""
    return [line for line in text.splitlines() if _BULLET.match(line)]


def _plain(text: str) -> str:
    """``text`` without markdown emphasis and heading marks, which are not words."""
    return re.sub(r"[*_#`]+", " ", text)


_COUNTERS: dict[str, Callable[[str], list[str]]] = {
    "sentence": sentences,
    "word": words,
    "paragraph": paragraphs,
    "bullet point": bullets,
    "item": bullets,
    "line": lambda text: [line for line in text.splitlines() if line.strip()],
}


def _count(match: re.Match[str]) -> Constraint | None:
    raw_unit = re.sub(r"\s+", " ", match.group("unit").lower()).rstrip("s")
    unit = (
        "bullet point"
        if raw_unit.startswith("bullet")
        else "item"
        if raw_unit.endswith("item")
        else raw_unit
    )
    number = match.group("n").lower()
    n = int(number) if number.isdigit() else _NUMBER_WORDS[re.sub(r"\s+", " ", number)]
    if n > (_MAX_WORDS if unit == "word" else _MAX_PARTS):
        return None  # "1000 sentences" is what a question is about, not its answer's form
    comparison = re.sub(r"\s+", " ", (match.group("cmp") or "").lower())
    if not comparison and unit in ("word", "line") and match.group("lead") != "in":
        return None  # "write 5 words that rhyme" asks for words, not an answer of 5 words
    low, high = _bounds(comparison, n)
    if unit == "word" and not comparison:
        low, high = 0, n  # "in 50 words": a limit, not an exact count
    counter = _COUNTERS[unit]
    if low is not None and low == high:
        bound, shown = "exactly", n
    elif low is not None and high is None:
        bound, shown = "at least", low
    else:
        bound, shown = "at most", high if high is not None else n
    asked = f"{bound} {shown} {unit}{'' if shown == 1 else 's'}"

    def check(answer: str) -> str | None:
        have = len(counter(answer))
        if (low is None or have >= low) and (high is None or have <= high):
            return None
        return f"the question asks for {asked}; the answer has {have}"

    shaped = unit != "word" and not (low is None and high == 0)
    return Constraint(asked, check, Parts(unit, low, high) if shaped else None)


def _bounds(comparison: str, n: int) -> tuple[int | None, int | None]:
    if comparison in ("at least", "no fewer than", "no less than", "a minimum of", "minimum"):
        return n, None
    if comparison in ("more than", "over"):
        return n + 1, None
    if comparison in ("at most", "no more than", "up to", "a maximum of", "maximum"):
        return None, n
    if comparison in ("fewer than", "less than", "under"):
        return None, n - 1
    return n, n


def _ends_with(phrase: str) -> Constraint:
    def check(answer: str) -> str | None:
        end = answer.rstrip().rstrip("\"'”’*").rstrip()
        if end.lower().endswith(phrase.rstrip().lower()):
            return None
        return f"the question asks the answer to end with {phrase!r}; it ends {end[-40:]!r}"

    return Constraint(f"ending with {phrase!r}", check)


def _starts_with(phrase: str) -> Constraint:
    def check(answer: str) -> str | None:
        start = answer.lstrip().lstrip("\"'“‘*#").lstrip()
        if start.lower().startswith(phrase.strip().lower()):
            return None
        return f"the question asks the answer to start with {phrase!r}; it starts {start[:40]!r}"

    return Constraint(f"starting with {phrase!r}", check)


def _no_commas(answer: str) -> str | None:
    count = answer.count(",")
    return f"the question asks for no commas; the answer has {count}" if count else None


def _lowercase(answer: str) -> str | None:
    capitals = sum(1 for c in answer if c.isupper())
    if not capitals:
        return None
    return f"the question asks for lowercase only; the answer has {capitals} capital letters"


def _uppercase(answer: str) -> str | None:
    small = sum(1 for c in answer if c.islower())
    if not small:
        return None
    return f"the question asks for capital letters only; the answer has {small} lowercase ones"


def _in_double_quotes(answer: str) -> str | None:
    text = answer.strip()
    if len(text) >= 2 and text[0] in '"“' and text[-1] in '"”':
        return None
    return "the question asks for the whole answer in double quotation marks; it is not"


def _json(answer: str) -> str | None:
    text = answer.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*\n(.*?)\n?```", text, re.DOTALL | re.IGNORECASE)
    try:
        json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError as exc:
        return f"the question asks for JSON; the answer does not parse as JSON ({exc.msg})"
    return None
