"""Reading the final answer of a reply: one reader for votes and for scoring.

Replies reason first and answer last, in many wordings: ``Answer: (B)``,
``**Final answer:** 12``, ``The correct answer is: three``, ``So the answer
is 1,234.`` at the end of a sentence, ``#### 72`` (GSM8K's own mark),
``\\boxed{7}`` (preferred inside a statement, and read from the display-math
lines after a bare ``The answer is:``). :func:`read_answer` is the reader: it takes the answer part
of a reply (the last stating line, else the last line) and puts it in the
canonical form equal answers share (:func:`canonical`):

1. an option's letter, lower case, when the answer picks one: a letter alone
   (``B``, ``(b)``, ``B.``), a letter then its text (``(C) Paris``), an
   option's exact text, or, when the options are known, the one letter in
   parentheses (``it is (B)``) or named (``option B``); two letters
   (``(A) or (B)``) pick none;
2. a number in digits, when the answer is one number, in digits or words,
   with nothing else than a sign, ``$``, thousands commas, a trailing ``.0``
   or a few words around it (``42 apples``, ``I have 3 things``, ``9 * 2 =
   $18``: the part after the last ``=``);
3. else the text, normalized (case, spaces, quotes, trailing punctuation).

Scorers compare that form with the gold answer's (:mod:`moa_local.evals.exact`).
A vote counts it only when the reply states it, or when the whole reply is
one short word (:attr:`Reading.countable`, :func:`final_answer`): an
unstated last line of prose is not an answer others can agree with. For a
code question the vote counts the program instead, normalized, when it is
whole (it parses and defines or imports every name it uses).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .checks.programs import extract_python, is_whole, normalize_code

# "Answer: x", "Final answer: x", "**Answer:** x", "## Answer: x", "The correct
# answer is: x", "So the answer is x", "Answer = x".
ANSWER_LINE = re.compile(
    r"[\s>#*_-]*(?:(?:so|thus|therefore|hence)\s*,?\s*)?(?:the\s+)?"
    r"(?:(?:correct|final|right)\s+)?answer\s*[*_]*\s*(?:is\b\s*[*_]*\s*[:：=]?|[:：=])[\s*_]*(.*)",
    re.IGNORECASE,
)
_HASHES = re.compile(r"\s*####\s*(.*)")  # GSM8K's "#### 72"
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=\S)")
# "\boxed{18}", "\boxed{\$18}", "\boxed{18 \text{ dollars}}" (one level of braces inside).
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_LATEX_WORDS = re.compile(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}")
# LaTeX math delimiters a model puts around an answer on lines of their own.
_MATH_DELIMITERS = re.compile(r"\\\[|\\\]|\\\(|\\\)|\$\$")
_MARKUP = re.compile(r"\*\*|__|`|\$")
# "(B) text", "B) text", "(B)", "B", "B.", "b:" (one letter, with or without text after).
_OPTION = re.compile(r"\(?([A-Za-z])\)(?:\s.*)?|\(?([A-Z])\)?[.:]?|\(([a-z])\)")
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*(.+?)\s*$", re.M)
_LETTER_ALONE = re.compile(r"\(?([A-Za-z])\)?[.:]?")
_LETTER_FIRST = re.compile(r"\(?([A-Z])\)[\s.:]")
_LETTER_IN_PARENS = re.compile(r"\(([A-Z])\)")
_LETTER_NAMED = re.compile(r"\b(?:option|choice)\s+\(?([A-Z])\b\)?", re.IGNORECASE)
_SIGNED = re.compile(r"(?<![\w.])[-−]\s*\$?\s*\d")
_MAX_ONE_WORD = 40  # characters: a longer "word" is not a short answer
_MAX_WORDS_BY_A_NUMBER = 4  # "I have 3 things": a number with a few words is that number

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | {
    word: 20 + 10 * i for i, word in enumerate(_TENS)
}

# A reply that opens with an option letter: "(C) Paris", "C) Paris".
_OPTION_FIRST = re.compile(r"\(?[A-Ea-e]\)\s")

Options = Mapping[str, str] | Sequence[str]  # letter -> text, or texts in letter order


@dataclass(frozen=True)
class Reading:
    """What :func:`read_answer` read in a reply."""

    text: str  # the answer part as written, unmarked: the stated answer, else the last line
    value: str  # its canonical form ("" when there is no answer part)
    stated: bool  # a line states it ("Answer: ...", "the answer is ...", "#### ...", \boxed{})
    whole: bool  # the reply is that one line

    @property
    def countable(self) -> str | None:
        """The answer as a vote counts it: stated, or a whole reply of one short word."""
        if self.stated:
            return self.value or None
        # One word as written, or an option as written ("(C) Paris"): the canonical
        # form drops words around a number ("It is 7, clearly." reads 7), which
        # would make a prose reply a vote.
        if (
            self.whole
            and self.value
            and (len(self.text.split()) == 1 or _OPTION_FIRST.match(self.text))
        ):
            return self.value if len(self.value) <= _MAX_ONE_WORD else None
        return None


def read_answer(reply: str, options: Options = ()) -> Reading:
    """The one reader: the answer part of ``reply`` and its canonical form.

    ``options`` are the question's lettered options (letter -> text, or the
    texts in letter order), so that an option's text reads as its letter.
    """
    stated = stated_answer(reply)
    lines = _lines(reply)
    last = _unmarked(lines[-1]) if lines else ""
    text = stated if stated is not None else last
    return Reading(text, canonical(text, options), stated is not None, len(lines) == 1)


def stated_answer(reply: str) -> str | None:
    """The text of the reply's last answer statement (or the line after an empty one),
    unmarked; else its last ``\\boxed{}``; None when it states no answer."""
    lines = _lines(reply)
    for position in range(len(lines) - 1, -1, -1):
        chosen = _stated_in(lines[position])
        if chosen is not None:
            # "The answer is:" then the answer on the next lines, often as display
            # math ("\\[", "\\boxed{0}", "\\]") or in a sentence around a box.
            following = lines[position + 1 :]
            if not _unmarked(chosen) and following:
                chosen = _math_block(following)
            boxed = _BOXED.findall(chosen)
            return _unmarked(boxed[-1] if boxed else chosen)
    boxed = _BOXED.findall(reply)
    return _unmarked(boxed[-1]) if boxed else None


def _math_block(lines: Sequence[str]) -> str:
    """The first of ``lines``, or, when it opens display math, the block up to its close."""
    if _MATH_DELIMITERS.sub("", lines[0]).strip():
        return lines[0]
    block = []
    for line in lines[1:]:
        if not _MATH_DELIMITERS.sub("", line).strip():
            break
        block.append(line)
    return " ".join(block)


def _stated_in(line: str) -> str | None:
    """What ``line`` states as the answer: the whole line ("Answer: x", "#### x"), or its
    last sentence that does ("... = 18. So the answer is 18.")."""
    match = ANSWER_LINE.fullmatch(line) or _HASHES.fullmatch(line)
    if match:
        return match.group(1).strip()
    for start in reversed([m.end() for m in _SENTENCE_START.finditer(line)]):
        match = ANSWER_LINE.fullmatch(line[start:])
        if match:
            return _SENTENCE_START.split(match.group(1), maxsplit=1)[0].strip()
    return None


def answer_text(reply: str) -> str:
    """The answer part of a reply, as written: the stated answer, else the last line."""
    return read_answer(reply).text


def final_answer(
    reply: str, *, code: bool = False, entry_point: str | None = None, question: str = ""
) -> str | None:
    """The answer ``reply`` gives in canonical form; None when it gives none that can be compared.

    For ``code``, the answer is the reply's program, and only a whole one
    counts: it parses and uses no name that neither it nor the ``question``'s
    code defines or imports (:func:`moa_local.checks.programs.is_whole`). Otherwise
    it is :attr:`Reading.countable` of :func:`read_answer`, the ``question``'s
    lettered options (``(A) text`` lines) known.
    """
    if code:
        program = extract_python(reply, entry_point)
        if program is None or not is_whole(program, question):
            return None
        return normalize_code(program)
    return read_answer(reply, options_in(question)).countable


def options_in(question: str) -> dict[str, str]:
    """The lettered options a question lists, one per line ("(A) text"): letter to text."""
    return {letter: text for letter, text in _OPTION_LINE.findall(question)}


def canonical(answer: str, options: Options = ()) -> str:
    """An answer in a form equal answers share: the option letter (lower case), a number
    in digits ("three", "3.0", "$3" and "3 apples" are "3"), or normalized text."""
    text = _unmarked(answer)
    letter = choose_option(text, options)
    if letter is not None:
        return letter.lower()
    option = _OPTION.fullmatch(text)
    if option and len(set(_LETTER_IN_PARENS.findall(text.upper()))) <= 1:  # not "(A) or (B)"
        return next(g for g in option.groups() if g).lower()
    number = the_number(text)
    if number is not None:
        return f"{number:g}" if number != int(number) else str(int(number))
    return normalize(text)


def choose_option(text: str, options: Options) -> str | None:
    """The letter (upper case) ``text`` picks among ``options``, or None.

    In order: a letter alone ("B", "(b)", "B."); a letter then text ("(B) the
    text"); an option's text; the one letter in parentheses ("it is (B)"); a
    letter named as "option B"/"choice B". A letter past the options, or two
    letters ("(A) or (B)"), pick none.
    """
    by_letter = _by_letter(options)
    match = _LETTER_ALONE.fullmatch(text) or _LETTER_FIRST.match(text)
    if match:
        letter = match.group(1).upper()
        others = set(_LETTER_IN_PARENS.findall(text)) & set(by_letter) - {letter}
        return letter if letter in by_letter and not others else None
    wanted = normalize(text)
    for letter, option in by_letter.items():
        if normalize(option) == wanted:
            return letter
    for pattern in (_LETTER_IN_PARENS, _LETTER_NAMED):
        found = {m.upper() for m in pattern.findall(text)} & set(by_letter)
        if len(found) == 1:
            return found.pop()
    return None


def _by_letter(options: Options) -> dict[str, str]:
    if isinstance(options, Mapping):
        return {letter.upper(): text for letter, text in options.items()}
    return dict(zip(string.ascii_uppercase, options, strict=False))


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


def the_number(text: str) -> float | None:
    """The one number an answer gives: ``text`` as a number (:func:`as_number`), else its
    only number among at most a few other words ("42 apples", "-3 degrees"); after an
    ``=``, the part after the last one ("9 * 2 = 18"). None when there is no single number."""
    text = text.rpartition("=")[2].strip()
    number = as_number(text)
    if number is not None:
        return number
    found = numbers_in(text)
    if len(found) != 1:
        return None
    words = [w.lstrip("-−+") for w in re.split(r"[^\w.,+−-]+", text.lower())]
    words = [w for w in words if w.strip(".,-")]
    if len(words) - 1 > _MAX_WORDS_BY_A_NUMBER or any(
        any(c.isdigit() for c in w) and not _is_digits(w.rstrip(".,")) for w in words
    ):
        return None  # a long sentence, or a number glued to letters ("3x", "2nd")
    return -found[0] if _SIGNED.search(text) else found[0]


def _is_digits(word: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?", word) is not None


def _lines(reply: str) -> list[str]:
    return [line.strip() for line in reply.strip().splitlines() if line.strip()]


def _unmarked(text: str) -> str:
    """``text`` without markdown emphasis, code quotes, LaTeX math marks and ``\\boxed{}``."""
    text = _LATEX_WORDS.sub(r"\1", _BOXED.sub(r"\1", text))
    text = _MATH_DELIMITERS.sub("", text).replace("\\$", "$").replace("\\%", "%")
    return _MARKUP.sub("", text).strip()
