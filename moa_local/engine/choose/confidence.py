"""Confidence: a vote in which each sample counts by how sure its model was (CISC).

Confidence-Informed Self-Consistency (Taubenfeld et al., 2025) weighs each
sample's vote by a confidence the model gives it, normalized over the
question's samples with a softmax, instead of counting every sample once.
The confidence here is the sample's mean token log-probability under the
model that wrote it (:attr:`Proposal.mean_logprob`, recorded while it was
generated: no extra model call). Weights are ``softmax(mean_logprob / T)``
with ``T =`` :data:`TEMPERATURE`; the answer with the largest total weight
wins, and its greediest candidate is returned as written (the greedy one on
a tie). Where a candidate has no log-probabilities (a backend that gives
none), the plain :class:`~.vote.Vote` decides, traced as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from ...result import Proposal
from ..state import Answer, Run
from .base import greedy_first
from .vote import Vote, by_agent, read_answers

# Softmax temperature over mean token log-probabilities: a sample 0.07 nats
# per token surer than another counts twice as much.
TEMPERATURE = 0.1


def weights(confidences: Sequence[float], temperature: float = TEMPERATURE) -> list[float]:
    """``softmax(confidence / temperature)``: weights that sum to one."""
    top = max(confidences)
    raw = [math.exp((c - top) / temperature) for c in confidences]
    total = sum(raw)
    return [w / total for w in raw]


class Confidence:
    """Return a candidate of the answer with the most confidence-weighted votes."""

    async def choose(self, run: Run, candidates: Sequence[Proposal]) -> Answer:
        """The greediest candidate of the heaviest answer; traced with every weight."""
        ordered = greedy_first(candidates, run.plan)
        if any(p.mean_logprob is None for p in ordered):
            run.decide(
                "aggregate.confidence",
                chosen=None,
                reason="a candidate has no log-probabilities; a plain vote decides",
            )
            return await Vote().choose(run, candidates)
        answers = read_answers(run, ordered)
        readable = [(p, a) for p, a in zip(ordered, answers, strict=True) if a is not None]
        if not readable:
            chosen = ordered[0]
            reason = f"no candidate's answer could be read; kept {chosen.agent}, the greedy one"
            weight: list[float] = []
        else:
            weight = weights([p.mean_logprob or 0.0 for p, _ in readable])
            totals: dict[str, float] = defaultdict(float)
            for (_, answer), w in zip(readable, weight, strict=True):
                totals[answer] += w
            best = max(totals.values())
            # Within a rounding error, equal totals tie; the greediest candidate's answer wins.
            chosen, answer = next((p, a) for p, a in readable if totals[a] >= best - 1e-9)
            reason = (
                f"{chosen.agent}'s answer carries {totals[answer]:.2f} "
                f"of the weight ({len(totals)} distinct answers)"
            )
        run.decide(
            "aggregate.confidence",
            chosen=chosen.agent,
            reason=reason,
            answers=by_agent(ordered, answers, run.is_code),
            weights={p.agent: round(w, 4) for (p, _), w in zip(readable, weight, strict=True)},
            mean_logprobs={p.agent: p.mean_logprob for p in ordered},
        )
        return Answer.of(chosen, candidates)
