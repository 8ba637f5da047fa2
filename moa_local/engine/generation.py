"""Turning requests into proposals: building requests, leasing models, streaming text.

:class:`Generator` is the engine's one way to generate. It builds requests
(references fitted to the model's context, the chat's earlier turns, the
seed of each agent), runs them under a scheduler lease, and turns every
outcome into a :class:`Proposal`: a timeout or backend error becomes a
proposal with ``error`` set, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .. import prompts
from ..backends.base import (
    BackendRegistry,
    Completion,
    GenerateRequest,
    Message,
    closing_stream,
    now,
)
from ..backends.capabilities import ListsHostModels
from ..backends.logprobs import mean_logprob
from ..errors import GenerationError, HostUnreachable, MoALocalError
from ..machine.replicas import Replicas
from ..machine.scheduler import Scheduler
from ..models.references import ModelSpec
from ..result import Proposal
from ..trace import Tracer
from .context import fit_references, with_conversation
from .plan import Plan, TextCallback


@dataclass(frozen=True, kw_only=True)
class GenerationTask:
    """One generation to prepare: what to generate, for whom, with which settings.

    ``plan``, ``prompt`` and ``is_code`` are the run's own (:meth:`.state.Run.task`
    fills them in); the rest says what this generation is.
    """

    plan: Plan
    prompt: str  # the user's question (the plan's conversation comes before it)
    is_code: bool  # the question asks for a program: the code variants of the prompts
    spec: ModelSpec  # the model that generates
    who: str  # the agent's name, or the role ("aggregator", "single"): the request's tag
    layer: int
    temperature: float
    references: tuple[str, ...] = ()  # the answers it reads
    system_base: str | None = None  # the agent's own system prompt (None: the default)
    # References are answers to improve on (a proposer's refinement layer),
    # not to merge into one (the aggregator's).
    refine: bool = True
    own_answer: str | None = None  # the continue layout: the agent's previous answer
    seed_offset: int = 0  # added to the run's seed, so that each agent samples differently


@dataclass(frozen=True)
class Prepared:
    """A request ready to run, for one agent, and whether its references were shortened."""

    agent: str
    request: GenerateRequest
    shortened: bool


class Generator:
    """Builds requests and runs them on the backends, under the scheduler's leases."""

    def __init__(
        self, backends: BackendRegistry, scheduler: Scheduler, replicas: Replicas | None = None
    ) -> None:
        self.backends = backends
        self.scheduler = scheduler
        self.replicas = replicas if replicas is not None else Replicas()

    # -- building requests -----------------------------------------------------

    def base_request(
        self,
        plan: Plan,
        spec: ModelSpec,
        messages: tuple[Message, ...],
        temperature: float,
        seed_offset: int,
        tag: str,
    ) -> GenerateRequest:
        """A request with the run's sampling settings (its seed offset by ``seed_offset``)."""
        seed = plan.sampling.seed
        return GenerateRequest(
            model=spec,
            messages=messages,
            temperature=temperature,
            top_p=plan.sampling.top_p,
            max_tokens=plan.sampling.max_tokens,
            seed=None if seed is None else seed + seed_offset,
            timeout=plan.sampling.timeout,
            tag=tag,
        )

    async def prepare(self, task: GenerationTask, tracer: Tracer) -> Prepared:
        """Build the request of ``task``, shortening references to fit the model's context.

        With ``own_answer`` (the "continue" layout) the request continues the
        agent's previous chat: question, its answer as an assistant turn, then
        one user turn with the references (the other agents' answers). Raises
        :class:`ContextOverflowError` when the prompt cannot fit.
        """
        plan, spec, code = task.plan, task.spec, task.is_code
        fitted, max_tokens = await fit_references(
            self.backends.for_model(spec),
            spec,
            prompts.joined(plan.system, task.system_base),
            task.references,
            with_conversation(plan, task.prompt),
            plan.sampling.max_tokens,
            refine=task.refine,
            code=code,
            own_answer=task.own_answer,
        )
        shortened = list(fitted) != list(task.references)
        if shortened:
            tracer.emit(
                "references.shortened",
                layer=task.layer,
                agent=task.who,
                model=spec.name,
                original_chars=[len(r) for r in task.references],
                kept_chars=[len(r) for r in fitted],
            )
        request = self.base_request(
            plan, spec, _messages(task, fitted), task.temperature, task.seed_offset, task.who
        )
        return Prepared(task.who, replace(request, max_tokens=max_tokens), shortened)

    # -- running requests ------------------------------------------------------

    async def complete(
        self, request: GenerateRequest, on_text: TextCallback | None, tracer: Tracer
    ) -> Completion | GenerationError:
        """Run one request under a lease of its model; its text streams to ``on_text``.

        A model several hosts serve runs on the one :class:`Replicas` chooses;
        when that host's connection fails before any text streamed, on another.
        """
        if request.model.replicas:
            return await self._on_replicas(request, on_text, tracer)
        return await self._complete_here(request, on_text, tracer)

    async def _on_replicas(
        self, request: GenerateRequest, on_text: TextCallback | None, tracer: Tracer
    ) -> Completion | GenerationError:
        backend = self.backends.for_model(request.model)
        probe = backend.host_models if isinstance(backend, ListsHostModels) else _no_probe
        streamed = False

        def text(piece: str) -> None:
            nonlocal streamed
            streamed = True
            if on_text is not None:
                on_text(piece)

        tried: set[str] = set()
        failed: list[str] = []
        while True:
            spec = await self.replicas.choose(request.model, probe, tried)
            if spec is None or spec.host is None:
                reason = "; ".join(failed) or "every host is down"
                return GenerationError(f"{request.model.name}: no host could answer ({reason})")
            started = now()
            outcome = await self._complete_here(replace(request, model=spec), text, tracer)
            error = outcome if isinstance(outcome, GenerationError) else None
            self.replicas.finished(spec.host.name, now() - started, error)
            if not isinstance(outcome, HostUnreachable) or streamed:
                return outcome
            tried.add(spec.host.name)
            failed.append(str(outcome))
            tracer.emit(
                "replica.failover",
                model=request.model.name,
                host=spec.host.name,
                error=str(outcome),
            )

    async def _complete_here(
        self, request: GenerateRequest, on_text: TextCallback | None, tracer: Tracer
    ) -> Completion | GenerationError:
        backend = self.backends.for_model(request.model)
        # generate_many already turns timeouts and backend errors into values
        # and streams pieces; one request of it is this generation.
        pieces = None if on_text is None else (lambda _index, text: on_text(text))
        try:
            async with self.scheduler.lease(request.model, tracer.emit) as lease:
                request = replace(request, n_threads=lease.threads)
                async with closing_stream(backend.generate_many([request], pieces)) as outcomes:
                    async for _, outcome in outcomes:
                        return outcome
        except MoALocalError as exc:  # the scheduler: the model cannot be loaded
            return GenerationError(str(exc))
        return GenerationError(f"{request.model.name}: the backend ended without a result")

    async def propose(
        self, layer: int, group: Sequence[Prepared], tracer: Tracer
    ) -> list[Proposal]:
        """Run one model's requests of a layer together, under one lease.

        Each proposal is traced (``proposal.done``) as it finishes; the list
        is in the order of ``group``.
        """
        spec = group[0].request.model
        backend = self.backends.for_model(spec)
        results: list[Proposal | None] = [None] * len(group)
        live = tracer.live

        def piece(position: int, text: str) -> None:
            tracer.delta(
                "proposal.delta",
                layer=layer,
                agent=group[position].agent,
                model=spec.name,
                text=text,
            )

        def record(position: int, outcome: Completion | GenerationError) -> None:
            item = group[position]
            proposal = proposal_from(layer, item.agent, item.request, outcome, item.shortened)
            tracer.emit("proposal.done", **proposal.to_dict())
            results[position] = proposal

        if spec.replicas:
            # Each request on the host the replicas choose for it, all at once.
            async def one(position: int) -> None:
                shown = (lambda text: piece(position, text)) if live else None
                record(position, await self.complete(group[position].request, shown, tracer))

            await asyncio.gather(*(one(position) for position in range(len(group))))
            return [result for result in results if result is not None]
        try:
            async with self.scheduler.lease(spec, tracer.emit) as lease:
                outcomes = backend.generate_many(
                    [replace(item.request, n_threads=lease.threads) for item in group],
                    piece if tracer.live else None,
                )
                async with closing_stream(outcomes):
                    async for position, outcome in outcomes:
                        record(position, outcome)
        except MoALocalError as exc:
            for position, result in enumerate(results):
                if result is None:
                    record(position, GenerationError(str(exc)))
        return [result for result in results if result is not None]

    async def answer(
        self, task: GenerationTask, tracer: Tracer, on_text: TextCallback | None
    ) -> Proposal:
        """One generation that is not a proposer's (the aggregator, a model alone).

        When ``on_text`` is given, this is the answer the user reads: it
        streams there, and the client's stop strings end it.
        """
        try:
            prepared = await self.prepare(task, tracer)
        except GenerationError as exc:
            return Proposal(
                layer=task.layer,
                agent=task.who,
                model=task.spec.name,
                temperature=task.temperature,
                error=str(exc),
            )
        request = prepared.request
        if on_text is not None:
            request = replace(request, stop=task.plan.sampling.stop)
        outcome = await self.complete(request, live(tracer, task.who, task.spec, on_text), tracer)
        return proposal_from(task.layer, task.who, request, outcome, prepared.shortened)


