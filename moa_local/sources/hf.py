"""Fetch a GGUF from the Hugging Face hub with huggingface-hub.

huggingface-hub handles authentication (``HF_TOKEN``), mirrors
(``HF_ENDPOINT``) and ``HF_HUB_OFFLINE``: with it set, nothing is fetched and
this source fails with a message saying so, so the next source can be tried.
The file is downloaded into a temporary directory and then streamed into the
store's partial file, hashing on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlparse

from ..catalog import HfSource
from ..errors import PullError
from ..store import ProgressFactory

_CHUNK = 1 << 20


def fetch(
    source: HfSource,
    out: BinaryIO,
    progress: ProgressFactory,
    *,
    label: str,
) -> tuple[str, int]:
    """Write ``source``'s file into ``out``; return (sha256, size)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PullError(f"{source.repo} not fetched: HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PullError("huggingface-hub is not installed") from None
    _check_reachable()
    with tempfile.TemporaryDirectory(prefix="moa-local-hf-") as work, _quiet_hub_logs():
        try:
            path = hf_hub_download(repo_id=source.repo, filename=source.filename, local_dir=work)
        except Exception as exc:  # the hub client raises many types; all mean "not fetched"
            message = str(exc).strip().split(". ")[0] if str(exc).strip() else type(exc).__name__
            raise PullError(
                f"{source.repo}/{source.filename} could not be fetched from the hub: {message}"
            ) from None
        size = os.path.getsize(path)
        bar = progress(f"{label} (copy)", size)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while block := handle.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        finally:
            bar.close()
    return digest.hexdigest(), size


def _check_reachable() -> None:
    """Fail fast when the hub's host name does not even resolve (an offline machine).

    Without this, huggingface-hub retries for about 25 seconds, printing a
    warning per attempt, before it gives up.
    """
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
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
