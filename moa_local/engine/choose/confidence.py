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
from .vote import Vote, read_answers, shown

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
        readable = [p for p in ordered if answers[p.agent] is not None]
        if not readable:
            chosen = ordered[0]
            reason = f"no candidate's answer could be read; kept {chosen.agent}, the greedy one"
            weight = {}
        else:
            weight = dict(
                zip(
                    (p.agent for p in readable),
                    weights([p.mean_logprob or 0.0 for p in readable]),
                    strict=True,
                )
            )
            totals: dict[str, float] = defaultdict(float)
            for p in readable:
                totals[answers[p.agent] or ""] += weight[p.agent]
            best = max(totals.values())
            # Within a rounding error, equal totals tie; the greediest candidate's answer wins.
            chosen = next(p for p in readable if totals[answers[p.agent] or ""] >= best - 1e-9)
            reason = (
                f"{chosen.agent}'s answer carries {totals[answers[chosen.agent] or '']:.2f} "
                f"of the weight ({len(totals)} distinct answers)"
            )
        run.decide(
            "aggregate.confidence",
            chosen=chosen.agent,
            reason=reason,
            answers={agent: shown(answer, run.is_code) for agent, answer in answers.items()},
            weights={agent: round(w, 4) for agent, w in weight.items()},
            mean_logprobs={p.agent: p.mean_logprob for p in ordered},
        )
        return Answer(chosen.content)