def _messages(task: GenerationTask, fitted: Sequence[str]) -> tuple[Message, ...]:
    """The chat of ``task``, with ``fitted`` (its references as they fit) in place."""
    plan, code = task.plan, task.is_code
    question: tuple[Message, ...] = (
        *plan.conversation,
        {"role": "user", "content": task.prompt},
    )
    if task.own_answer is not None:
        # The messages up to the question are exactly those of the agent's
        # previous layer, so a backend that caches prefixes reuses that work.
        system = prompts.joined(plan.system, task.system_base or prompts.proposer_system(code=code))
        return (
            {"role": "system", "content": system},
            *question,
            {"role": "assistant", "content": task.own_answer},
            {"role": "user", "content": prompts.continue_user(fitted, code=code)},
        )
    if task.references:
        system = prompts.synthesis_system(
            fitted,
            base=prompts.joined(plan.system, task.system_base),
            refine=task.refine,
            code=code,
        )
    else:
        system = prompts.joined(plan.system, task.system_base or prompts.proposer_system(code=code))
    return ({"role": "system", "content": system}, *question)


def live(
    tracer: Tracer, who: str, spec: ModelSpec, on_text: TextCallback | None
) -> TextCallback | None:
    """``on_text``, also telling live observers of each piece (None when nobody listens)."""
    if not tracer.live:
        return on_text

    def piece(text: str) -> None:
        tracer.delta("aggregate.delta", agent=who, model=spec.name, text=text)
        if on_text is not None:
            on_text(text)

    return piece


