"""The Mixture-of-Agents algorithm, and nothing else.

The engine knows nothing of click, printing, environment variables or where
models come from: it receives a resolved :class:`Plan`, a backend registry, a
scheduler and a tracer, and returns a :class:`MoAResult`.

One run:

1. with the ``role`` strategy, the role model writes the agents' roles;
2. for each layer, every agent answers; from layer 2 on, each agent's system
   message carries the previous layer's *successful* answers as references.
   All of one layer's requests for one model go to the backend together
   (``generate_many``) under one scheduler lease; different models run
   concurrently as far as the scheduler allows;
3. the aggregator synthesizes the last layer's answers, streamed to ``on_text``;
4. an optional final agent rewrites the aggregator's answer (then it is the
   final agent's text that streams).

Failures are values: a failed or timed-out generation becomes a proposal with
``error`` set; the run fails only when a layer has fewer than
``min_proposers`` successes, or the aggregator fails. References that would
overflow a model's context are shortened proportionally (keeping each one's
beginning) and the shortening is traced.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from . import prompts, router, verify
from .agents import Agent, by_roles, parse_roles
from .backends.base import (
    Backend,
    BackendRegistry,
    Completion,
    GenerateRequest,
    Message,
)
from .code import asks_for_code, code_blocks, extract_python, parses
from .errors import ContextOverflowError, GenerationError, MoALocalError, RunFailed
from .models import ModelSpec
from .result import MoAResult, Proposal
from .scheduler import Scheduler
from .trace import Tracer

# Tokens a chat template adds around each message, and a little slack: the
# real count is checked again by the backend before it generates.
_TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_SLACK = 16
_MIN_TOKENS_PER_REFERENCE = 24
_MIN_ANSWER_TOKENS = 32


@dataclass(frozen=True)
class Sampling:
    """Sampling and policy settings shared by every generation of a run."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int | None = None
    timeout: float | None = None
    min_proposers: int = 1
    stop: tuple[str, ...] = ()  # ends the final answer (not the proposals)


@dataclass(frozen=True)
class Plan:
    """A fully resolved run: agents (or how to make them), models and settings."""

    layers: int
    aggregator: ModelSpec
    models: dict[str, ModelSpec]
    sampling: Sampling
    strategy: str
    agents: tuple[Agent, ...] = ()
    role_model: ModelSpec | None = None
    role_count: int = 0
    role_models: tuple[str, ...] = ()
    aggregator_prompt: str = ""
    final_agent: ModelSpec | None = None
    final_agent_prompt: str = ""
    settings: dict[str, object] = field(default_factory=dict)
    task: str = "auto"  # "auto" (detect code questions), "code" or "text"
    verify: bool = False  # run code candidates against tests (runs model-written code)
    router: str = "off"  # "off", "agree" (stop when answers agree) or "on" (also simple questions)
    layout: str = "references"  # refinement layers: "references" or "continue" (own chat)
    aggregate: str = "synthesize"  # "synthesize", "select" (pick an answer), "auto"
    aggregator_temperature: float | None = None  # None: the run's temperature
    aggregate_window: int = 0  # references per aggregation step (0: as many as fit)
    single: bool = False  # no mixture: the aggregator model answers alone (a baseline)
    # A chat client's earlier turns (before the question) and system message,
    # given to every proposer and the aggregator.
    conversation: tuple[Message, ...] = ()
    system: str = ""

    def spec_for(self, agent: Agent) -> ModelSpec:
        """The resolved model an agent runs on."""
        return self.models[agent.model]


TextCallback = Callable[[str], None]


@dataclass
class _RunState:
    """What one run accumulates: layers, extra generations, tests and decisions."""

    plan: Plan
    prompt: str
    tracer: Tracer
    started: float
    code: bool = False
    history: list[list[Proposal]] = field(default_factory=list)
    extra: list[Proposal] = field(default_factory=list)  # roles, tests, aggregation windows
    tests: list[verify.TestCase] | None = None  # the question's examples, then written ones
    tests_written: bool = False
    entry: str | None = None  # the function the tests call
    decisions: list[dict[str, object]] = field(default_factory=list)

    def decide(self, event: str, **fields: object) -> None:
        """Record a router or verification decision in the trace and the result."""
        self.tracer.emit(event, **fields)
        self.decisions.append({"event": event, **fields})

    def codes(self, texts: Sequence[str]) -> list[str | None]:
        """The program of each answer (None when it holds none)."""
        entry = verify.entry_point(self.prompt)
        return [extract_python(text, entry) for text in texts]


