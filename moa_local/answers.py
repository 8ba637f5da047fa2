"""The final answer of a reply, in a form two replies can be compared by.

A vote counts replies that give the same answer, however they word the way
there: the last ``Answer:`` line, an option letter, a number (in digits or
words), a one-word reply, or, for a code question, the program normalized
(when it is whole: it parses and defines or imports every name it uses).
A reply whose answer cannot be told apart from its prose has none (None).
"""

from __future__ import annotations

import re

from .programs import extract_python, is_whole, normalize_code

_ANSWER_LINE = re.compile(r"^\W*(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(.+?)\s*$", re.I | re.M)
_OPTION = re.compile(r"^\(?([A-Za-z])\)(?:\s|$)|^\(?([A-Z])\)?[.:]?$")
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(?:\.\d+)?$")
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
            *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
            *("seventeen", "eighteen", "nineteen", "twenty"),
        )
    )
}
_MAX_ONE_WORD = 40  # characters: a longer "word" is not a short answer


def final_answer(
    reply: str, *, code: bool = False, entry_point: str | None = None, question: str = ""
) -> str | None:
    """The answer ``reply`` gives, normalized; None when it gives none that can be compared.

    For ``code``, the answer is the reply's program, and only a whole one
    counts: it parses and uses no name that neither it nor the ``question``'s
    code defines or imports (:func:`moa_local.programs.is_whole`).
    """
    if code:
        program = extract_python(reply, entry_point)
        if program is None or not is_whole(program, question):
            return None
        return normalize_code(program)
    lines = _ANSWER_LINE.findall(reply)
    if lines:
        return normalize(lines[-1])
    text = reply.strip()
    if "\n" in text:
        return None
    short = normalize(text)
    if short and " " not in short and len(short) <= _MAX_ONE_WORD:
        return short
    return None


def normalize(answer: str) -> str:
    """An answer in a canonical form: option letter, number in digits, or lower-case text."""
    text = answer.strip().strip("*`").strip()
    option = _OPTION.match(text)
    if option:
        return (option.group(1) or option.group(2)).lower()
    text = text.rstrip(".!;,").strip().lower()
    text = re.sub(r"\s+", " ", text)
    if text in _NUMBER_WORDS:
        return _NUMBER_WORDS[text]
    if _NUMBER.match(text):
        number = text.replace(",", "").lstrip("+")
        return number[:-2] if number.endswith(".0") else number
    return text
