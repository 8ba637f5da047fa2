"""Checks of the form a text question asks for, written by a model and run in the sandbox.

A question often states what a program can check about its answer: "in
three sentences", "at least 300 words", "do not use any commas", "wrap the
whole reply in JSON", "end with 'Is there anything else?'". The strongest
model writes a checker for those constraints (AutoIF, Dong et al. 2024:
verification functions for instructions, trusted only as far as running
them bears out): ``check(answer) -> list[str]``, one message per unmet
constraint, an empty list when the answer meets them all. The checker runs
once per batch of answers in :mod:`.sandbox`, each answer under its own
alarm, and reports, per answer, its failures or the error that stopped it.

The pure parts are here (when a question states a form, the prompts, reading
the checker out of a reply, the harness, the verdicts); the engine asks the
model and decides what to do with them.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .programs import extract_python

# Words that say something about an answer's form; a question without any of
# them is not sent to a checker writer (it would cost a generation for nothing).
_FORM_WORDS = re.compile(
    r"\b(?:sentences?|words?|paragraphs?|bullet(?:s| points?)?|items?|lines?|sections?|"
    r"letters?|characters?|capital(?:s|ized|ised)?|upper\s*case|lower\s*case|uppercase|"
    r"lowercase|all caps|commas?|punctuation|quotation marks?|json|markdown|title|"
    r"placeholders?|highlight(?:ed)?|bold|italics?|exactly|at least|at most|"
    r"no more than|fewer than|less than|more than|start(?:s|ing)? with|begin(?:s|ning)? with|"
    r"end(?:s|ing)? (?:with|your)|do not (?:use|include|mention)|without (?:using|the word)|"
    r"include the (?:words?|keywords?|phrase)|keywords?|in (?:english|french|spanish|german|"
    r"italian|chinese|japanese|hindi|arabic|russian|portuguese)|language|"
    r"format(?:ted)?|separated by|wrap(?:ped)?|repeat the request|twice|times|p\.s\.)\b",
    re.IGNORECASE,
)

CHECKER_NAME = "check"
CHECKER_SYSTEM = (
    "You write small, exact Python checkers for the form of an answer. You never answer "
    "the question itself."
)
# The worked example is about another question, so that a small model learns the
# shape (count, compare, say what was asked and what the answer has) without a
# message to copy.
CHECKER_EXAMPLE = """Question: List four fruits as bullet points, in lowercase, without a z.
```python
def check(answer):
    failures = []
    bullets = [l for l in answer.splitlines() if l.strip().startswith(("-", "*", "•"))]
    if len(bullets) != 4:
        failures.append(f"asked for 4 bullet points; the answer has {len(bullets)}")
    if answer != answer.lower():
        failures.append("asked for lowercase only; the answer has capital letters")
    if "z" in answer.lower():
        failures.append("asked to avoid the letter z; the answer uses it")
    return failures
```"""
CHECKER_USER = (
    "Here is a question someone will answer:\n<<<\n{question}\n>>>\n\n"
    "Write a Python function `check(answer: str) -> list[str]` that checks whether an "
    "answer meets the constraints this question states on the answer's form that a "
    "program can verify exactly: how many sentences, words, paragraphs, bullet points, "
    "items or sections; words, phrases or letters that must or must not appear, and how "
    "often; upper or lower case; how the answer starts or ends; a format such as JSON; "
    "punctuation. Count what the answer has and compare it with what the question asks. "
    "For each unmet constraint return one short message that says what was asked and "
    "what the answer has; return an empty list when every constraint is met. Check only "
    "what the question states: not facts, quality or tone. Use only the standard library. "
    "(When it states none, the function returns an empty list.) For example:\n\n"
    "{example}\n\nReply with the function for the question above in one ```python block."
)
# The revision continues the chat in which the answer was given: a 1.5B model
# rewrote more of its answer there than when shown it quoted in a new question.
REVISE_USER = (
    "A check of your answer found:\n{failures}\n\n"
    "Write the whole answer again so that it meets every requirement of the question, "
    "keeping what is right in it. Reply with the new answer only."
)
# A count of parts the answer misses is asked for as a numbered list, which a
# program writes in the asked form (:class:`.stated_form.Parts`).
REVISE_PARTS_USER = (
    "A check of your answer found:\n{failures}\n\n"
    "Write the whole answer again as a numbered list of exactly {count} {units}, one per "
    "line (1. to {count}.), meeting every other requirement of the question and keeping "
    "what is right in it. Reply with the list only."
)
_PER_ANSWER_SECONDS = 3
_RESULT_MARK = "__moa_form__"


def states_form(question: str) -> bool:
    """Whether ``question`` uses any word about an answer's form (worth a checker)."""
    return _FORM_WORDS.search(question) is not None


