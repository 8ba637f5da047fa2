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

A pull holds a lock per model (``models/.NAME.lock``, an ``flock`` that the
kernel releases when the process dies, holding the PID for messages), so two
processes pulling one model end with one verified file: the second waits and
then finds it installed. Under the lock, what a killed pull left behind (its
``.FILE.PID.*.partial`` staging files and its ``moa-local-pull-NAME-PID-*``
temporary folders) is removed first; a hub download's ``.hub-download``
folder is kept so that the hub's client resumes it. ``leftovers`` and
``remove`` serve ``moa-local prune``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PullError
from ..reporting import ProgressFactory, silent_progress
from .catalog import CatalogEntry, HfSource, PypiSource


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


# Errors that mean the disk (or the process's file-size limit) is full.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
HUB_DOWNLOAD_DIR = ".hub-download"
FREE_SPACE_HINT = "moa-local prune --rm NAME removes a model"


def temp_prefix(name: str, pid: int | None = None) -> str:
    """Prefix of a pull's temporary folders: the model and the pulling process."""
    return f"moa-local-pull-{name}-{os.getpid() if pid is None else pid}-"


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size_of(path: Path) -> int:
    if path.is_dir():
        total = 0
        for root, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, name))
        return total
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def mib(size: int) -> str:
    """Bytes as KiB, MiB or GiB for messages."""
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GiB"
    if size >= 1 << 20:
        return f"{size / (1 << 20):.0f} MiB"
    return f"{size / 1024:.0f} KiB"


