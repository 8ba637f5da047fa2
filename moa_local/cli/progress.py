"""What the CLI shows on stderr while it works: download bars and a run's progress.

- :func:`progress_factory` makes the library's :data:`~moa_local.reporting.ProgressFactory`
  for downloads: a tqdm bar each on a terminal, one summary line each
  (:class:`_SummaryLine`) when stderr is a log or a pipe, nothing when quiet.
- :class:`ProgressPrinter` is a run's observer: it turns trace events into
  short lines (layers, proposals, aggregation, router and verify decisions).
- :func:`warnings_only` is the observer of a quiet run.
- :class:`ProblemLines` is an eval's progress when stderr is a log: a line
  per finished problem in place of a bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

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


class ProblemLines:
    """An eval's progress for a stderr that is not a terminal: one line per finished problem.

    An eval runs for hours, often under ``nohup`` with stderr in a file; a
    tqdm bar is off there, and a line per problem (each takes seconds at
    least) says how far it is and how fast it goes:
    ``moa: 13/50 problems (12 this run, 52.7 s each)``.
    """

    def __init__(self, label: str, total: int, done: int, out: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.ran = 0
        self.started = time.monotonic()
        self.out = out if out is not None else sys.stderr

    def update(self, n: int) -> None:
        """``n`` more problems finished."""
        self.done += n
        self.ran += n
        each = (time.monotonic() - self.started) / self.ran
        counts = f"{self.done}/{self.total} problems"
        print(f"{self.label}: {counts} ({self.ran} this run, {each:.1f} s each)", file=self.out)
        self.out.flush()

    def close(self) -> None:
        """Nothing to end: every line is already whole."""


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


class AnswerStream:
    """The answer streamed to stdout, which remembers whether its last line is open.

    The first answer streams before the run ends, so progress lines (on stderr)
    follow it; on a terminal both streams share the screen, and a progress line
    must not continue the answer's last line.
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self.open_line = False
        self.written = 0

    def start(self) -> None:
        """Begins a new answer."""
        self.open_line, self.written = False, 0

    @property
    def out(self) -> TextIO:
        """Where the answer goes (stdout unless given)."""
        return self._out if self._out is not None else sys.stdout

    def write(self, text: str) -> None:
        """Writes ``text`` of the answer at once."""
        self.out.write(text)
        self.out.flush()
        self.written += len(text)
        if text:
            self.open_line = not text.endswith("\n")

    def break_line(self) -> None:
        """Ends the answer's open line when stdout is a terminal (progress follows)."""
        if self.open_line and self.out.isatty():
            self.write("\n")

    def end(self) -> None:
        """Ends the answer with a newline, unless its last line is already ended (an
        empty answer is an empty line)."""
        if self.open_line or not self.written:
            self.write("\n")


class ProgressPrinter:
    """Prints a run's progress on stderr from its trace events."""

    def __init__(self, verbose: bool, answer: AnswerStream | None = None) -> None:
        self.verbose = verbose
        self.layers = 0
        self.answer = answer

    def __call__(self, event: str, record: dict[str, Any]) -> None:
        answer = self.answer

        def echo(line: str) -> None:
            if answer is not None:
                answer.break_line()
            err(line)

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
            replaced, by = record["replaced"], record["by"]
            if record.get("corrected"):
                echo(f"the answer shown first ({replaced}) is corrected")
            else:
                echo(f"the answer shown first ({replaced}) is replaced by {by}'s")
        elif event in ("arithmetic.repaired", "arithmetic.slip"):
            echo(f"arithmetic: {record['agent']}: {record['reason']}")
        elif event == "settle.stop" and record["reason"] != "free text":
            echo(f"stopped after {record['samples']} samples: {record['reason']}")
        elif event == "form.off" or event == "form.set_aside":
            echo(f"form: {record['reason']}")
        elif event == "form.checker":
            echo(_form_checker_line(record))
        elif event == "form.revise":
            as_list = (
                f", as a numbered list of {record['numbered']}" if record.get("numbered") else ""
            )
            failures = "; ".join(record["failures"])
            echo(f"form: revising {record['agent']}'s answer ({failures}){as_list}")
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
