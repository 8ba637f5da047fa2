"""Scoring exact answers: an option among lettered ones, or a text or number target.

Every suite with exact answers (BIG-bench, GSM8K, ARC) scores through here,
and reads a reply with the reader votes use
(:func:`moa_local.answers.read_answer`): the answer a mixture's vote counts
is the answer the score checks. Outcomes: ``pass``, ``wrong``,
``no_answer`` (nothing read: an empty reply, no option picked, or no number
where a number is wanted).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from ..answers import canonical, read_answer, the_number
from .suite import Score


def score_choice(reply: str, options: Sequence[str], right: Sequence[str]) -> Score:
    """Whether ``reply`` picks one of the ``right`` letters (A, B, ...) among ``options``:
    by its letter (``B``, ``(B)``, ``(B) text``, ``option B``) or by the option's text."""
    reading = read_answer(reply, options)
    details: dict[str, Any] = {"answer": reading.text[:200], "right": list(right)}
    letter = reading.value.upper()
    if letter not in set(string.ascii_uppercase[: len(options)]):
        return Score("no_answer", 0.0, details)
    details["chose"] = letter
    return _outcome(letter in right, details)


def score_target(reply: str, targets: Sequence[str], *, number: bool = False) -> Score:
    """Whether ``reply``'s answer equals one of ``targets`` in canonical form (a number
    by its value: "1,234", "$1234", "1234.0" and "1234 apples" are equal). With
    ``number``, an answer holding no single number is ``no_answer``."""
    reading = read_answer(reply)
    details: dict[str, Any] = {"answer": reading.text[:200], "targets": list(targets)}
    if not reading.value or (number and the_number(reading.value) is None):
        return Score("no_answer", 0.0, details)
    return _outcome(reading.value in {canonical(t) for t in targets}, details)


def _outcome(ok: bool, details: dict[str, Any]) -> Score:
    return Score("pass", 1.0, details) if ok else Score("wrong", 0.0, details)
