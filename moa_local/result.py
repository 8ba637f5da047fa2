"""What a run produces: one :class:`Proposal` per generation, gathered in a :class:`MoAResult`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Proposal:
    """One agent's answer in one layer (or the aggregator's / final agent's).

    A failed generation is a proposal too, with ``error`` set and empty
    ``content``; it is never passed on as a reference.
    """

    layer: int
    agent: str
    model: str
    temperature: float
    content: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    references_shortened: bool = False
    finish_reason: str = ""  # "stop", "length" or "cancelled" for a generation that finished
    # The mean log-probability of the answer's tokens under the model that wrote
    # it (a length-normalized confidence); None where the backend gives none.
    mean_logprob: float | None = None
    # The arithmetic check (moa_local.checks.arithmetic): the wrong last step this
    # answer's text has been repaired for, or a wrong earlier step it keeps (then it
    # does not vote); empty when neither.
    repaired: str = ""
    slip: str = ""

    @property
    def ok(self) -> bool:
        """Whether the generation succeeded."""
        return self.error is None

    @property
    def cut(self) -> bool:
        """Whether the generation stopped at ``max_tokens``, before its end."""
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as in traces and ``--json``."""
        return asdict(self)


@dataclass(frozen=True)
class MoAResult(Mapping[str, Any]):
    """The outcome of one Mixture-of-Agents run.

    Reads like a dict too (``result["final_response"]``), with the keys of
    :meth:`to_dict`, so code written against dict-returning MoA libraries
    keeps working.
    """

    final_response: str
    layer_history: list[list[Proposal]]
    aggregator: Proposal
    final_agent: Proposal | None
    models_used: list[str]
    layers: int
    seconds: float
    trace_file: str | None
    run_id: str
    usage: dict[str, int] = field(default_factory=dict)
    program: str | None = None  # the program of a code answer, extracted from final_response
    decisions: list[dict[str, Any]] = field(default_factory=list)  # router and verify choices
    # The candidate the mixture chose, as it was written (a final agent may
    # rewrite it); None when the answer is new text, such as a synthesis.
    chosen: Proposal | None = None
    # The candidates it was chosen among (the last layer's, mostly); none
    # when nothing was chosen, as when the model answered alone.
    candidates: tuple[Proposal, ...] = ()
    # What the check of the form the question states found in each answer it
    # checked: layer, agent, passed, failures (in words), error.
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def code(self) -> str | None:
        """The program of a code answer (the ``code`` key of :meth:`to_dict`)."""
        return self.program

    @property
    def truncated(self) -> bool:
        """Whether the generation that wrote the final text stopped at ``max_tokens``
        (the answer is cut, not finished)."""
        writer = self.final_agent or self.chosen or self.aggregator
        return writer.finish_reason == "length"

    @property
    def num_proposals(self) -> int:
        """Proposals made across all layers, failed ones included."""
        return sum(len(layer) for layer in self.layer_history)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return {
            "final_response": self.final_response,
            "truncated": self.truncated,
            "layer_history": [[p.to_dict() for p in layer] for layer in self.layer_history],
            "aggregator": self.aggregator.to_dict(),
            "final_agent": self.final_agent.to_dict() if self.final_agent else None,
            "models_used": list(self.models_used),
            "num_proposals": self.num_proposals,
            "layers": self.layers,
            "usage": dict(self.usage),
            "seconds": round(self.seconds, 3),
            "trace_file": self.trace_file,
            "run_id": self.run_id,
            "code": self.program,
            "decisions": [dict(d) for d in self.decisions],
            "chosen": _place(self.chosen) if self.chosen else None,
            "candidates": [_place(p) for p in self.candidates],
            "checks": [dict(c) for c in self.checks],
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _place(proposal: Proposal) -> dict[str, Any]:
    """Where a proposal stands in a run, as the plain data names it: its layer and agent.

    The proposal itself is in ``layer_history`` (or is the ``aggregator``);
    naming it again in full would repeat its text.
    """
    return {"layer": proposal.layer, "agent": proposal.agent}