def completion_proposal(
    layer: int,
    agent: str,
    spec: ModelSpec,
    temperature: float,
    completion: Completion,
    shortened: bool = False,
) -> Proposal:
    """The proposal of a successful generation."""
    return Proposal(
        layer=layer,
        agent=agent,
        model=spec.name,
        temperature=temperature,
        content=completion.text.strip(),
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        seconds=round(completion.seconds, 3),
        references_shortened=shortened,
        finish_reason=completion.finish_reason,
        mean_logprob=_rounded(mean_logprob(completion.token_logprobs)),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 5)


def proposal_from(
    layer: int,
    agent: str,
    request: GenerateRequest,
    outcome: Completion | GenerationError,
    shortened: bool,
) -> Proposal:
    """The proposal of any outcome: an error, or an empty answer, is a failed proposal."""
    if isinstance(outcome, Completion):
        if not outcome.text.strip():
            return Proposal(
                layer=layer,
                agent=agent,
                model=request.model.name,
                temperature=request.temperature,
                error="empty answer",
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                seconds=round(outcome.seconds, 3),
                references_shortened=shortened,
            )
        return completion_proposal(
            layer, agent, request.model, request.temperature, outcome, shortened
        )
    return Proposal(
        layer=layer,
        agent=agent,
        model=request.model.name,
        temperature=request.temperature,
        error=str(outcome),
        references_shortened=shortened,
    )


async def _no_probe(spec: ModelSpec) -> None:
    """A backend that cannot list its host's models: a down host is simply tried again."""
