"""What the CLI shows on stderr while it works: download bars and a run's progress.

- :func:`progress_factory` makes the library's :data:`~moa_local.reporting.ProgressFactory`
  for downloads: a tqdm bar each on a terminal, one summary line each
  (:class:`_SummaryLine`) when stderr is a log or a pipe, nothing when quiet.
- :class:`ProgressPrinter` is a run's observer: it turns trace events into
  short lines (layers, proposals, aggregation, router and verify decisions).
- :func:`warnings_only` is the observer of a quiet run.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from ..models.store import mib
from ..reporting import Progress, ProgressFactory, silent_progress
from .common import err


class _SummaryLine:
    """Progress for a stderr that is not a terminal: one line when the transfer ends."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.done = 0
        self.started = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        seconds = max(time.monotonic() - self.started, 1e-3)
        rate = self.done / seconds / (1 << 20)
        err(f"{self.description}: {mib(self.done)} in {seconds:.1f} s ({rate:.1f} MiB/s)")


def progress_factory(quiet: bool) -> ProgressFactory:
    """One tqdm bar per download on a terminal; one summary line per download elsewhere."""
    if quiet:
        return silent_progress
    if not sys.stderr.isatty():
        return lambda description, total: _SummaryLine(description)

    def factory(description: str, total: int) -> Progress:
        bar: Progress = tqdm(
            total=total,
            desc=description,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )
        return bar

    return factory


class ProgressPrinter:
    """Prints a run's progress on stderr from its trace events."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.layers = 0

    def __call__(self, event: str, record: dict[str, Any]) -> None:
        echo = err
        if event == "run.start":
            self.layers = record["layers"]
            if self.verbose:
                echo(
                    f"run {record['run_id']}: strategy {record['strategy']}, "
                    f"{record['layers']} layer(s), aggregator {record['aggregator']}"
                )
        elif event == "trace.warning":
            echo(f"warning: {record['message']}")
        elif event == "roles.generated":
            names = ", ".join(role["name"] for role in record["roles"])
            note = (
                "" if record["outcome"] == "ok" else f" ({record['outcome']}: {record['detail']})"
            )
            echo(f"roles by {record['model']}: {names}{note}")
        elif event == "layer.start":
            count = len(record["agents"])
            if record.get("first_answer") and count > 1:
                echo(
                    f"layer {record['layer']}/{self.layers}: the first answer first "
                    f"({count - 1} more proposers if it does not settle the question)"
                )
            else:
                echo(f"layer {record['layer']}/{self.layers}: {count} proposers working")
        elif event == "proposal.done":
            if record["error"]:
                echo(f"  x {record['agent']}: {record['error']}")
            else:
                speed = record["completion_tokens"] / record["seconds"] if record["seconds"] else 0
                echo(
                    f"  + {record['agent']}: {record['completion_tokens']} tokens, "
                    f"{speed:.1f} tok/s, {record['seconds']:.1f} s"
                )
        elif event == "references.shortened" and self.verbose:
            echo(f"  (references shortened to fit {record['model']}'s context)")
        elif event == "aggregate.start":
            echo(f"aggregating with {record['model']}...")
        elif event == "router.decision" and (self.verbose or record["action"] != "continue"):
            echo(f"router: {record['action']} ({record['reason']})")
        elif event == "verify.off":
            echo(record["reason"])
        elif event == "verify.tests":
            if record["tests"] or record["source"] != "question":
                echo(f"verify: {len(record['tests'])} tests for {record['entry_point']}")
            else:
                echo(f"verify: the question states no examples for {record['entry_point']}")
        elif event == "verify.selected":
            chosen = record["chosen"]
            echo(f"verify: chose {chosen} ({record['reason']})" if chosen else record["reason"])
        elif event == "first.stop":
            echo(f"kept the first answer: {record['reason']}")
        elif event == "first.more":
            echo(f"more samples: the first answer does not settle it ({record['reason']})")
        elif event == "answer.replaced":
            echo(f"the answer shown first ({record['replaced']}) is replaced by {record['by']}'s")
        elif event == "settle.stop" and record["reason"] != "free text":
            echo(f"stopped after {record['samples']} samples: {record['reason']}")
        elif event == "form.off" or event == "form.set_aside":
            echo(f"form: {record['reason']}")
        elif event == "form.checker":
            echo(_form_checker_line(record))
        elif event == "form.revise":
            echo(f"form: revising {record['agent']}'s answer ({'; '.join(record['failures'])})")
        elif event == "form.selected":
            echo(f"form: chose {record['chosen']} ({record['reason']})")
        elif event in ("aggregate.vote", "aggregate.consensus", "aggregate.select"):
            echo(f"chose {record['chosen']}: {record['reason']}")
        elif event == "aggregate.window":
            echo(f"aggregating window {record['step']} ({record['references']} answers)...")
        elif event == "final.start":
            echo(f"final agent {record['model']} rewriting...")
        elif event == "model.load" and self.verbose:
            measured = record["measured_mb"]
            echo(
                f"  loaded {record['model']} on {record['device']} in {record['seconds']:.1f} s: "
                f"estimated {record['estimate_mb']} MiB, measured "
                + (f"{measured} MiB" if measured is not None else "n/a")
            )
        elif event == "model.unload" and self.verbose:
            echo(f"  unloaded {record['model']} ({record['reason']})")


def warnings_only(event: str, record: dict[str, Any]) -> None:
    """The observer of a quiet run: warnings still reach stderr."""
    if event == "trace.warning":
        err(f"warning: {record['message']}")


def _form_checker_line(record: dict[str, Any]) -> str:
    """What the form check of a text answer will hold it to, in one line."""
    if record["source"] == "stated":
        return f"form: the question asks for {', '.join(record['asked']) or 'nothing checkable'}"
    if record["written"]:
        return f"form: {record['model']} wrote a checker of the answer's form"
    return f"form: no checker ({record['reason']})"
