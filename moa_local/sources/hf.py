"""Fetch a GGUF from the Hugging Face hub with huggingface-hub.

huggingface-hub handles authentication (``HF_TOKEN``), mirrors
(``HF_ENDPOINT``) and ``HF_HUB_OFFLINE``: with it set, nothing is fetched and
this source fails with a message saying so, so the next source can be tried.
The file is downloaded into a temporary directory and then streamed into the
store's partial file, hashing on the way.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import BinaryIO

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
    with tempfile.TemporaryDirectory(prefix="moa-local-hf-") as work:
        try:
            path = hf_hub_download(repo_id=source.repo, filename=source.filename, local_dir=work)
        except Exception as exc:  # the hub client raises many types; all mean "not fetched"
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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
