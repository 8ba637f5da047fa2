"""The run flow: one question through a plan, start to finish.

1. **Route**: with ``single_model``, or a router that finds the question
   simple, the aggregator model answers alone and the run ends.
2. **Roles**: with the ``role`` strategy, the role model writes the agents.
3. **Layers**: every agent answers; from layer 2 on each one reads the
   previous layer's successful answers (:mod:`.layers`). After each layer,
   a router may stop the run when the answers agree, and verification may
   have found a candidate that settles the question.
4. **Choose**: the way named by the plan ends the mixture (:mod:`.choose`):
   synthesize, select, auto, or verified for tested code.
5. **Final agent**: optionally rewrites the chosen answer, streamed.
6. **Finish**: the answer is cut at stop strings, and the result gathered.

Failures are values: a failed or timed-out generation becomes a proposal
with ``error`` set; the run fails only when a layer has fewer than
``min_proposers`` successes, or the aggregator fails.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace

from .. import prompts
from ..backends.base import BackendRegistry, Message
from ..checks.programs import asks_for_code, code_blocks, extract_python
from ..errors import MoALocalError, RunFailed
from ..machine.replicas import Replicas
from ..machine.scheduler import Scheduler
from ..result import MoAResult, Proposal
from ..trace import Tracer
from .choose import chooser_for, route, stop_when_agreed
from .context import check_prompt_fits
from .evidence import Verification, wants_verification
from .first import wants_first_answer
from .generation import Generator, live, proposal_from
from .layers import fill_layer, make_roles
from .plan import Plan, TextCallback
from .state import Answer, Run


class Engine:
    """Runs plans. One engine (and its loaded models) serves many runs."""

    def __init__(
        self, backends: BackendRegistry, scheduler: Scheduler, replicas: Replicas | None = None
    ) -> None:
        self.backends = backends
        self.scheduler = scheduler
        self.generator = Generator(backends, scheduler, replicas)

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
        is_code = plan.task == "code" or (plan.task == "auto" and asks_for_code(prompt))
        tracer.emit(
            "run.start",
            prompt=prompt,
            task="code" if is_code else "text",
            strategy=plan.strategy,
            layers=plan.layers,
            aggregator=plan.aggregator.name,
            seed=plan.sampling.seed,
            config=plan.settings,
            turns=len(plan.conversation),
        )
        if tracer.problem:
            tracer.emit("trace.warning", message=tracer.problem)
        run = Run(plan, prompt, tracer, self.generator, started, is_code, on_text)
        if is_code:
            verified, hint = wants_verification(plan.verify, prompt, plan.write_tests)
            if verified:
                run.verification = Verification(plan, prompt, tracer, self.generator, run.extra)
            elif hint:
                tracer.emit("verify.off", reason=hint)
        try:
            await check_prompt_fits(self.backends, plan, prompt)
            result = await self._run(run)
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

    async def _run(self, run: Run) -> MoAResult:
        """Steps 1 to 6 of the module's docstring."""
        plan = run.plan
        routed = await route(run)
        if routed is not None:
            return finish(run, routed)

        agents = list(plan.agents)
        if plan.role_model is not None:
            agents, role_proposal = await make_roles(run)
            if role_proposal is not None:
                run.extra.append(role_proposal)

        succeeded: list[Proposal] = []
        for layer in range(1, plan.layers + 1):
            run.tracer.emit(
                "layer.start",
                layer=layer,
                agents=[a.name for a in agents],
                references=len(run.references),
                # The greedy agent answers alone first (engine/first.py): the rest may not run.
                first_answer=wants_first_answer(run),
            )
            proposals, settled = await fill_layer(run, layer, agents)
            if settled is not None:
                return finish(run, settled)
            succeeded = [p for p in proposals if p.ok]
            if len(succeeded) < plan.sampling.min_proposers:
                raise RunFailed(_layer_failure(layer, proposals, plan.sampling.min_proposers))
            run.references = [p.content for p in succeeded]
            if run.verification is not None:
                run.references = await run.verification.annotate(layer, run.references)
            agreed = stop_when_agreed(run, layer, succeeded)
            if agreed is not None:
                return finish(run, agreed)

        answer = await chooser_for(run).choose(run, succeeded)
        final_proposal = None
        if plan.final_agent is not None:
            final_proposal = await self._final_agent(run, answer.text)
            answer = replace(answer, text=final_proposal.content, emitted=True)
        return finish(run, answer, final_proposal)

    async def _final_agent(self, run: Run, draft: str) -> Proposal:
        """The final agent's rewrite of ``draft``, streamed; raises when it fails."""
        plan, tracer = run.plan, run.tracer
        assert plan.final_agent is not None
        spec = plan.final_agent
        tracer.emit("final.start", model=spec.name)
        system = plan.final_agent_prompt or prompts.DEFAULT_FINAL_AGENT_SYSTEM
        messages: tuple[Message, ...] = (
            {"role": "system", "content": system},
            {"role": "user", "content": prompts.final_agent_user(run.prompt, draft)},
        )
        request = self.generator.base_request(
            plan, spec, messages, plan.sampling.temperature, 0, "final"
        )
        request = replace(request, stop=plan.sampling.stop)
        outcome = await self.generator.complete(
            request, live(tracer, "final_agent", spec, run.on_text), tracer
        )
        proposal = proposal_from(plan.layers + 2, "final_agent", request, outcome, False)
        tracer.emit("final.done", **proposal.to_dict())
        if not proposal.ok:
            raise RunFailed(f"the final agent {spec.name} failed: {proposal.error}")
        return proposal


