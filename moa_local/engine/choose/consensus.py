"""Consensus: the candidate that agrees most with the others (minimum Bayes risk).

For free text there is no final answer to count, but there is agreement:
the candidate whose words overlap most with every other candidate's is the
one the samples converge on, and what only one sample says (a slip of a hot
temperature) counts least. This is minimum-Bayes-risk selection with a
lexical similarity (the mean of unigram and bigram F1 over lower-cased
words), as in MBR decoding (Freitag et al., 2022) and n-gram consistency for
open-ended generation (Jain et al., 2023). No model runs, so it costs nothing,
and unlike an aggregator's pick it has no position to favour: on IFBench dev
a 1.5B selector named the last candidate 50 times of 60 (docs/quality.md).
Ties go to the greediest candidate; nothing is rewritten.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from ...result import Proposal
from ..state import Answer, Run
from .base import greedy_first

_WORD = re.compile(r"\w+")


class Consensus:
    """Return the candidate most similar to all the others (greedy on a tie)."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The candidate with the highest total similarity to the rest; traced."""
        # A candidate cut at max_tokens is not chosen while a whole one is there.
        ordered = greedy_first(candidates, run.plan)
        whole = [p for p in ordered if not p.cut] or ordered
        agreement = consensus_scores([p.content for p in whole])
        chosen = whole[most_agreed(agreement)]
        cut = len(ordered) - len(whole)
        run.decide(
            "aggregate.consensus",
            chosen=chosen.agent,
            reason=(
                f"{chosen.agent}'s answer agrees most with the other {len(whole) - 1}"
                if len(whole) > 1
                else "the only candidate"
            )
            + (f" ({cut} cut at max_tokens set aside)" if cut else ""),
            agreement={p.agent: round(a, 3) for p, a in zip(whole, agreement, strict=True)},
        )
        return Answer.of(chosen, candidates)


def most_agreed(agreement: Sequence[float]) -> int:
    """Index of the highest agreement; the first (the greediest) among equals."""
    return max(range(len(agreement)), key=lambda i: (round(agreement[i], 9), -i))


def consensus_scores(texts: Sequence[str]) -> list[float]:
    """For each text, its summed similarity to every other text."""
    grams = [(_ngrams(text, 1), _ngrams(text, 2)) for text in texts]
    return [
        sum(
            (_f1(mine[0], theirs[0]) + _f1(mine[1], theirs[1])) / 2
            for j, theirs in enumerate(grams)
            if j != i
        )
        for i, mine in enumerate(grams)
    ]


def _ngrams(text: str, n: int) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _f1(mine: Counter[tuple[str, ...]], theirs: Counter[tuple[str, ...]]) -> float:
    overlap = sum((mine & theirs).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(mine.values())
    recall = overlap / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)
