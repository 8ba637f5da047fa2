"""One run in progress: what it has produced so far, and the answer it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..result import Proposal
from ..trace import Tracer
from .evidence import Verification
from .generation import Generator
from .plan import Plan, TextCallback


@dataclass(frozen=True)
class Answer:
    """How a run ends: the final text, and the generation that stands for the aggregator.

    ``aggregate`` is None when the answer is a proposal chosen as it is (the
    run finds it in its layers); ``emitted`` says whether ``text`` already
    streamed to the caller.
    """

    text: str
    aggregate: Proposal | None = None
    emitted: bool = False


@dataclass
class Run:
    """What one run accumulates: layers, extra generations and decisions."""

    plan: Plan
    prompt: str
    tracer: Tracer
    generator: Generator
    started: float
    is_code: bool  # the question asks for a program
    on_text: TextCallback | None = None
    verification: Verification | None = None  # set when code candidates are run against tests
    history: list[list[Proposal]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # what the next step reads
    extra: list[Proposal] = field(default_factory=list)  # roles, tests, aggregation windows
    decisions: list[dict[str, object]] = field(default_factory=list)

    def decide(self, event: str, **fields: object) -> None:
        """Record a router or verification decision in the trace and the result."""
        self.tracer.emit(event, **fields)
        self.decisions.append({"event": event, **fields})

    @property
    def streams_choice(self) -> bool:
        """Whether the chosen answer is what the user reads (no final agent rewrites it)."""
        return self.plan.final_agent is None

    def last_layer(self) -> list[Proposal]:
        """The last layer's successful proposals."""
        return [p for p in (self.history[-1] if self.history else []) if p.ok]