def finish(run: Run, answer: Answer, final_proposal: Proposal | None = None) -> MoAResult:
    """Gather a run's result; send the answer to ``run.on_text`` if it did not stream."""
    # A streamed answer already ended at a stop string; one that did not
    # stream (a chosen proposal, a verified program) is cut here.
    final_text = cut_at_stop(answer.text, run.plan.sampling.stop)
    if run.on_text is not None and not answer.emitted:
        shown = run.streamed
        if shown is None:
            run.on_text(final_text)
        elif final_text != cut_at_stop(shown.content, run.plan.sampling.stop):
            # The caller has read the first answer: say that this one replaces it.
            chosen = answer.chosen
            who = chosen.agent if chosen is not None else "the revision"
            corrected = chosen is not None and chosen is run.corrected
            run.decide("answer.replaced", replaced=shown.agent, by=who, corrected=corrected)
            if chosen is not None and corrected:
                run.on_text(f"\n\n[the answer above is corrected: {chosen.repaired}]\n\n")
            else:
                run.on_text(f"\n\n[the answer above is replaced; {who}'s answer:]\n\n")
            run.on_text(final_text)
    everything = [*run.extra, *(p for layer in run.history for p in layer)]
    # Stopped before aggregation, the chosen proposal stands in for the aggregator.
    aggregate = answer.aggregate or answer.chosen
    if aggregate is None:
        aggregate = _chooser_wrote(run, answer.text)
    # By identity: two generations can be equal in every field (the same text, tokens, time).
    elif not any(p is aggregate for p in everything):
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
        program=_program_of(final_text) if run.is_code else None,
        decisions=run.decisions,
        chosen=answer.chosen,
        candidates=answer.among,
        checks=list(run.checks.values()),
    )


def _chooser_wrote(run: Run, text: str) -> Proposal:
    """What stands for the aggregator when a chooser wrote the answer itself, with no model.

    It generated nothing, so it counts no tokens and names no model used.
    """
    return Proposal(
        layer=run.plan.layers + 1, agent="chooser", model="", temperature=0.0, content=text
    )


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any of ``stop``."""
    ends = [text.find(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


def _program_of(text: str) -> str | None:
    """The program of a code answer: Python if there is any, else the longest fenced block."""
    program = extract_python(text)
    if program is not None:
        return program
    blocks = [body for _, body in code_blocks(text) if body.strip()]
    return max(blocks, key=len).strip() if blocks else None


def _layer_failure(layer: int, proposals: Sequence[Proposal], minimum: int) -> str:
    succeeded = sum(p.ok for p in proposals)
    lines = [
        f"layer {layer}: {succeeded} of {len(proposals)} proposers succeeded, "
        f"at least {minimum} needed:"
    ]
    lines += [f"  - {p.agent} ({p.model}): {p.error}" for p in proposals if not p.ok]
    return "\n".join(lines)
