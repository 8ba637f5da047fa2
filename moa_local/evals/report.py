"""Eval summaries as a text table, and as a chart of score against time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from .summary import Summary


def router_effect(summary: Summary, summaries: Sequence[Summary]) -> str:
    """For a config with the router (``+agree``, ``+router``): time saved and score cost
    against the same config without it, when that was run too."""
    parts = summary.config.split("+")
    routed = [p for p in parts[1:] if p in ("agree", "router")]
    if not routed:
        return ""
    base_label = "+".join(p for p in parts if p not in routed)
    base = next((s for s in summaries if s.config == base_label and s.n == summary.n), None)
    if base is None:
        return ""
    saved = base.seconds_per_item - summary.seconds_per_item
    return f"{saved:+.1f} s saved, {summary.score - base.score:+.1f} pts vs {base_label}"


def table(summaries: Sequence[Summary]) -> str:
    """A fixed-width table: one row per config, a line per config after the first naming
    the problems it won and lost against the first (:func:`against_first`), then, for a
    grouped suite (BIG-bench), a table of each group's score: one row per group, one
    column per config."""
    with_instructions = any(s.instruction_score is not None for s in summaries)
    effects = [router_effect(s, summaries) for s in summaries]
    headers = ["config", "score", "n", "s/item", "tok/item", "shortcut", "failures"]
    if with_instructions:
        headers.insert(2, "instr")
    if any(effects):
        headers.append("router")
    rows = []
    for s, effect in zip(summaries, effects, strict=True):
        failures = ", ".join(f"{kind} {count}" for kind, count in s.failures.items()) or "-"
        row = [
            s.config,
            f"{s.score:.1f}",
            str(s.n),
            f"{s.seconds_per_item:.1f}",
            f"{s.tokens_per_item:.0f}",
            f"{100 * s.shortcut_share:.0f}%",
            failures,
        ]
        if with_instructions:
            row.insert(2, "-" if s.instruction_score is None else f"{s.instruction_score:.1f}")
        if any(effects):
            row.append(effect or "-")
        rows.append(row)
    lines = [_columns([h.upper() for h in headers], rows), *against_first(summaries)]
    text = "\n".join([*lines, *machine_note(summaries)])
    groups = group_table(summaries)
    return f"{text}\n\n{groups}" if groups else text


_LISTED = 12  # problems named in a comparison line; more are counted


def against_first(summaries: Sequence[Summary]) -> list[str]:
    """One line per config after the first: the problems it won and lost against the
    first config, on the problems both scored ("moa against single:m on 30: won 2
    (gsm8k/5, gsm8k/29), lost none")."""
    if len(summaries) < 2:
        return []
    base = summaries[0]
    lines = []
    for other in summaries[1:]:
        shared = [i for i in other.item_scores if i in base.item_scores]
        won = [i for i in shared if other.item_scores[i] > base.item_scores[i]]
        lost = [i for i in shared if other.item_scores[i] < base.item_scores[i]]
        lines.append(
            f"{other.config} against {base.config} on {len(shared)}: "
            f"won {_listed(won)}, lost {_listed(lost)}"
        )
    return lines


def machine_note(summaries: Sequence[Summary]) -> list[str]:
    """Lines saying which machines made the records, when more than one did ([] when one).

    llama.cpp's kernels round differently on another CPU, so greedy answers can
    differ: a table over records of two machines is not one run.
    """
    labels = list(dict.fromkeys(label for s in summaries for label in s.machines))
    if len(labels) < 2:
        return []
    lines = [f"note: these records were made on {len(labels)} machines, whose answers can differ:"]
    for label in labels:
        counts = {s.config: s.machines.get(label, 0) for s in summaries}
        if len(set(counts.values())) == 1:
            made = f"{_items(next(iter(counts.values())))} of each config"
        else:
            made = ", ".join(f"{config} {count}" for config, count in counts.items())
        lines.append(f"  {label}: {made}")
    return lines


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _listed(ids: Sequence[str]) -> str:
    if not ids:
        return "none"
    named = ", ".join(ids[:_LISTED]) + (
        f", ... {len(ids) - _LISTED} more" if len(ids) > _LISTED else ""
    )
    return f"{len(ids)} ({named})"


def group_table(summaries: Sequence[Summary]) -> str:
    """Each group's score per config (rows: groups, in order of first appearance), or ""."""
    names = list(dict.fromkeys(g for s in summaries for g in s.groups or {}))
    if not names:
        return ""
    rows = []
    for name in names:
        counts = [s.groups[name]["n"] for s in summaries if s.groups and name in s.groups]
        row = [name, f"{max(counts):.0f}"]
        for s in summaries:
            group = (s.groups or {}).get(name)
            row.append("-" if group is None else f"{group['score']:.1f}")
        rows.append(row)
    return _columns(["GROUP", "N", *(s.config for s in summaries)], rows)


def _columns(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def chart(summaries: Sequence[Summary], path: Path, title: str) -> Path:
    """A PNG scatter: score against seconds per problem, one labelled point per config."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: write files only
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("the chart needs matplotlib: pip install 'moa-local[eval]'") from None
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    x_span = max((s.seconds_per_item for s in summaries), default=1) or 1
    placed: list[tuple[float, float]] = []
    for s in summaries:
        single = s.config.startswith("single:")
        axes.scatter(
            s.seconds_per_item,
            s.score,
            s=60,
            marker="o" if single else "D",
            color="#888888" if single else "#1f6feb",
            zorder=3,
        )
        # Configs of equal score and similar time would print their labels over
        # each other: each such neighbour moves the label one line down.
        neighbours = sum(
            abs(x - s.seconds_per_item) < 0.15 * x_span and abs(y - s.score) < 4 for x, y in placed
        )
        placed.append((s.seconds_per_item, s.score))
        axes.annotate(
            s.config,
            (s.seconds_per_item, s.score),
            textcoords="offset points",
            xytext=(6, 4 - 11 * neighbours),
            fontsize=8,
        )
    axes.set_xlabel("seconds per problem (mean)")
    axes.set_ylabel("score (%)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    # Room on the right for the labels of the slowest configs.
    axes.set_xlim(0, max((s.seconds_per_item for s in summaries), default=1) * 1.35 or 1)
    top = max((s.score for s in summaries), default=100)
    # Headroom above 100 % keeps the labels of perfect scores below the title.
    axes.set_ylim(0, min(100, top + 10) + 8)
    axes.set_yticks(range(0, 101, 20))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    plt.close(figure)
    tmp.replace(path)
    return path
