"""Fetch a GGUF from the Hugging Face hub with huggingface-hub.

huggingface-hub handles authentication (``HF_TOKEN``), mirrors
(``HF_ENDPOINT``) and ``HF_HUB_OFFLINE``: with it set, nothing is fetched and
this source fails with a message saying so, so the next source can be tried.

Before downloading, the file's metadata is asked of the hub
(``get_hf_file_metadata``): for a file stored with Git LFS, as GGUFs are,
its ETag is the sha256 the hub publishes, which the store verifies the
download against. The file is downloaded into the model's
``.hub-download`` folder (one bar, ours), where the hub's client resumes an
interrupted download with an HTTP range request; the store moves it into
place, so the file is never copied.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..catalog import HfSource
from ..errors import PullError
from ..store import Progress, ProgressFactory

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Fetched:
    """A downloaded file, its computed sha256 and size, and the sha256 the hub published."""

    path: Path
    sha256: str
    size: int
    published_sha256: str | None


def published(source: HfSource) -> tuple[str | None, int | None]:
    """The sha256 (LFS files) and size the hub publishes for ``source``'s file."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    endpoint = _endpoint()
    with _quiet_hub_logs():
        url = hf_hub_url(source.repo, source.filename, endpoint=endpoint)
        metadata = get_hf_file_metadata(url, endpoint=endpoint)
    etag = (metadata.etag or "").strip('"').lower()
    return (etag if _SHA256.match(etag) else None), metadata.size


def fetch(source: HfSource, work: Path, progress: ProgressFactory, *, label: str) -> Fetched:
    """Download ``source``'s file into ``work`` (resuming what is there); hash it."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PullError(f"{source.repo} not fetched: HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PullError("huggingface-hub is not installed") from None
    _check_reachable()
    try:
        sha256, size = published(source)
    except Exception as exc:  # the hub client raises many types; all mean "not fetched"
        raise PullError(f"{source.repo}/{source.filename}: {_first_sentence(exc)}") from None
    work.mkdir(parents=True, exist_ok=True)
    bar = progress(label, size or source.size or 0)
    try:
        with _quiet_hub_logs():
            path = hf_hub_download(
                repo_id=source.repo,
                filename=source.filename,
                local_dir=work,
                endpoint=_endpoint(),
                tqdm_class=_forwarding_tqdm(bar),
            )
    except (OSError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PullError(
            f"{source.repo}/{source.filename} could not be fetched from the hub: "
            f"{_first_sentence(exc)}"
        ) from None
    finally:
        bar.close()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return Fetched(Path(path), digest.hexdigest(), os.path.getsize(path), sha256)


def _forwarding_tqdm(bar: Progress) -> Any:
    """A tqdm class for the hub's client that moves our one bar and prints nothing."""
    from tqdm.auto import tqdm

    class Forwarding(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            initial = int(kwargs.get("initial") or 0)
            if initial:
                bar.update(initial)  # resumed: these bytes were already there

        def update(self, n: float | None = 1) -> bool | None:
            bar.update(int(n or 0))
            return super().update(n)

    return Forwarding


def _endpoint() -> str | None:
    """``HF_ENDPOINT`` as set now (huggingface-hub reads it only once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split(". ")[0].splitlines()[0] if text else type(exc).__name__


def _check_reachable() -> None:
    """Fail fast when the hub's host name does not even resolve (an offline machine).

    Without this, huggingface-hub retries for about 25 seconds, printing a
    warning per attempt, before it gives up.
    """
    endpoint = _endpoint() or "https://huggingface.co"
    host = urlparse(endpoint).hostname or endpoint
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        raise PullError(
            f"cannot reach {host} (this machine looks offline; set HF_HUB_OFFLINE=1 to skip it)"
        ) from None


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Keep huggingface-hub's retry warnings off the terminal; failures are reported once."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