@dataclass(frozen=True)
class Leftover:
    """Something a dead pull left behind: a staging file, a temporary or resumable download."""

    path: Path
    size: int
    kind: str  # "partial", "temporary" or "resumable"


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

    def problem(self, entry: CatalogEntry) -> str:
        """Why ``entry`` does not count as installed, in words for an error message."""
        path = self.path_for(entry)
        manifest_path = self.directory_for(entry) / "manifest.json"
        manifest = self.manifest(entry)
        if not path.exists() and manifest is None:
            return "is not pulled yet"
        if not path.exists():
            return f"has lost its file {path} (deleted?)"
        if manifest is None:
            return f"has an unreadable {manifest_path}"
        size = path.stat().st_size
        if size != manifest.size:
            return f"is damaged: {path} has {size} bytes, its manifest says {manifest.size}"
        return "is installed"

    def pull(
        self,
        entry: CatalogEntry,
        progress: ProgressFactory = silent_progress,
        *,
        force: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> Manifest:
        """Fetch ``entry`` from its first source that works; verify; install atomically.

        ``on_wait`` hears why the pull waits when another process pulls the
        same model (the pull then returns what that one installed).
        """
        if self.is_installed(entry) and not force:
            return self._installed_manifest(entry)
        with self._lock(entry, on_wait):
            if self.is_installed(entry) and not force:
                return self._installed_manifest(entry)  # another process just pulled it
            self.clear_leftovers(entry)
            self._check_space(entry)
            failures = []
            for source in entry.sources:
                try:
                    return self._pull_from(entry, source, progress)
                except PullError as exc:
                    failures.append(f"{source.kind}: {exc}")
                except OSError as exc:  # the local disk: full, read-only, no permission
                    raise PullError(self._disk_message(entry, exc)) from None
                finally:
                    self._remove_if_empty(entry)
            raise PullError(f"could not pull {entry.name}: " + "; ".join(failures))

    def _installed_manifest(self, entry: CatalogEntry) -> Manifest:
        manifest = self.manifest(entry)
        assert manifest is not None
        return manifest

    def _disk_message(self, entry: CatalogEntry, exc: OSError) -> str:
        directory = self.directory_for(entry)
        if exc.errno in _DISK_FULL:
            free = shutil.disk_usage(self.root if self.root.exists() else self.home).free
            return (
                f"the disk filled up while pulling {entry.name} into {directory}: it needs "
                f"{mib(entry.size)}, {mib(free)} is free now; free some space "
                f"({FREE_SPACE_HINT}) and pull again; nothing was left behind"
            )
        return (
            f"cannot write {entry.name} into {directory}: {exc.strerror or exc}; "
            "nothing was installed"
        )

    def _check_space(self, entry: CatalogEntry) -> None:
        """Refuse before downloading when the model cannot fit on the disk."""
        if not entry.size:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        resumable = _size_of(self.directory_for(entry) / HUB_DOWNLOAD_DIR)
        if free + resumable < entry.size:
            raise PullError(
                f"{entry.name} needs {mib(entry.size)} in {self.root}, but only {mib(free)} "
                f"is free; free some space ({FREE_SPACE_HINT}) and pull again"
            )

    @contextlib.contextmanager
    def _lock(self, entry: CatalogEntry, on_wait: Callable[[str], None] | None) -> Iterator[None]:
        """Hold ``entry``'s pull lock; wait (telling ``on_wait``) while another process has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".{entry.name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                if on_wait is not None:
                    on_wait(f"{entry.name}: waiting for another pull of it (pid {holder}) to end")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # releases the lock

    def leftovers(
        self, entry: CatalogEntry | None = None, *, resumable: bool = True
    ) -> list[Leftover]:
        """What dead pulls left behind, for ``entry`` or for every model.

        Staging files count only for models nobody is pulling now, temporary
        folders only when the process named in them is gone; ``resumable``
        includes the hub's resumable downloads.
        """
        found: list[Leftover] = []
        directories = (
            [self.directory_for(entry)]
            if entry is not None
            else sorted(p for p in self.root.iterdir() if p.is_dir())
            if self.root.exists()
            else []
        )
        for directory in directories:
            if self._pulling(directory.name):
                continue
            for path in directory.glob(".*.partial"):
                found.append(Leftover(path, _size_of(path), "partial"))
            for path in directory.glob(".manifest.*"):
                found.append(Leftover(path, _size_of(path), "partial"))
            hub = directory / HUB_DOWNLOAD_DIR
            if resumable and hub.exists():
                found.append(Leftover(hub, _size_of(hub), "resumable"))
        prefix = "moa-local-pull-" if entry is None else f"moa-local-pull-{entry.name}-"
        for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            pid = _pid_in(path.name)
            if pid is not None and pid != os.getpid() and not pid_alive(pid):
                found.append(Leftover(path, _size_of(path), "temporary"))
        return found

    def _pulling(self, name: str) -> bool:
        """Whether some process holds the pull lock of model ``name`` now."""
        path = self.root / f".{name}.lock"
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def clear_leftovers(self, entry: CatalogEntry) -> int:
        """Remove what dead pulls of ``entry`` left (its lock held); bytes freed."""
        freed = 0
        directory = self.directory_for(entry)
        stale = [
            Leftover(p, _size_of(p), "partial")
            for pattern in (".*.partial", ".manifest.*")
            for p in directory.glob(pattern)
        ]
        others = [
            item for item in self.leftovers(entry, resumable=False) if item.kind == "temporary"
        ]
        for item in [*stale, *others]:
            _remove(item.path)
            freed += item.size
        return freed

    def size_on_disk(self, entry: CatalogEntry) -> int:
        """Bytes ``entry``'s directory takes."""
        return _size_of(self.directory_for(entry))

    def remove_leftover(self, item: Leftover) -> None:
        """Delete one leftover found by :meth:`leftovers`."""
        _remove(item.path)

    def remove(self, entry: CatalogEntry) -> int:
        """Delete an installed model (file, manifest, leftovers); bytes freed."""
        directory = self.directory_for(entry)
        if not directory.exists():
            return 0
        with self._lock(entry, None):
            freed = _size_of(directory)
            shutil.rmtree(directory, ignore_errors=True)
        return freed

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

            with (
                self.partial_file(entry) as (handle, temp_path),
                tempfile.TemporaryDirectory(prefix=temp_prefix(entry.name)) as work,
            ):
                digest, size = fetch_pypi(
                    source, handle, progress, label=f"{entry.name} from pypi", work=Path(work)
                )
                self._verify(entry, source.kind, digest, size, source.sha256, source.size)
                return self._install(entry, temp_path, source.kind, digest, size)
        from .sources.hf import fetch as fetch_hf

        # The hub's client resumes an interrupted download found in this folder.
        hub_work = directory / HUB_DOWNLOAD_DIR
        fetched = fetch_hf(source, hub_work, progress, label=f"{entry.name} from hf")
        expected = source.sha256 or fetched.published_sha256
        try:
            self._verify(
                entry, source.kind, fetched.sha256, fetched.size, expected, fetched.published_size
            )
        except PullError:
            _remove(hub_work)  # a corrupt download must not be resumed
            raise
        manifest = self._install(entry, fetched.path, source.kind, fetched.sha256, fetched.size)
        _remove(hub_work)
        return manifest

    def _remove_if_empty(self, entry: CatalogEntry) -> None:
        """Leave no empty model directory behind a failed or interrupted pull."""
        with contextlib.suppress(OSError):
            self.directory_for(entry).rmdir()  # fails (as wanted) unless empty

    @contextlib.contextmanager
    def partial_file(self, entry: CatalogEntry) -> Iterator[tuple[Any, Path]]:
        """A temporary file beside the final one; removed unless installed."""
        directory = self.directory_for(entry)
        fd, name = tempfile.mkstemp(
            prefix=f".{entry.filename}.{os.getpid()}.", suffix=".partial", dir=directory
        )
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


def _pid_in(name: str) -> int | None:
    """The PID in a temporary folder's name ``moa-local-pull-NAME-PID-XXXX``."""
    parts = name.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None
