"""Reading the final answer of a reply: one reader for votes and for scoring.

Replies reason first and answer last, in many wordings: ``Answer: (B)``,
``**Final answer:** 12``, ``The correct answer is: three``, ``\\boxed{7}``.
:func:`answer_text` takes the answer part of a reply (the last answer line,
else the last line), as a scorer compares it; :func:`final_answer` takes the
answer a vote counts, in a canonical form (:func:`canonical`: the option
letter, a number in digits, or normalized text), or, for a code question,
the program normalized when it is whole (it parses and defines or imports
every name it uses). A reply whose answer cannot be told apart from its
prose has none for a vote (None).
"""

from __future__ import annotations

import re

from .checks.programs import extract_python, is_whole, normalize_code

# "Answer: x", "Final answer: x", "**Answer:** x", "## Answer: x", "The correct
# answer is: x", "So the answer is x", "Answer = x".
ANSWER_LINE = re.compile(
    r"[\s>#*_-]*(?:(?:so|thus|therefore|hence)\s*,?\s*)?(?:the\s+)?"
    r"(?:(?:correct|final|right)\s+)?answer\s*[*_]*\s*(?:is\b\s*[*_]*\s*[:：=]?|[:：=])\s*(.*)",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_MARKUP = re.compile(r"\*\*|__|`|\$")
# "(B) text", "B) text", "(B)", "B", "B.", "b:" (one letter, with or without text after).
_OPTION = re.compile(r"\(?([A-Za-z])\)(?:\s.*)?|\(?([A-Z])\)?[.:]?|\(([a-z])\)")
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*(.+?)\s*$", re.M)
_MAX_ONE_WORD = 40  # characters: a longer "word" is not a short answer

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | {
    word: 20 + 10 * i for i, word in enumerate(_TENS)
}


def stated_answer(reply: str) -> str | None:
    """The text of the reply's last answer line (or the line after an empty one), unmarked;
    None when no line states an answer."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    for position in range(len(lines) - 1, -1, -1):
        match = ANSWER_LINE.fullmatch(lines[position])
        if match:
            chosen = match.group(1).strip()
            if not chosen and position + 1 < len(lines):
                chosen = lines[position + 1]
            return _unmarked(chosen)
    return None


def answer_text(reply: str) -> str:
    """The answer part of a reply, as a scorer reads it: the stated answer, else the last line."""
    stated = stated_answer(reply)
    if stated is not None:
        return stated
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    return _unmarked(lines[-1]) if lines else ""


def final_answer(
    reply: str, *, code: bool = False, entry_point: str | None = None, question: str = ""
) -> str | None:
    """The answer ``reply`` gives in canonical form; None when it gives none that can be compared.

    For ``code``, the answer is the reply's program, and only a whole one
    counts: it parses and uses no name that neither it nor the ``question``'s
    code defines or imports (:func:`moa_local.checks.programs.is_whole`). Otherwise
    it is the stated answer, or the whole reply when that is one short line;
    an option's text counts as its letter when the ``question`` lists
    lettered options.
    """
    if code:
        program = extract_python(reply, entry_point)
        if program is None or not is_whole(program, question):
            return None
        return normalize_code(program)
    stated = stated_answer(reply)
    if stated is not None:
        return canonical(stated, options_in(question)) or None
    text = reply.strip()
    if "\n" in text:
        return None
    short = canonical(text, options_in(question))
    if short and " " not in short and len(short) <= _MAX_ONE_WORD:
        return short
    return None


def options_in(question: str) -> dict[str, str]:
    """The lettered options a question lists, one per line ("(A) text"): text to letter."""
    return {normalize(text): letter.lower() for letter, text in _OPTION_LINE.findall(question)}


def canonical(answer: str, options: dict[str, str] | None = None) -> str:
    """An answer in a form equal answers share: the option letter (lower case), a number
    in digits ("three", "3.0" and "3" are "3"), or normalized text."""
    text = _unmarked(answer)
    option = _OPTION.fullmatch(text)
    if option:
        return next(g for g in option.groups() if g).lower()
    plain = normalize(text)
    if options and plain in options:
        return options[plain]
    number = as_number(plain)
    if number is not None:
        return f"{number:g}" if number != int(number) else str(int(number))
    return plain


def normalize(text: str) -> str:
    """Lower case, single spaces, no surrounding quotes nor trailing punctuation."""
    text = " ".join(text.lower().split())
    previous = None
    while previous != text:
        previous = text
        text = text.strip(" \"'“”‘’*_").rstrip(".,;:!?。")
    return text


def numbers_in(text: str) -> list[float]:
    """The numbers of ``text`` in order: digits ("1,024", "3.5") and English words up to
    ninety-nine ("three", "twenty-one", "twenty one")."""
    tokens = re.findall(r"\d+(?:\.\d+)?|[a-z]+", re.sub(r"(?<=\d),(?=\d{3})", "", text.lower()))
    numbers: list[float] = []
    previous_tens = False
    for token in tokens:
        if token[0].isdigit():
            numbers.append(float(token))
            previous_tens = False
        elif token in NUMBER_WORDS:
            value = NUMBER_WORDS[token]
            if previous_tens and 0 < value < 10:
                numbers[-1] += value  # "twenty" "one"
                previous_tens = False
            else:
                numbers.append(float(value))
                previous_tens = token in _TENS
        else:
            previous_tens = False
    return numbers


def as_number(text: str) -> float | None:
    """``text`` as a number when it is one number and nothing else ("3", "three", "+1,024")."""
    words = normalize(text).lstrip("+").replace("-", " ").split()
    found = numbers_in(text)
    if len(found) == 1 and words and all(w in NUMBER_WORDS or _is_digits(w) for w in words):
        return -found[0] if text.strip().startswith("-") and words[0][0].isdigit() else found[0]
    return None


def _is_digits(word: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+)?|\d{1,3}(?:,\d{3})+", word) is not None


def _unmarked(text: str) -> str:
    """``text`` without markdown emphasis, code quotes, math dollars and ``\\boxed{}``."""
    return _MARKUP.sub("", _BOXED.sub(r"\1", text)).strip()