class Engine:
    """Runs plans. One engine (and its loaded models) serves many runs."""

    def __init__(self, backends: BackendRegistry, scheduler: Scheduler) -> None:
        self.backends = backends
        self.scheduler = scheduler

    async def run(
        self,
        plan: Plan,
        prompt: str,
        tracer: Tracer,
        on_text: TextCallback | None = None,
    ) -> MoAResult:
        """Run ``plan`` on ``prompt``; stream the final stage's text to ``on_text``."""
        started = asyncio.get_running_loop().time()
        if plan.sampling.seed is None:
            # A fresh seed per run (recorded in the trace, so a run can be
            # repeated with --seed): llama.cpp's default seed is a constant.
            plan = replace(plan, sampling=replace(plan.sampling, seed=random.randrange(2**31)))
        code = plan.task == "code" or (plan.task == "auto" and asks_for_code(prompt))
        tracer.emit(
            "run.start",
            prompt=prompt,
            task="code" if code else "text",
            strategy=plan.strategy,
            layers=plan.layers,
            aggregator=plan.aggregator.name,
            seed=plan.sampling.seed,
            config=plan.settings,
            turns=len(plan.conversation),
        )
        if tracer.problem:
            tracer.emit("trace.warning", message=tracer.problem)
        try:
            await self._check_prompt_fits(plan, prompt)
            result = await self._run(_RunState(plan, prompt, tracer, started, code), on_text)
        except asyncio.CancelledError:
            tracer.emit("run.error", error="cancelled", kind="cancelled")
            tracer.close()
            raise
        except MoALocalError as exc:
            tracer.emit("run.error", error=str(exc), kind=type(exc).__name__)
            tracer.close()
            raise
        except BaseException as exc:
            tracer.emit("run.error", error=f"{type(exc).__name__}: {exc}", kind="internal")
            tracer.close()
            raise
        tracer.emit(
            "run.done",
            seconds=round(result.seconds, 3),
            usage=result.usage,
            models_used=result.models_used,
            num_proposals=result.num_proposals,
            final_response=result.final_response,
        )
        tracer.close()
        return result

    async def _check_prompt_fits(self, plan: Plan, prompt: str) -> None:
        """Refuse, before any generation, a prompt that no layer could read.

        The aggregator, and at least one proposer model, must hold the
        question (and the chat's earlier turns) beside a minimal answer;
        otherwise the run fails at once with one :class:`ContextOverflowError`
        instead of one failure per proposer. A proposer whose smaller context
        cannot hold it fails alone, as a proposal error.
        """
        earlier = "\n".join(m["content"] for m in plan.conversation)
        text = f"{earlier}\n{prompt}" if earlier else prompt

        async def check(spec: ModelSpec) -> ContextOverflowError | None:
            try:
                backend = self.backends.for_model(spec)
                await fit_references(backend, spec, plan.system or None, [], text, 1)
            except ContextOverflowError as exc:
                return exc
            return None

        problem = await check(plan.aggregator)
        if problem is not None:
            raise problem
        proposers = {plan.spec_for(a).name: plan.spec_for(a) for a in plan.agents}
        problems = [await check(spec) for spec in proposers.values()]
        if problems and all(problems):
            raise problems[0]  # type: ignore[misc]

    async def _run(self, run: _RunState, on_text: TextCallback | None) -> MoAResult:
        plan, prompt, tracer = run.plan, run.prompt, run.tracer
        if plan.single:
            return await self._alone(run, on_text, "single model (no mixture)")
        if plan.router == "on":
            simple = router.simple_question(prompt, code=run.code)
            run.decide(
                "router.decision",
                action="single" if simple.skip else "mixture",
                reason=simple.reason,
            )
            if simple.skip:
                return await self._alone(run, on_text, simple.reason)

        agents = list(plan.agents)
        if plan.role_model is not None:
            agents, role_proposal = await self._make_roles(plan, prompt, tracer)
            if role_proposal is not None:
                run.extra.append(role_proposal)

        references: list[str] = []
        verifying = plan.verify and run.code
        for layer in range(1, plan.layers + 1):
            tracer.emit(
                "layer.start",
                layer=layer,
                agents=[a.name for a in agents],
                references=len(references),
            )
            if verifying and plan.router != "off":
                proposals, passing = await self._cascade(run, layer, agents, references)
                if passing is not None:
                    return self._finish(run, passing.content, None, on_text, emitted=False)
            else:
                # The continue layout needs plain answers: verification notes
                # on references go in the references layout only.
                continuing = plan.layout == "continue" and run.history and not verifying
                proposals = await self._run_layer(
                    plan,
                    layer,
                    agents,
                    prompt,
                    references,
                    tracer,
                    code=run.code,
                    previous=run.history[-1] if continuing else (),
                )
                run.history.append(proposals)
            succeeded = [p for p in proposals if p.ok]
            if len(succeeded) < plan.sampling.min_proposers:
                raise RunFailed(_layer_failure(layer, proposals, plan.sampling.min_proposers))
            references = [p.content for p in succeeded]
            if verifying:
                verdicts = await self._verify(run, layer, references)
                references = [
                    f"[Tests: {v.summary(run.tests or [])}]\n{text}"
                    for v, text in zip(verdicts, references, strict=True)
                ]
            if plan.router != "off":
                agreed = router.agreement([p.content for p in succeeded], code=run.code)
                run.decide(
                    "router.decision",
                    action="stop" if agreed.skip else "continue",
                    layer=layer,
                    reason=agreed.reason,
                )
                if agreed.skip:
                    chosen = _strongest(succeeded, plan)
                    return self._finish(run, chosen.content, None, on_text, emitted=False)

        selecting = plan.aggregate == "select" or (plan.aggregate == "auto" and not run.code)
        if selecting and not verifying and plan.final_agent is None and len(succeeded) > 1:
            chosen = await self._select(run, succeeded)
            return self._finish(run, chosen.content, None, on_text, emitted=False)

        stream_aggregate = plan.final_agent is None and not verifying
        tracer.emit("aggregate.start", model=plan.aggregator.name, references=len(references))
        aggregate = await self._aggregate(run, references, on_text if stream_aggregate else None)
        tracer.emit("aggregate.done", **aggregate.to_dict())
        if not aggregate.ok:
            raise RunFailed(f"the aggregator {plan.aggregator.name} failed: {aggregate.error}")
        final_text = aggregate.content
        emitted = stream_aggregate

        if verifying:
            final_text = await self._select_verified(run, aggregate)
        elif run.code:
            final_text = self._complete_program(run, aggregate, on_text if emitted else None)

        final_proposal = None
        if plan.final_agent is not None:
            tracer.emit("final.start", model=plan.final_agent.name)
            final_proposal = await self._final(plan, prompt, final_text, tracer, on_text)
            tracer.emit("final.done", **final_proposal.to_dict())
            if not final_proposal.ok:
                raise RunFailed(
                    f"the final agent {plan.final_agent.name} failed: {final_proposal.error}"
                )
            final_text = final_proposal.content
            emitted = True
        return self._finish(run, final_text, aggregate, on_text, emitted, final_proposal)

    def _complete_program(
        self, run: _RunState, aggregate: Proposal, on_text: TextCallback | None
    ) -> str:
        """The aggregate, or a complete candidate when the aggregate's program cannot parse.

        A small aggregator that copies the question's docstring runs out of
        tokens mid-program, or writes a syntax error; the candidates it read
        are often whole. Checking that the program parses runs no code. The
        candidates of the last layer are tried greedy first (the lowest
        temperature of the strongest model: what that model alone would
        answer). When one is taken, a streamed answer is followed by a note
        and the program, so what was shown and what is returned agree.
        """
        program = extract_python(aggregate.content)
        if program is None or parses(program):
            return aggregate.content
        why = (
            "was cut off at max_tokens" if aggregate.finish_reason == "length" else "does not parse"
        )
        candidates = sorted(
            (p for p in (run.history[-1] if run.history else []) if p.ok),
            key=lambda p: (
                -(run.plan.models[p.model].strength if p.model in run.plan.models else (0, 0))[0],
                p.temperature,
            ),
        )
        for candidate in candidates:
            code = extract_python(candidate.content)
            if code is not None and parses(code):
                run.decide(
                    "aggregate.fallback",
                    chosen=candidate.agent,
                    reason=f"the aggregate's program {why}; {candidate.agent}'s parses",
                )
                if on_text is not None:
                    on_text(f"\n\n[the program above {why}; {candidate.agent}'s answer:]\n\n")
                    on_text(candidate.content)
                return candidate.content
        run.decide(
            "aggregate.fallback",
            chosen=None,
            reason=f"the aggregate's program {why}; no candidate's parses either",
        )
        return aggregate.content

    async def _cascade(
        self, run: _RunState, layer: int, agents: Sequence[Agent], references: Sequence[str]
    ) -> tuple[list[Proposal], Proposal | None]:
        """One layer's agents one after another, each candidate tested as it arrives.

        Selective MoA with verification: the first candidate that settles the
        question ends the run, since the rest of the mixture cannot improve on
        it. It settles when it passes every example the question states, or,
        for a question without examples, every test the model wrote (written
        tests are checked only then: a small model's expected values are often
        wrong). On a CPU, where one model's agents run in turn anyway, this
        costs nothing when no candidate settles. Returns the layer's proposals
        and the settling one.
        """
        proposals: list[Proposal] = []
        run.history.append(proposals)
        for index, agent in enumerate(agents):
            proposals += await self._run_layer(
                run.plan,
                layer,
                [agent],
                run.prompt,
                references,
                run.tracer,
                code=True,
                first_index=index,
            )
            candidate = proposals[-1]
            if not candidate.ok:
                continue
            examples_only = await self._has_examples(run, [candidate.content])
            verdict = (
                await self._verify(run, layer, [candidate.content], written=not examples_only)
            )[0]
            if verify.settles(verdict, run.tests or []):
                run.decide(
                    "router.decision",
                    action="stop",
                    layer=layer,
                    reason=f"{candidate.agent} {verdict.summary(run.tests or [])}",
                )
                return proposals, candidate
        return proposals, None

    async def _alone(self, run: _RunState, on_text: TextCallback | None, reason: str) -> MoAResult:
        """The aggregator model answers the question by itself, as a layer-1 proposer would."""
        plan = run.plan
        temperature = plan.sampling.temperature if plan.single else _aggregator_temperature(plan)
        answer = await self._single(
            plan,
            plan.aggregator,
            "single",
            layer=1,
            system_base=None,
            refine=False,
            references=[],
            prompt=run.prompt,
            temperature=temperature,
            tracer=run.tracer,
            on_text=on_text,
            code=run.code,
        )
        run.tracer.emit("aggregate.done", reason=reason, **answer.to_dict())
        if not answer.ok:
            raise RunFailed(f"{plan.aggregator.name} failed: {answer.error}")
        return self._finish(run, answer.content, answer, on_text, emitted=True)

    def _finish(
        self,
        run: _RunState,
        final_text: str,
        aggregate: Proposal | None,
        on_text: TextCallback | None,
        emitted: bool,
        final_proposal: Proposal | None = None,
    ) -> MoAResult:
        """Gather a run's result; send ``final_text`` to ``on_text`` if it did not stream."""
        if aggregate is None:
            # Stopped before aggregation: the chosen proposal stands in for it
            # (matched before a stop string shortens the text).
            aggregate = next(
                p for layer in reversed(run.history) for p in layer if p.content == final_text
            )
        # A streamed answer already ended at a stop string; one that did not
        # stream (a chosen proposal, a verified program) is cut here.
        final_text = cut_at_stop(final_text, run.plan.sampling.stop)
        if on_text is not None and not emitted:
            on_text(final_text)
        everything = [*run.extra, *(p for layer in run.history for p in layer)]
        if aggregate not in everything:
            everything.append(aggregate)
        if final_proposal:
            everything.append(final_proposal)
        models_used = list(dict.fromkeys(p.model for p in everything if p.ok))
        prompt_tokens = sum(p.prompt_tokens for p in everything)
        completion_tokens = sum(p.completion_tokens for p in everything)
        return MoAResult(
            final_response=final_text,
            layer_history=run.history,
            aggregator=aggregate,
            final_agent=final_proposal,
            models_used=models_used,
            layers=run.plan.layers,
            seconds=asyncio.get_running_loop().time() - run.started,
            trace_file=str(run.tracer.path) if run.tracer.path else None,
            run_id=run.tracer.run_id,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            code=_final_code(final_text) if run.code else None,
            decisions=run.decisions,
        )

    # -- aggregation ------------------------------------------------------------

    async def _aggregate(
        self, run: _RunState, references: list[str], on_text: TextCallback | None
    ) -> Proposal:
        """Synthesize ``references``; in windows when they do not all fit (Self-MoA-Seq).

        With a window of w, the first step aggregates w references, and every
        later step the previous synthesis plus the next w - 1, so the
        aggregator never sees more than w texts at once; only the last step
        streams.
        """
        plan = run.plan
        window = plan.aggregate_window or await self._window(run, references)
        temperature = _aggregator_temperature(plan)
        pending = list(references)
        current: str | None = None
        step = 0
        while True:
            take = window - (current is not None)
            chunk = ([current] if current is not None else []) + pending[:take]
            pending = pending[take:]
            last = not pending
            if not last or step:
                run.tracer.emit(
                    "aggregate.window", step=step + 1, references=len(chunk), left=len(pending)
                )
            proposal = await self._single(
                plan,
                plan.aggregator,
                "aggregator",
                layer=plan.layers + 1,
                system_base=plan.aggregator_prompt or None,
                refine=False,
                references=chunk,
                prompt=run.prompt,
                temperature=temperature,
                tracer=run.tracer,
                on_text=on_text if last else None,
                code=run.code,
            )
            if last or not proposal.ok:
                return proposal
            run.extra.append(proposal)
            current = proposal.content
            step += 1

    async def _select(self, run: _RunState, candidates: Sequence[Proposal]) -> Proposal:
        """The candidate the aggregator names as the best (the strongest model's if none)."""
        plan = run.plan
        messages: tuple[Message, ...] = (
            {"role": "system", "content": prompts.SELECT_SYSTEM},
            {
                "role": "user",
                "content": prompts.select_user(run.prompt, [c.content for c in candidates]),
            },
        )
        request = replace(
            self._base_request(plan, plan.aggregator, messages, 0.0, 0, "select"), max_tokens=8
        )
        run.tracer.emit("aggregate.start", model=plan.aggregator.name, references=len(candidates))
        outcome = await self._stream(request, None, run.tracer)
        proposal = _outcome_proposal(plan.layers + 1, "selector", request, outcome, False)
        run.extra.append(proposal)
        run.tracer.emit("aggregate.done", **proposal.to_dict())
        choice = prompts.parse_choice(proposal.content, len(candidates)) if proposal.ok else None
        if choice is None:
            chosen = _strongest(candidates, plan)
            why = (
                proposal.error or f"the reply {proposal.content.strip()[:40]!r} names no candidate"
            )
            reason = f"{why}; kept {chosen.agent}, the strongest model's answer"
        else:
            chosen = candidates[choice]
            reason = f"the aggregator chose candidate {choice + 1} of {len(candidates)}"
        run.decide("aggregate.select", chosen=chosen.agent, reason=reason)
        return chosen

    async def _window(self, run: _RunState, references: Sequence[str]) -> int:
        """How many references the aggregator can read at once without shortening them."""
        if len(references) <= 2:
            return max(2, len(references))
        spec = run.plan.aggregator
        backend = self.backends.for_model(spec)
        n_ctx = (await backend.info(spec)).n_ctx
        counts = [await backend.count_tokens(spec, text) for text in references]
        fixed = await backend.count_tokens(spec, run.prompt) + 200  # instructions and template
        room = n_ctx - fixed - run.plan.sampling.max_tokens
        if sum(counts) + _TEMPLATE_TOKENS_PER_MESSAGE * len(counts) <= room:
            return len(references)
        per_reference = max(counts) + _TEMPLATE_TOKENS_PER_MESSAGE
        return max(2, room // per_reference)

    # -- verification -------------------------------------------------------------

    async def _verify(
        self, run: _RunState, layer: int, candidates: Sequence[str], *, written: bool = True
    ) -> list[verify.Verdict]:
        """Run candidates against the tests (the written ones too unless ``written`` is
        false; they are written on first need); traced."""
        codes = run.codes(candidates)
        await self._has_examples(run, candidates)
        if written and not run.tests_written:
            await self._write_tests(run, codes)
        tests = run.tests or []
        verdicts = list(
            await asyncio.gather(
                *(verify.run_tests(i, code, tests) for i, code in enumerate(codes))
            )
        )
        run.tracer.emit(
            "verify.layer",
            layer=layer,
            results=[
                {"candidate": v.candidate, "passed": list(v.passed), "error": v.error}
                for v in verdicts
            ],
        )
        return verdicts

    async def _has_examples(self, run: _RunState, candidates: Sequence[str]) -> bool:
        """Whether the question states examples (collected into the tests on first call)."""
        if run.tests is None:
            run.entry = verify.entry_point(run.prompt, [c for c in run.codes(candidates) if c])
            run.tests = verify.example_tests(run.prompt, run.entry)
            run.tracer.emit(
                "verify.tests",
                entry_point=run.entry,
                source="question",
                tests=[t.to_dict() for t in run.tests],
            )
        return any(t.example for t in run.tests)

    async def _write_tests(self, run: _RunState, codes: Sequence[str | None]) -> None:
        """Add asserts the aggregator writes from the question to the tests."""
        run.tests_written = True
        plan = run.plan
        if run.entry is None:
            run.entry = verify.entry_point(run.prompt, [c for c in codes if c])
        if run.entry is None:
            return
        messages: tuple[Message, ...] = (
            {"role": "system", "content": verify.TEST_WRITER_SYSTEM},
            {
                "role": "user",
                "content": verify.TEST_WRITER_USER.format(
                    question=run.prompt, n=6, entry=run.entry
                ),
            },
        )
        request = self._base_request(plan, plan.aggregator, messages, 0.2, 7, "tests")
        outcome = await self._stream(request, None, run.tracer)
        proposal = _outcome_proposal(0, "test_writer", request, outcome, False)
        run.extra.append(proposal)
        tests = run.tests if run.tests is not None else []
        if proposal.ok:
            known = {t.source for t in tests}
            tests += [
                t for t in verify.parse_tests(proposal.content, run.entry) if t.source not in known
            ]
        run.tests = tests[: verify.MAX_TESTS]
        run.tracer.emit(
            "verify.tests",
            entry_point=run.entry,
            source="written",
            tests=[t.to_dict() for t in run.tests],
        )

    async def _select_verified(self, run: _RunState, aggregate: Proposal) -> str:
        """Test the aggregate too; keep it unless a candidate passes more (aggregate wins ties)."""
        last = [p for p in run.history[-1] if p.ok]
        texts = [aggregate.content, *(p.content for p in last)]
        codes = run.codes(texts)
        tests = run.tests or []
        verdicts = list(
            await asyncio.gather(*(verify.run_tests(i, c, tests) for i, c in enumerate(codes)))
        )
        best = verify.rank(verdicts, codes, tests)[0]
        who = "aggregator" if best == 0 else last[best - 1].agent
        run.decide(
            "verify.selected",
            chosen=who,
            reason=f"{who}: {verdicts[best].summary(tests)} "
            f"(aggregate: {verdicts[0].summary(tests)})",
        )
        return texts[best]

    # -- roles --------------------------------------------------------------

    async def _make_roles(
        self, plan: Plan, prompt: str, tracer: Tracer
    ) -> tuple[list[Agent], Proposal | None]:
        assert plan.role_model is not None
        spec = plan.role_model
        request = GenerateRequest(
            model=spec,
            messages=(
                {"role": "system", "content": prompts.ROLE_SYSTEM},
                {
                    "role": "user",
                    "content": prompts.ROLE_USER.format(question=prompt, n=plan.role_count),
                },
            ),
            temperature=0.3,
            top_p=plan.sampling.top_p,
            max_tokens=max(256, 120 * plan.role_count),
            seed=plan.sampling.seed,
            timeout=plan.sampling.timeout,
            tag="roles",
        )
        backend = self.backends.for_model(spec)
        proposal: Proposal | None
        try:
            async with self.scheduler.lease(spec, tracer.emit) as lease:
                completion = await backend.generate(replace(request, n_threads=lease.threads))
        except (MoALocalError, Exception) as exc:
            parsed = parse_roles("", plan.role_count)
            detail = f"role model failed: {exc}"
            proposal = Proposal(
                layer=0, agent="roles", model=spec.name, temperature=0.3, error=str(exc)
            )
        else:
            parsed = parse_roles(completion.text, plan.role_count)
            detail = parsed.detail
            proposal = _proposal(0, "roles", spec, 0.3, completion)
        tracer.emit(
            "roles.generated",
            model=spec.name,
            outcome=parsed.outcome,
            detail=detail,
            roles=[{"name": n, "system_prompt": p} for n, p in parsed.roles],
        )
        models = list(plan.role_models)
        return by_roles(models, parsed.roles, plan.sampling.temperature), proposal

    # -- layers -------------------------------------------------------------

    async def _run_layer(
        self,
        plan: Plan,
        layer: int,
        agents: Sequence[Agent],
        prompt: str,
        references: Sequence[str],
        tracer: Tracer,
        *,
        code: bool = False,
        first_index: int = 0,
        previous: Sequence[Proposal] = (),
    ) -> list[Proposal]:
        """Run one layer's agents; ``previous`` is the layer before, in the continue layout.

        Without ``previous`` every agent sees ``references``. With it, an
        agent whose previous answer succeeded continues its own chat and sees
        the others' answers; an agent without one sees them all.
        """
        results: list[Proposal | None] = [None] * len(agents)
        groups: dict[str, list[tuple[int, GenerateRequest, bool]]] = {}
        # A layer's proposals are in the order of its agents (failures included),
        # so position, not name, finds an agent's own answer: names may repeat.
        aligned = len(previous) == len(agents)
        for index, agent in enumerate(agents):
            spec = plan.spec_for(agent)
            temperature = _temperature(agent, plan)
            own_answer = None
            seen = references
            if aligned and previous[index].ok:
                own_answer = previous[index].content
                seen = [p.content for i, p in enumerate(previous) if p.ok and i != index]
            try:
                request, shortened = await self._request(
                    plan,
                    spec,
                    agent.system_prompt,
                    seen,
                    prompt,
                    temperature,
                    seed_offset=first_index + index,
                    tracer=tracer,
                    who=agent.name,
                    layer=layer,
                    code=code,
                    own_answer=own_answer,
                )
            except GenerationError as exc:
                results[index] = self._record(
                    tracer,
                    Proposal(
                        layer=layer,
                        agent=agent.name,
                        model=spec.name,
                        temperature=temperature,
                        error=str(exc),
                    ),
                )
                continue
            groups.setdefault(spec.name, []).append((index, request, shortened))

        async def run_group(items: list[tuple[int, GenerateRequest, bool]]) -> None:
            spec = items[0][1].model
            backend = self.backends.for_model(spec)

            def piece(position: int, text: str) -> None:
                tracer.delta(
                    "proposal.delta",
                    layer=layer,
                    agent=agents[items[position][0]].name,
                    model=spec.name,
                    text=text,
                )

            try:
                async with self.scheduler.lease(spec, tracer.emit) as lease:
                    outcomes = backend.generate_many(
                        [replace(request, n_threads=lease.threads) for _, request, _ in items],
                        piece if tracer.live else None,
                    )
                    async with aclosing(outcomes):
                        async for position, outcome in outcomes:
                            index, request, shortened = items[position]
                            results[index] = self._record(
                                tracer,
                                _outcome_proposal(
                                    layer, agents[index].name, request, outcome, shortened
                                ),
                            )
            except MoALocalError as exc:
                for index, request, shortened in items:
                    if results[index] is None:
                        results[index] = self._record(
                            tracer,
                            _outcome_proposal(
                                layer,
                                agents[index].name,
                                request,
                                GenerationError(str(exc)),
                                shortened,
                            ),
                        )

        # Models already in memory go first: under a tight budget this saves
        # unloading one only to load it again later in the same layer.
        ordered = sorted(
            groups.values(), key=lambda items: not self.scheduler.is_resident(items[0][1].model)
        )
        async with asyncio.TaskGroup() as group:
            for items in ordered:
                group.create_task(run_group(items))
        return [proposal for proposal in results if proposal is not None]

    def _record(self, tracer: Tracer, proposal: Proposal) -> Proposal:
        tracer.emit("proposal.done", **proposal.to_dict())
        return proposal

    # -- single generations (aggregator, final agent) ------------------------

    async def _single(
        self,
        plan: Plan,
        spec: ModelSpec,
        who: str,
        *,
        layer: int,
        system_base: str | None,
        refine: bool,
        references: Sequence[str],
        prompt: str,
        temperature: float,
        tracer: Tracer,
        on_text: TextCallback | None,
        code: bool = False,
    ) -> Proposal:
        try:
            request, shortened = await self._request(
                plan,
                spec,
                system_base,
                references,
                prompt,
                temperature,
                seed_offset=0,
                tracer=tracer,
                who=who,
                layer=layer,
                refine=refine,
                code=code,
            )
        except GenerationError as exc:
            return Proposal(
                layer=layer, agent=who, model=spec.name, temperature=temperature, error=str(exc)
            )
        if on_text is not None:
            # This generation is the answer the user reads: the client's stop
            # strings end it.
            request = replace(request, stop=plan.sampling.stop)
        outcome = await self._stream(request, _live(tracer, who, spec, on_text), tracer)
        return _outcome_proposal(layer, who, request, outcome, shortened)

    async def _final(
        self, plan: Plan, prompt: str, draft: str, tracer: Tracer, on_text: TextCallback | None
    ) -> Proposal:
        assert plan.final_agent is not None
        spec = plan.final_agent
        system = plan.final_agent_prompt or prompts.DEFAULT_FINAL_AGENT_SYSTEM
        messages = (
            {"role": "system", "content": system},
            {"role": "user", "content": prompts.final_agent_user(prompt, draft)},
        )
        request = self._base_request(plan, spec, messages, plan.sampling.temperature, 0, "final")
        request = replace(request, stop=plan.sampling.stop)
        outcome = await self._stream(request, _live(tracer, "final_agent", spec, on_text), tracer)
        return _outcome_proposal(plan.layers + 2, "final_agent", request, outcome, False)

    async def _stream(
        self, request: GenerateRequest, on_text: TextCallback | None, tracer: Tracer
    ) -> Completion | GenerationError:
        backend = self.backends.for_model(request.model)
        # generate_many already turns timeouts and backend errors into values
        # and streams pieces; one request of it is this generation.
        pieces = None if on_text is None else (lambda _index, text: on_text(text))
        try:
            async with self.scheduler.lease(request.model, tracer.emit) as lease:
                request = replace(request, n_threads=lease.threads)
                async with aclosing(backend.generate_many([request], pieces)) as outcomes:
                    async for _, outcome in outcomes:
                        return outcome
        except MoALocalError as exc:  # the scheduler: the model cannot be loaded
            return GenerationError(str(exc))
        return GenerationError(f"{request.model.name}: the backend ended without a result")

    # -- building requests -----------------------------------------------------

    def _base_request(
        self,
        plan: Plan,
        spec: ModelSpec,
        messages: tuple[Message, ...],
        temperature: float,
        seed_offset: int,
        tag: str,
    ) -> GenerateRequest:
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

    async def _request(
        self,
        plan: Plan,
        spec: ModelSpec,
        system_base: str | None,
        references: Sequence[str],
        prompt: str,
        temperature: float,
        *,
        seed_offset: int,
        tracer: Tracer,
        who: str,
        layer: int,
        refine: bool = True,
        code: bool = False,
        own_answer: str | None = None,
    ) -> tuple[GenerateRequest, bool]:
        """Build one request, shortening references to fit the model's context.

        With ``own_answer`` (the "continue" layout) the request continues the
        agent's previous chat: question, its answer as an assistant turn, then
        one user turn with ``references`` (the other agents' answers).
        """
        backend = self.backends.for_model(spec)
        earlier = "\n".join(m["content"] for m in plan.conversation)
        fitted, max_tokens = await fit_references(
            backend,
            spec,
            _joined(plan.system, system_base),
            references,
            f"{earlier}\n{prompt}" if earlier else prompt,
            plan.sampling.max_tokens,
            refine=refine,
            code=code,
            own_answer=own_answer,
        )
        shortened = list(fitted) != list(references)
        if shortened:
            tracer.emit(
                "references.shortened",
                layer=layer,
                agent=who,
                model=spec.name,
                original_chars=[len(r) for r in references],
                kept_chars=[len(r) for r in fitted],
            )
        messages: tuple[Message, ...]
        question = (*plan.conversation, {"role": "user", "content": prompt})
        if own_answer is not None:
            # The messages up to the question are exactly those of the agent's
            # previous layer, so a backend that caches prefixes reuses that work.
            system = _joined(plan.system, system_base or _proposer_system(code))
            messages = (
                {"role": "system", "content": system},
                *question,
                {"role": "assistant", "content": own_answer},
                {"role": "user", "content": prompts.continue_user(fitted, code=code)},
            )
        else:
            if references:
                system = prompts.synthesis_system(
                    fitted, base=_joined(plan.system, system_base), refine=refine, code=code
                )
            else:
                system = _joined(plan.system, system_base or _proposer_system(code))
            messages = ({"role": "system", "content": system}, *question)
        request = self._base_request(plan, spec, messages, temperature, seed_offset, who)
        return replace(request, max_tokens=max_tokens), shortened


async def fit_references(
    backend: Backend,
    spec: ModelSpec,
    system_base: str | None,
    references: Sequence[str],
    prompt: str,
    max_tokens: int,
    *,
    refine: bool = True,
    code: bool = False,
    own_answer: str | None = None,
) -> tuple[list[str], int]:
    """References that fit ``spec``'s context next to the prompt and the answer budget.

    References are kept whole when they fit beside the prompt and at least a
    quarter of the room for the answer (the answer budget shrinks first). Only
    beyond that is each reference shortened, keeping the same share of its
    length (its beginning), so no proposer's answer is dropped in favour of
    another's. Returns the references and the answer budget. Raises
    :class:`ContextOverflowError` when the prompt cannot fit at all.
    """
    n_ctx = (await backend.info(spec)).n_ctx
    if own_answer is not None:
        # The agent's own answer is kept whole: it is at most one answer long.
        base = system_base or _proposer_system(code)
        instruction = (
            prompts.continue_user([], code=code)
            if not references
            else (prompts.CODE_CONTINUE_REFINE if code else prompts.CONTINUE_REFINE)
        )
        base = f"{base}\n\n{own_answer}"
        messages = 4
    else:
        instruction = prompts.instruction(refine=refine, code=code) if references else ""
        base = system_base or ("" if references else _proposer_system(code))
        messages = 2
    fixed = (
        await backend.count_tokens(spec, f"{base}\n\n{instruction}")
        + await backend.count_tokens(spec, prompt)
        + messages * _TEMPLATE_TOKENS_PER_MESSAGE
        + _TEMPLATE_SLACK
    )
    room = n_ctx - fixed
    if room < _MIN_ANSWER_TOKENS:
        raise ContextOverflowError(
            f"{spec.name}: the prompt takes about {fixed} tokens, more than the context of "
            f"{n_ctx} tokens allows; use a shorter prompt or a larger n_ctx"
        )
    max_tokens = min(max_tokens, room)
    if not references:
        return [], max_tokens
    headers = _TEMPLATE_TOKENS_PER_MESSAGE * len(references)  # "Response N:" and spacing
    counts = [await backend.count_tokens(spec, text) for text in references]
    # The answer budget gives way to the references down to a floor (a quarter
    # of the room, or max_tokens if smaller); only below it are they shortened.
    answer_floor = min(max_tokens, max(_MIN_ANSWER_TOKENS, room // 4))
    if sum(counts) + headers + answer_floor <= room:
        return list(references), min(max_tokens, room - sum(counts) - headers)
    max_tokens = answer_floor
    available = room - max_tokens - headers
    if available < _MIN_TOKENS_PER_REFERENCE * len(references):
        raise ContextOverflowError(
            f"{spec.name}: {len(references)} references cannot fit in a context of "
            f"{n_ctx} tokens; raise n_ctx or use fewer proposers"
        )
    fitted = list(references)
    factor = available / sum(counts)
    for _ in range(6):
        fitted = [_keep_beginning(text, factor) for text in references]
        used = sum([await backend.count_tokens(spec, text) for text in fitted])
        if used <= available:
            return fitted, max_tokens
        factor *= 0.85 * available / used if used else 0.85
    raise ContextOverflowError(
        f"{spec.name}: could not shorten the references to fit a context of {n_ctx} tokens"
    )


def _keep_beginning(text: str, factor: float) -> str:
    if factor >= 1:
        return text
    keep = max(1, int(len(text) * factor))
    cut = text[:keep]
    space = cut.rfind(" ")
    if space > keep * 0.8:
        cut = cut[:space]
    return cut.rstrip() + " [...]"


def _joined(*parts: str | None) -> str:
    """System prompt parts in order, blank ones left out."""
    return "\n\n".join(part.strip() for part in parts if part and part.strip())


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any of ``stop``."""
    ends = [text.find(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


def _live(
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


def _proposer_system(code: bool) -> str:
    return prompts.CODE_PROPOSER_SYSTEM if code else prompts.DEFAULT_PROPOSER_SYSTEM


def _aggregator_temperature(plan: Plan) -> float:
    if plan.aggregator_temperature is None:
        return plan.sampling.temperature
    return plan.aggregator_temperature


def _strongest(proposals: Sequence[Proposal], plan: Plan) -> Proposal:
    """The proposal of the strongest model (the first of equals)."""
    return max(
        proposals,
        key=lambda p: plan.models[p.model].strength if p.model in plan.models else (0, 0),
    )


def _final_code(text: str) -> str | None:
    """The program of a code answer: Python if there is any, else the longest fenced block."""
    program = extract_python(text)
    if program is not None:
        return program
    blocks = [body for _, body in code_blocks(text) if body.strip()]
    return max(blocks, key=len).strip() if blocks else None


def _temperature(agent: Agent, plan: Plan) -> float:
    return agent.temperature if agent.temperature is not None else plan.sampling.temperature


def _proposal(
    layer: int,
    agent: str,
    spec: ModelSpec,
    temperature: float,
    completion: Completion,
    shortened: bool = False,
) -> Proposal:
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
    )


def _outcome_proposal(
    layer: int,
    agent: str,
    request: GenerateRequest,
    outcome: Completion | GenerationError,
    shortened: bool,
) -> Proposal:
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
        return _proposal(layer, agent, request.model, request.temperature, outcome, shortened)
    return Proposal(
        layer=layer,
        agent=agent,
        model=request.model.name,
        temperature=request.temperature,
        error=str(outcome),
        references_shortened=shortened,
    )


def _layer_failure(layer: int, proposals: Sequence[Proposal], minimum: int) -> str:
    succeeded = sum(p.ok for p in proposals)
    lines = [
        f"layer {layer}: {succeeded} of {len(proposals)} proposers succeeded, "
        f"at least {minimum} needed:"
    ]
    lines += [f"  - {p.agent} ({p.model}): {p.error}" for p in proposals if not p.ok]
    return "\n".join(lines)
