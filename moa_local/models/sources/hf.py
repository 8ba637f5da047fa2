"""Fetch a GGUF from the Hugging Face hub with huggingface-hub.

huggingface-hub handles authentication (``HF_TOKEN``), mirrors
(``HF_ENDPOINT``) and ``HF_HUB_OFFLINE``: with it set, nothing is fetched and
this source fails with a message saying so, so the next source can be tried.

Before downloading, the file's metadata is asked of the hub
(``get_hf_file_metadata``): for a file stored with Git LFS, as GGUFs are,
its ETag is the sha256 the hub publishes, which the store verifies the
download against. The file is downloaded with httpx into the model's
``.hub-download`` folder, where the next pull resumes an interrupted
download with an HTTP range request (huggingface-hub's own downloader starts
over in every process); the store moves it into place, so the file is never
copied. huggingface-hub supplies the URL, the metadata and the auth headers
(``HF_TOKEN``).
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
from urllib.parse import urlparse

import httpx

from ...errors import PullError
from ...reporting import Progress, ProgressFactory
from ..catalog import HfSource

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Fetched:
    """A downloaded file, its computed sha256 and size, and the sha256 the hub published."""

    path: Path
    sha256: str
    size: int
    published_sha256: str | None
    published_size: int | None


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
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.utils import build_hf_headers
    except ImportError:
        raise PullError("huggingface-hub is not installed") from None
    _check_reachable()
    endpoint = _endpoint()
    url = hf_hub_url(source.repo, source.filename, endpoint=endpoint)
    try:
        with _quiet_hub_logs():
            metadata = get_hf_file_metadata(url, endpoint=endpoint)
    except Exception as exc:  # the hub client raises many types; all mean "not fetched"
        raise PullError(f"{source.repo}/{source.filename}: {_first_sentence(exc)}") from None
    etag = (metadata.etag or "").strip('"').lower()
    sha256 = etag if _SHA256.match(etag) else None
    size = metadata.size
    work.mkdir(parents=True, exist_ok=True)
    # Keyed by the ETag, so that a file changed on the hub is not resumed.
    partial = work / f"{source.filename}.{(etag or 'unknown')[:16]}.partial"
    for stale in work.glob("*.partial"):
        if stale != partial:
            stale.unlink(missing_ok=True)
    bar = progress(label, size or source.size or 0)
    try:
        _download(metadata.location or url, partial, build_hf_headers(), bar, size)
    except httpx.HTTPError as exc:
        raise PullError(
            f"{source.repo}/{source.filename} could not be fetched from the hub: {exc}; "
            "pull again to resume"
        ) from None
    finally:
        bar.close()
    digest = hashlib.sha256()
    with open(partial, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return Fetched(partial, digest.hexdigest(), partial.stat().st_size, sha256, size)


def _download(
    url: str, partial: Path, headers: dict[str, str], bar: Progress, size: int | None
) -> None:
    """Fetch ``url`` into ``partial``, asking only for what it lacks (HTTP range)."""
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    if size is not None and have == size:
        bar.update(have)
        return
    if have:
        headers = {**headers, "Range": f"bytes={have}-"}
    timeout = httpx.Timeout(30.0, connect=10.0)
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout) as r:
        if r.status_code == 200:
            have = 0  # the server sends the whole file: start over
        elif r.status_code != 206:
            raise httpx.HTTPStatusError(f"HTTP {r.status_code}", request=r.request, response=r)
        bar.update(have)
        with open(partial, "ab" if have else "wb") as out:
            for block in r.iter_bytes(_CHUNK):
                out.write(block)
                bar.update(len(block))


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
