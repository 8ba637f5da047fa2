"""Every setting, declared once: the fields of :class:`Config` made with :func:`setting`.

A setting's field name is its ``[defaults]`` or ``[resources]`` key, its
``MOA_LOCAL_<NAME>`` variable and its keyword of :class:`moa_local.MoA`; the
annotation is the type a resolved :class:`Config` holds; :func:`setting`
gives the built-in default, the :class:`~.validate.Rule` of its valid values
(one rule for the file, the environment, flags and keywords) and one line of
help. Everything else is derived from those fields::

    SETTINGS            name -> Setting, in the order declared
    TABLES              the built-in values of [defaults] and [resources], as TOML writes them
    validate()          one value checked by its setting's rule
    starting_values()   the values a configuration starts from, before the file
    override_defaults() those values replaced for a block (the test suite's mixture shape)
    markdown_table()    the table in docs/settings.md (a test keeps the file equal)

and, outside this package, the flags' help (``cli/common.py``) and the
keywords :class:`moa_local.MoA` accepts (``moa.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_type_hints

from ..errors import ConfigError
from .defaults import (
    AGGREGATIONS,
    CHECK_FORMS,
    LAYOUTS,
    ROUTERS,
    STRATEGIES,
    TASKS,
    UNCHECKED_TEXT,
    VERIFY_STOPS,
)
from .tables import HostConfig, ModelConfig
from .validate import (
    Rule,
    boolean,
    choice,
    integer,
    model_names,
    number,
    random_seed,
    string,
    temperature_or_run,
    temperature_pair,
    verify_mode,
)

TABLE_NAMES = ("defaults", "resources")
_DECLARED = "moa_local.setting"  # the key of a setting's declaration in its field's metadata


def setting(default: Any, rule: Rule, help: str, *, table: str = "defaults") -> Any:
    """Declare a field of :class:`Config` a setting (typed Any so that any annotation fits)."""
    return field(default=default, metadata={_DECLARED: (rule, help, table)})


@dataclass(frozen=True, kw_only=True)
class Config:
    """The fully merged configuration of one run: every setting, then the file's tables.

    ``Config()`` holds the built-in defaults; :func:`~.load.load_config`
    merges a file, the environment and flags on top of them.
    """

    # [defaults]: the mixture. The shipped values are Self-MoA on the strongest
    # starter model, chosen by `moa-local eval` (docs/quality.md, "Does the mixture
    # help?"): the two-layer mix of the 0.5B and SmolLM2 that shipped first scored 65
    # where the 1.5B alone scores 95 (HumanEval dev, first 17). The repository's
    # models.toml repeats these values with comments (a test keeps them equal).
    proposers: tuple[str, ...] = setting(
        ("qwen2.5-coder-1.5b",),
        model_names,
        "Proposer models: catalog names, [models.NAME] tables, path:FILE, ollama:TAG or echo:NAME.",
    )
    aggregator: str = setting(
        "qwen2.5-coder-1.5b",
        string,
        'The model that ends the mixture; "auto": the strongest proposer or installed model.',
    )
    layers: int = setting(
        1, integer(1), "Layers of proposers; from the second on, each agent refines its answer."
    )
    strategy: str = setting(
        "temperature",
        choice(STRATEGIES),
        "How a layer is filled: each model once (model), the models at temperatures spread "
        "over temperature_range (temperature), or roles role_model writes (role).",
    )
    num_proposers: int = setting(
        3,
        integer(0),
        "Proposers per layer; 0: one per proposer model (one model under temperature or "
        "role: this setting's built-in default).",
    )
    role_model: str = setting(
        "", string, 'The model that writes the roles of the role strategy ("": the aggregator).'
    )
    final_agent: str = setting(
        "", string, 'A model that rewrites the aggregated answer once more ("": none).'
    )
    final_agent_prompt: str = setting(
        "", string, 'The final agent\'s system prompt ("": a built-in editor prompt).'
    )
    temperature: float = setting(
        0.7,
        number(0.0, 2.0),
        "Sampling temperature of every generation the temperature strategy does not spread.",
    )
    temperature_range: tuple[float, float] = setting(
        (0.0, 0.8),
        temperature_pair,
        "The temperatures the temperature strategy spreads its proposers over, low first.",
    )
    top_p: float = setting(
        0.95, number(0.0, 1.0), "Nucleus sampling: the share of probability mass sampled."
    )
    # 1024 lets a worked answer reach its last line (at 384 a quarter of the 1.5B's
    # GSM8K answers were cut before "Answer:"), and still leaves a 4096-token
    # context room for the question and a layer's references.
    max_tokens: int = setting(
        1024,
        integer(1),
        "Most tokens per answer (proposers, aggregator and final agent alike); an answer "
        "cut there is reported as cut.",
    )
    min_proposers: int = setting(
        1, integer(1), "Successful proposers a layer needs, or the run fails."
    )
    timeout: float = setting(
        0.0,
        number(0.0),
        "Seconds one generation may take before it becomes a proposal error (0: no limit).",
    )
    trace_dir: str = setting(
        "logs/moa", string, 'Directory of the JSONL traces, one file per run ("": no traces).'
    )
    seed: int = setting(-1, random_seed, "Random seed for sampling (-1: a new one every run).")
    aggregator_temperature: float = setting(
        0.0, temperature_or_run, "The aggregator's temperature (-1: the temperature setting)."
    )
    aggregate_window: int = setting(
        0,
        integer(0),
        "Answers the aggregator reads at once, a sliding window (0: as many as fit).",
    )
    task: str = setting(
        "auto",
        choice(TASKS),
        "Whether questions ask for code: auto detects it, code or text force either way.",
    )
    # "auto": code questions with examples are verified when model-written code
    # runs under bubblewrap (moa_local.checks.isolation), and only then.
    verify: bool | Literal["auto"] = setting(
        "auto",
        verify_mode,
        "Test code candidates on the question's examples and written tests (RUNS "
        'MODEL-WRITTEN CODE); "auto": questions with examples, under bubblewrap only.',
    )
    # CodeT's dual agreement (moa_local.checks.agreement) on tests the strongest model
    # writes: what "auto" does for code questions that state no examples. Measured
    # (docs/quality.md): humaneval-noex dev first 40, 92.5 against 87.5 for the 1.5B
    # alone and for the vote; HumanEval dev's 6 problems without examples, 5 of 6 against 4.
    write_tests: bool = setting(
        True,
        boolean,
        'With verify = "auto", also test code questions that state no examples, against '
        "tests the strongest model writes (under bubblewrap only).",
    )
    # Free text checked against the form its question states: "stated" reads the
    # constraints with a program (moa_local.checks.stated_form), "written" also has
    # the strongest model write a checker when none is read (moa_local.checks.form).
    # Measured (docs/quality.md): level on IFBench dev, where the reader reads a form
    # in 8 of 147 prompts; the README's three-sentence question met in 1 of 5 runs (0 of 5).
    check_form: str = setting(
        "stated",
        choice(CHECK_FORMS),
        "Check free-text answers against the form the question states (sentences, words, "
        "case, JSON...) and revise once when none passes: stated reads it with a program, "
        "written also lets the strongest model write a checker (under bubblewrap, or with "
        "--verify).",
    )
    # Worked answers' arithmetic checked by a program (moa_local.checks.arithmetic): a
    # wrong last step is computed again, a sample with a wrong earlier step does not
    # vote. Small models reason better than they add: "204 + 160 + 330 = 794".
    check_arithmetic: bool = setting(
        True,
        boolean,
        'Check the arithmetic a worked answer writes out ("204 + 160 + 330 = 794"): a '
        "wrong last step is computed again, and a sample with a wrong earlier step does "
        "not vote.",
    )
    # The first answer first (moa_local.engine.first): with the router on, free text is
    # answered by the greedy sample, streamed, and more samples are drawn only when its
    # stated form fails or it states a short answer to vote on. Measured (docs/quality.md):
    # on IFBench dev the consensus of three equalled one answer at twice its time.
    unchecked_text: str = setting(
        "greedy",
        choice(UNCHECKED_TEXT),
        "Free text with nothing a program can check (no stated form): the greedy answer "
        "alone (greedy), or the consensus of the layer's samples (consensus).",
    )
    verify_samples: int = setting(
        3,
        integer(0),
        "More samples of the strongest model a verified question draws, one at a time, "
        "while none passes its examples.",
    )
    # Measured (docs/quality.md): HumanEval dev first 41, 87.8 as before at 25.4 s per
    # problem against 44.6 (verify_stop = "never"), the 1.5B alone 82.9 at 13.9 s.
    verify_stop: str = setting(
        "stalled",
        choice(VERIFY_STOPS),
        "When a verified question stops drawing samples although none passed: never (all "
        "verify_samples), repeat (a sample fails the examples exactly as an earlier one), "
        "stalled (two samples in a row pass none of them).",
    )
    # Adaptive consistency (moa_local.engine.settle): 0 draws the layer's agents at once.
    # 3 returns what the vote of the layer's three samples returns (two that agree cannot
    # be outvoted by a third) with two samples where the first two agree: ARC-Challenge
    # dev's first 25, 76.0 either way, the first two agreed on 12 (docs/quality.md).
    max_samples: int = setting(
        3,
        integer(0),
        "Questions with a short checkable answer: draw samples until the vote is settled "
        "(two agree, or the leader cannot lose), at most this many; 0: the layer's agents "
        "at once.",
    )
    router: str = setting(
        "agree",
        choice(ROUTERS),
        "Selective MoA: agree stops after a layer whose answers agree; on also sends "
        "simple questions to the aggregator alone.",
    )
    # Measured by `moa-local eval` (docs/quality.md): a two-layer Self-MoA scored 95 in
    # the continue layout against 75 with every answer listed (HumanEval dev, first 20).
    layout: str = setting(
        "continue",
        choice(LAYOUTS),
        "How a refinement layer shows the previous one: each agent continues its own chat "
        "(continue), or reads every answer in its system message (references).",
    )
    # Measured (docs/quality.md): on HumanEval a rewrite broke working programs where
    # a vote among the same candidates did not; on IFBench dev a 1.5B pick named the
    # last candidate 50 times of 60.
    aggregate: str = setting(
        "auto",
        choice(AGGREGATIONS),
        "How the mixture ends: synthesize a new answer, select one, vote for the most "
        "common, confidence-weighted vote, consensus; auto votes on programs and "
        "checkable answers and takes the consensus of free text.",
    )
    show_proposals: bool = setting(
        False,
        boolean,
        "serve: stream the proposals before the answer, as reasoning chat clients fold away.",
    )

    # [resources]: how much of the machine moa-local may use (machine/devices.py).
    budget_mb: float = setting(
        0,
        number(0.0),
        "Memory budget per device in MiB (0: computed from its free memory).",
        table="resources",
    )
    reserve_mb: float = setting(
        512,
        number(0.0),
        "MiB of each device's free memory a computed budget leaves free.",
        table="resources",
    )
    budget_fraction: float = setting(
        0.9,
        number(0.05, 1.0),
        "The most of a device's total memory a computed budget takes.",
        table="resources",
    )
    keep_alive: float = setting(
        -1.0,
        number(-1.0),
        "Seconds an idle model stays loaded (-1: while memory allows; 0: unload at once).",
        table="resources",
    )
    cpu_slots: int = setting(
        0,
        integer(0),
        "Generations that may run at once on the CPU (0: one per 4 physical cores).",
        table="resources",
    )

    # The file's tables, and the file itself.
    models: Mapping[str, ModelConfig] = field(default_factory=dict)
    source: Path | None = None
    hosts: Mapping[str, HostConfig] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def source_label(self) -> str:
        """Where the file part of this config came from, for messages."""
        return str(self.source) if self.source else "the built-in defaults"

    def as_dict(self) -> dict[str, Any]:
        """The resolved values, as recorded in a trace's ``run.start`` event."""
        values = {name: _toml(getattr(self, name)) for name in SETTINGS}
        values["config_file"] = str(self.source) if self.source else None
        return values


