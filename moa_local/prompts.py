"""Every prompt moa-local sends on its own behalf.

The synthesis prompts follow the idea of the Mixture-of-Agents paper (Wang et
al., 2024): show a model several candidate answers from different models,
warn that some may be wrong or biased, and ask for one better answer rather
than a copy or a vote. The wording here is our own and kept short, because
small local models follow short instructions better and every token of a
system prompt costs prompt-processing time on a CPU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REFERENCE_HEADER = "Response {number}:"

SYNTHESIZE = (
    "Below are responses to the user's question, written independently by several "
    "different AI models. Some of them may be incomplete, biased or simply wrong. "
    "Judge them critically: keep what is correct and useful, fix or drop what is not, "
    "and fill in what is missing. Do not copy any one response and do not mention that "
    "there were several. Write one accurate, well-organised answer of your own that "
    "follows every instruction in the user's question exactly (form, length, format, "
    "words to use or avoid)."
)

REFINE = (
    "Other AI models have already answered the user's question; their responses are "
    "below. They may contain mistakes or gaps. Use them as material: check each claim, "
    "keep what holds up, correct what does not, then write your own improved answer "
    "to the question, following every instruction in it exactly."
)

# Task-aware variants for questions that ask for code: the aggregator and the
# refining proposers are asked for one complete program, not a prose synthesis.
CODE_SYNTHESIZE = (
    "Below are candidate solutions to the user's programming task, written independently "
    "by several AI models. Some may be wrong. Check each one against the task and its "
    "examples, find the correct approach, fix any bug, and reply with one complete, "
    "correct program in a single code block, with the imports it needs. No explanation."
)

CODE_REFINE = (
    "Other AI models have already written solutions to this programming task; they are "
    "below and may contain bugs. Check them against the task and its examples, then "
    "reply with your own complete, correct program in a single code block. No explanation."
)

# The "continue" layout of refinement layers: the agent's own previous answer
# stays in its chat as an assistant turn, and this user turn brings the others'.
CONTINUE_REFINE = (
    "Other AI models answered the same question; their responses are below. They and "
    "you may have made mistakes. Check every claim in your answer and theirs, keep what "
    "holds up, correct what does not, then write your improved answer to the question, "
    "following every instruction in it exactly."
)

CODE_CONTINUE_REFINE = (
    "Other AI models wrote solutions to the same task; they are below. They and you may "
    "have made mistakes. Check your program and theirs against the task and its "
    "examples, then reply with your improved complete, correct program in a single code "
    "block. No explanation."
)

CONTINUE_ALONE = (
    "Check your answer above against the question: fix any mistake and write your "
    "improved answer, following every instruction in the question exactly."
)

CODE_PROPOSER_SYSTEM = (
    "You are an expert programmer. Reply with one complete, correct program in a single "
    "code block, with the imports it needs."
)

DEFAULT_PROPOSER_SYSTEM = (
    "You are a helpful, knowledgeable assistant. Answer accurately and concisely."
)

DEFAULT_FINAL_AGENT_SYSTEM = (
    "You are a careful editor. Improve the draft answer below: fix errors, remove "
    "repetition, keep it complete and clear. Reply with the improved answer only."
)

ROLE_SYSTEM = "You design expert panels. Reply with JSON only, no prose and no code fences."

ROLE_USER = (
    "Question: {question}\n\n"
    "Propose {n} different experts who would each answer this question from a distinct "
    'angle. Reply with a JSON list of exactly {n} objects, each with the keys "name" '
    '(a short role title) and "system_prompt" (one or two sentences telling an AI '
    "assistant to act as that expert). Example: "
    '[{{"name": "Physicist", "system_prompt": "You are a physicist. Explain the '
    'mechanism precisely."}}]'
)

# Used when the role model's reply cannot be turned into enough roles.
GENERIC_ROLES: tuple[tuple[str, str], ...] = (
    (
        "Domain expert",
        "You are a domain expert. Give a precise, technically correct answer with the key facts.",
    ),
    (
        "Critical reviewer",
        "You are a critical reviewer. Answer while pointing out pitfalls, edge cases and "
        "common misconceptions.",
    ),
    (
        "Teacher",
        "You are a patient teacher. Explain the answer step by step so a newcomer can follow.",
    ),
    (
        "Practitioner",
        "You are an experienced practitioner. Focus on practical, concrete advice and examples.",
    ),
    (
        "Skeptic",
        "You are a careful skeptic. Question assumptions and state what is uncertain.",
    ),
    (
        "Summarizer",
        "You are a concise summarizer. Give the shortest answer that is still complete.",
    ),
)


def format_references(references: Sequence[str]) -> str:
    """Number the references the way the synthesis prompts refer to them."""
    return "\n\n".join(
        f"{REFERENCE_HEADER.format(number=index)}\n{text.strip()}"
        for index, text in enumerate(references, start=1)
    )


def instruction(*, refine: bool, code: bool = False) -> str:
    """The synthesis instruction for a refining proposer or the aggregator."""
    if code:
        return CODE_REFINE if refine else CODE_SYNTHESIZE
    return REFINE if refine else SYNTHESIZE


def synthesis_system(
    references: Sequence[str], *, base: str | None = None, refine: bool, code: bool = False
) -> str:
    """System message carrying ``references``: for a refining proposer or the aggregator.

    ``base`` is the agent's own system prompt, kept first so a role keeps its
    perspective in refinement layers. ``code`` selects the programming variant.
    """
    text = instruction(refine=refine, code=code)
    parts = [base.strip()] if base and base.strip() else []
    parts.append(text)
    parts.append(format_references(references))
    return "\n\n".join(parts)


def continue_user(references: Sequence[str], *, code: bool = False) -> str:
    """The user turn that continues an agent's own chat with the other agents' answers."""
    if not references:
        return CONTINUE_ALONE
    text = CODE_CONTINUE_REFINE if code else CONTINUE_REFINE
    return f"{text}\n\n{format_references(references)}"


def final_agent_user(question: str, draft: str) -> str:
    """User message for the optional final agent."""
    return f"Question:\n{question}\n\nDraft answer:\n{draft.strip()}"


# Selection (aggregate = "select"): the aggregator picks the answer that best
# answers the question among the last layer's, instead of writing a new one
# (Universal Self-Consistency, Chen et al. 2023). A pick keeps every property
# of the chosen answer, the form and constraints a rewrite tends to lose.
SELECT_SYSTEM = (
    "You judge answers. Below the user's question are several candidate answers, "
    "numbered. Choose the one that answers the question best: correct, complete, and "
    "following every instruction in the question exactly (form, length, format, words "
    "to use or avoid). Reply with its number only."
)


def select_user(question: str, candidates: Sequence[str]) -> str:
    """The user turn that shows the question and the numbered candidates to choose from."""
    listed = "\n\n".join(
        f"Candidate {index}:\n{text.strip()}" for index, text in enumerate(candidates, start=1)
    )
    return (
        f"Question:\n{question}\n\n{listed}\n\n"
        f"Which candidate (1-{len(candidates)}) answers the question best? "
        "Reply with its number only."
    )


def parse_choice(reply: str, count: int) -> int | None:
    """The 0-based candidate a selection reply names, or None when it names none of 1..count."""
    for match in re.finditer(r"\d+", reply):
        number = int(match.group())
        if 1 <= number <= count:
            return number - 1
    return None


def proposer_system(*, code: bool) -> str:
    """The system prompt of a proposer with no system prompt of its own."""
    return CODE_PROPOSER_SYSTEM if code else DEFAULT_PROPOSER_SYSTEM


def joined(*parts: str | None) -> str:
    """System prompt parts in order, blank ones left out."""
    return "\n\n".join(part.strip() for part in parts if part and part.strip())
