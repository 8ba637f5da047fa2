"""JSONL traces: one file per run, one JSON object per line, flushed per event.

Every line has ``event``, ``ts`` (Unix time, seconds) and ``run_id``, then the
event's own fields. Because each line is written and flushed whole, a crash or
Ctrl-C leaves a file whose every line parses. Events (see docs/design.md for fields):
``run.start``, ``roles.generated``, ``layer.start``, ``references.shortened``,
``proposal.done``, ``aggregate.done``, ``final.done``, ``run.done``,
``run.error``. With ``live=True`` observers also receive ``proposal.delta``
and ``aggregate.delta`` (each piece of streamed text), which no file holds.

Observers (the CLI's progress display) receive the same events, whether or
not a file is written, so there is one event stream for both.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

Observer = Callable[[str, dict[str, Any]], None]


class Tracer:
    """Writes a run's events to ``trace_dir`` (or nowhere) and forwards them to observers."""

    def __init__(
        self,
        trace_dir: str | Path | None,
        *,
        observers: list[Observer] | None = None,
        run_id: str | None = None,
        live: bool = False,
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.observers = list(observers or [])
        # Whether observers want the text of every generation as it streams
        # (``*.delta`` events, never written to the file: a trace stays small).
        self.live = live and bool(self.observers)
        self.path: Path | None = None
        self._file: TextIO | None = None
        # Why no trace is written although one was asked for (the run goes on).
        self.problem: str | None = None
        if trace_dir:
            directory = Path(trace_dir).expanduser()
            try:
                directory.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                path = directory / f"{stamp}-{self.run_id}.jsonl"
                # Held open for the whole run and closed by close().
                self._file = open(path, "x", encoding="utf-8")  # noqa: SIM115
                self.path = path
            except OSError as exc:
                self.problem = (
                    f"cannot write traces to {directory}: {exc.strerror or exc}; the run goes "
                    "on without one (set trace_dir, or --trace-dir '' to turn traces off)"
                )

    def emit(self, event: str, **fields: Any) -> None:
        """Record one event: write and flush its line, then tell the observers."""
        record = {"event": event, "ts": round(time.time(), 6), "run_id": self.run_id, **fields}
        if self._file is not None and not self._file.closed:
            try:
                self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                self._file.flush()
            except OSError as exc:  # the disk filled up or went away mid-run
                self.problem = f"the trace {self.path} stopped being written: {exc.strerror}"
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
        for observer in self.observers:
            observer(event, record)

    def delta(self, event: str, **fields: Any) -> None:
        """Tell live observers of a piece of streamed text; nothing is written."""
        if not self.live:
            return
        record = {"event": event, "ts": round(time.time(), 6), "run_id": self.run_id, **fields}
        for observer in self.observers:
            observer(event, record)

    def close(self) -> None:
        """Close the file; later events still reach observers."""
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """Parse a trace file back into its events (every line must be valid JSON)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
