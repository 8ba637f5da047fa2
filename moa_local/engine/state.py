"""One run in progress: what it has produced so far, and the answer it ends with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field

from ..checks.form import FormVerdict
from ..models.references import ModelSpec
from ..result import Proposal
from ..trace import Tracer
from .evidence import Verification
from .generation import GenerationTask, Generator
from .plan import Plan, TextCallback


@dataclass(frozen=True)
class Answer:
    """How a run ends: the final text, and the proposals it stands on.

    The answer carries the proposals themselves, so nothing is found again
    by its text (two agents may write the same text). ``chosen`` is the
    candidate of ``among`` whose text the answer is, as it was written; None
    when the text is new (a synthesis, the model alone, a chooser's own
    words). ``aggregate`` is the generation that stands for the aggregator
    in the result (the synthesis, the model alone); without one, ``chosen``
    stands for it. ``emitted`` says whether ``text`` already streamed to the
    caller.
    """

    text: str
    _: KW_ONLY
    chosen: Proposal | None = None
    among: tuple[Proposal, ...] = ()
    aggregate: Proposal | None = None
    emitted: bool = False

    @classmethod
    def of(cls, chosen: Proposal, among: Sequence[Proposal]) -> Answer:
        """The answer that is ``chosen`` as it was written, chosen among ``among``."""
        return cls(chosen.content, chosen=chosen, among=tuple(among))


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
    # A candidate that already streamed to ``on_text`` before the choice (the first
    # answer, :mod:`.first`): an answer that replaces it is introduced by a note.
    streamed: Proposal | None = None
    # The streamed answer with its arithmetic repaired (:mod:`.arithmetic`): chosen, it
    # is introduced as a correction rather than as another answer.
    corrected: Proposal | None = None
    # The form check of a free-text answer, once made (:func:`.choose.checked.form_checker`):
    # the first answer and the later choice share it, so a checker is written once.
    # None until made; then a 1-tuple of the checker (None inside: nothing to check).
    form_checker: tuple[object | None] | None = None
    # What the form check found in each answer it checked, by (layer, agent): the
    # result's ``checks``.
    checks: dict[tuple[int, str], dict[str, object]] = field(default_factory=dict)

    def record_checks(self, proposals: Sequence[Proposal], verdicts: Sequence[FormVerdict]) -> None:
        """Keep what a form check found in each of ``proposals`` (its failures, or the
        error that stopped the check) for the result, and trace it."""
        results = []
        for proposal, verdict in zip(proposals, verdicts, strict=True):
            entry: dict[str, object] = {
                "layer": proposal.layer,
                "agent": proposal.agent,
                "passed": verdict.passed,
                "failures": list(verdict.failures),
                "error": verdict.error or None,
            }
            self.checks[(proposal.layer, proposal.agent)] = entry
            results.append(entry)
        self.tracer.emit("form.verdicts", results=results)

    def decide(self, event: str, **fields: object) -> None:
        """Record a router or verification decision in the trace and the result."""
        self.tracer.emit(event, **fields)
        self.decisions.append({"event": event, **fields})

    @property
    def streams_choice(self) -> bool:
        """Whether the chosen answer is what the user reads (no final agent rewrites it)."""
        return self.plan.final_agent is None

    def task(self, spec: ModelSpec, who: str, *, layer: int, temperature: float) -> GenerationTask:
        """A generation of this run's question for ``who`` on ``spec``, with the defaults of
        :class:`GenerationTask` (``dataclasses.replace`` sets the rest)."""
        return GenerationTask(
            plan=self.plan,
            prompt=self.prompt,
            is_code=self.is_code,
            spec=spec,
            who=who,
            layer=layer,
            temperature=temperature,
        )

    def last_layer(self) -> list[Proposal]:
        """The last layer's successful proposals."""
        return [p for p in (self.history[-1] if self.history else []) if p.ok]