def parse_checker(reply: str) -> str | None:
    """The checker program of a writer's reply, or None when it wrote none (NONE, or
    no ``check`` function that parses)."""
    if reply.strip().upper().startswith("NONE"):
        return None
    code = extract_python(reply, CHECKER_NAME)
    if code is None:
        return None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    defined = any(
        isinstance(node, ast.FunctionDef) and node.name == CHECKER_NAME for node in tree.body
    )
    return code if defined else None


@dataclass(frozen=True)
class FormVerdict:
    """What the checker said of one answer: its failures, or why it could not say."""

    failures: tuple[str, ...] = ()
    error: str = ""

    @property
    def passed(self) -> bool:
        """Whether the checker ran and found nothing unmet."""
        return not self.error and not self.failures


def harness(checker: str, answers: Sequence[str]) -> str:
    """A program that defines ``checker`` and prints, as JSON, its verdict on each answer."""
    data = json.dumps(list(answers))
    return (
        f"{checker}\n\n"
        "import json as _json, signal as _signal\n"
        "def _moa_alarm(*_):\n"
        "    raise TimeoutError('the check took too long')\n"
        "_signal.signal(_signal.SIGALRM, _moa_alarm)\n"
        "_moa_verdicts = []\n"
        f"for _moa_answer in _json.loads({data!r}):\n"
        f"    _signal.alarm({_PER_ANSWER_SECONDS})\n"
        "    try:\n"
        f"        _moa_found = {CHECKER_NAME}(_moa_answer)\n"
        "        if _moa_found is None:\n"
        "            _moa_found = []\n"
        "        if isinstance(_moa_found, str):\n"
        "            _moa_found = [_moa_found] if _moa_found else []\n"
        "        _moa_verdicts.append({'failures': [str(f) for f in _moa_found]})\n"
        "    except BaseException as _moa_error:\n"
        "        _moa_why = type(_moa_error).__name__ + ': ' + str(_moa_error)[:200]\n"
        "        _moa_verdicts.append({'error': _moa_why})\n"
        "    finally:\n"
        "        _signal.alarm(0)\n"
        f"print({_RESULT_MARK!r}, _json.dumps(_moa_verdicts))\n"
    )


async def run_checker(checker: str, answers: Sequence[str]) -> list[FormVerdict]:
    """The checker's verdict on each of ``answers``, run once in the sandbox.

    When the program itself fails (a syntax error, a refused call, the time
    limit), every answer's verdict carries that error.
    """
    # Imported here: the sandbox is only needed when a run checks.
    from .sandbox import marked_result

    if not answers:
        return []
    verdicts, result = await marked_result(harness(checker, answers), _RESULT_MARK)
    if isinstance(verdicts, list) and len(verdicts) == len(answers):
        return [FormVerdict(tuple(v.get("failures", ())), v.get("error", "")) for v in verdicts]
    return [FormVerdict(error=result.detail or "the checker printed no verdict") for _ in answers]


def failure_list(verdict: FormVerdict) -> str:
    """The failures as lines for the reviser ("- asked for ...")."""
    return "\n".join(f"- {failure}" for failure in verdict.failures)