@dataclass(frozen=True)
class Setting:
    """One setting as :class:`Config` declares it."""

    name: str
    type: Any  # the annotation of its Config field
    default: Any  # as Config holds it (a tuple where TOML writes a list)
    rule: Rule
    help: str
    table: str  # "defaults" or "resources"

    @property
    def env_var(self) -> str:
        """The environment variable that sets it."""
        return f"MOA_LOCAL_{self.name.upper()}"

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` checked; errors name ``where`` (default: the keyword, i.e. the name)."""
        return self.rule(value, where or self.name, self.name)

    def from_env(self, text: str) -> Any:
        """The value of :attr:`env_var` set to ``text``; errors name the variable."""
        return self.check(self.rule.from_text(text), self.env_var)


def _toml(value: Any) -> Any:
    """A value as TOML writes it (and JSON: traces, fingerprints): tuples become lists."""
    return list(value) if isinstance(value, tuple) else value


def _declared() -> dict[str, Setting]:
    hints = get_type_hints(Config)
    return {
        item.name: Setting(item.name, hints[item.name], item.default, *item.metadata[_DECLARED])
        for item in fields(Config)
        if _DECLARED in item.metadata
    }


SETTINGS: Mapping[str, Setting] = MappingProxyType(_declared())

TABLES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        table: MappingProxyType(
            {s.name: _toml(s.default) for s in SETTINGS.values() if s.table == table}
        )
        for table in TABLE_NAMES
    }
)


def validate(key: str, value: Any, where: str | None = None) -> Any:
    """``value`` checked by the rule of setting ``key``; ``where`` leads any error."""
    declared = SETTINGS.get(key)
    if declared is None:
        raise ConfigError(f"unknown setting {key!r}", setting=key)
    return declared.check(value, where)


# What override_defaults() puts over the built-in defaults, in this context.
_OVERRIDDEN: ContextVar[Mapping[str, Any]] = ContextVar(
    "moa_local_overridden_defaults", default=MappingProxyType({})
)


def starting_values() -> dict[str, Any]:
    """The values a configuration starts from, before the file: built-in or overridden."""
    return {
        **{name: _toml(declared.default) for name, declared in SETTINGS.items()},
        **_OVERRIDDEN.get(),
    }


@contextmanager
def override_defaults(values: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, configurations start from ``values`` where the built-ins were.

    The file, ``MOA_LOCAL_*`` and flags still apply on top, as on the built-in
    defaults. Each value is checked; blocks nest (the inner one wins). The
    values belong to the current context (:mod:`contextvars`): tasks and
    ``asyncio.to_thread`` inside the block see them, and nothing outside does,
    so no module state is changed. The tests give most of the suite their
    mixture shape this way.
    """
    checked = {
        key: validate(key, value, f"override_defaults: {key}") for key, value in values.items()
    }
    token = _OVERRIDDEN.set(MappingProxyType({**_OVERRIDDEN.get(), **checked}))
    try:
        yield
    finally:
        _OVERRIDDEN.reset(token)


def toml_text(value: Any) -> str:
    """A built-in value as models.toml writes it: ``"auto"``, ``false``, ``[0.0, 0.8]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_text(item) for item in value) + "]"
    return json.dumps(value)


def markdown_table() -> str:
    """The settings as docs/settings.md lists them, one table per models.toml table."""
    lines: list[str] = []
    for table in TABLE_NAMES:
        if lines:
            lines.append("")
        lines += [
            f"### [{table}]",
            "",
            "| setting | default | valid values | what it does |",
            "|---|---|---|---|",
        ]
        for s in SETTINGS.values():
            if s.table == table:
                default = toml_text(_toml(s.default)).replace("|", "\\|")
                lines.append(f"| `{s.name}` | `{default}` | {s.rule.text} | {s.help} |")
    return "\n".join(lines) + "\n"
