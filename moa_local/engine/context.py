"""What fits in a model's context: references shortened to fit, prompts refused early.

Token counts come from the backend (``count_tokens``, ``info``); the chat
template's own tokens are estimated, and the backend checks the real count
again before it generates.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import prompts
from ..backends.base import Backend, BackendRegistry
from ..errors import ContextOverflowError
from ..models.references import ModelSpec
from .plan import Plan

# Tokens a chat template adds around each message, and a little slack.
TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_SLACK = 16
_MIN_TOKENS_PER_REFERENCE = 24
_MIN_ANSWER_TOKENS = 32


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
        base = system_base or prompts.proposer_system(code=code)
        instruction = (
            prompts.continue_user([], code=code)
            if not references
            else (prompts.CODE_CONTINUE_REFINE if code else prompts.CONTINUE_REFINE)
        )
        base = f"{base}\n\n{own_answer}"
        messages = 4
    else:
        instruction = prompts.instruction(refine=refine, code=code) if references else ""
        base = system_base or ("" if references else prompts.proposer_system(code=code))
        messages = 2
    fixed = (
        await backend.count_tokens(spec, f"{base}\n\n{instruction}")
        + await backend.count_tokens(spec, prompt)
        + messages * TEMPLATE_TOKENS_PER_MESSAGE
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
    headers = TEMPLATE_TOKENS_PER_MESSAGE * len(references)  # "Response N:" and spacing
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


async def check_prompt_fits(backends: BackendRegistry, plan: Plan, prompt: str) -> None:
    """Refuse, before any generation, a prompt that no layer could read.

    The aggregator, and at least one proposer model, must hold the question
    (and the chat's earlier turns) beside a minimal answer; otherwise the run
    fails at once with one :class:`ContextOverflowError` instead of one
    failure per proposer. A proposer whose smaller context cannot hold it
    fails alone, as a proposal error.
    """
    text = with_conversation(plan, prompt)

    async def problem_of(spec: ModelSpec) -> ContextOverflowError | None:
        try:
            backend = backends.for_model(spec)
            await fit_references(backend, spec, plan.system or None, [], text, 1)
        except ContextOverflowError as exc:
            return exc
        return None

    problem = await problem_of(plan.aggregator)
    if problem is not None:
        raise problem
    proposers = {plan.spec_for(a).name: plan.spec_for(a) for a in plan.agents}
    problems = [await problem_of(spec) for spec in proposers.values()]
    if problems and all(problems):
        raise problems[0]  # type: ignore[misc]


def with_conversation(plan: Plan, prompt: str) -> str:
    """The question after the chat's earlier turns: the text a model must read."""
    earlier = "\n".join(m["content"] for m in plan.conversation)
    return f"{earlier}\n{prompt}" if earlier else prompt


async def aggregation_window(
    backends: BackendRegistry, plan: Plan, prompt: str, references: Sequence[str]
) -> int:
    """How many references the aggregator can read at once without shortening them."""
    if len(references) <= 2:
        return max(2, len(references))
    spec = plan.aggregator
    backend = backends.for_model(spec)
    n_ctx = (await backend.info(spec)).n_ctx
    counts = [await backend.count_tokens(spec, text) for text in references]
    fixed = await backend.count_tokens(spec, prompt) + 200  # instructions and template
    room = n_ctx - fixed - plan.sampling.max_tokens
    if sum(counts) + TEMPLATE_TOKENS_PER_MESSAGE * len(counts) <= room:
        return len(references)
    per_reference = max(counts) + TEMPLATE_TOKENS_PER_MESSAGE
    return max(2, room // per_reference)


def _keep_beginning(text: str, factor: float) -> str:
    if factor >= 1:
        return text
    keep = max(1, int(len(text) * factor))
    cut = text[:keep]
    space = cut.rfind(" ")
    if space > keep * 0.8:
        cut = cut[:space]
    return cut.rstrip() + " [...]"
