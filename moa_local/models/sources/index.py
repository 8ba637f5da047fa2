"""Whether pinned distributions are still listed where pip looks, for ``doctor --sources``.

Nothing is downloaded: each index is asked for the project's page of the
simple API (PEP 503, ``GET <index>/<project>/``, asking for the JSON form of
PEP 691 first and taking HTML too), and the versions are read from the file
names it lists. The places asked are pip's own (:mod:`.pip_settings`): the
index, the extra indexes and the find-links, where pip would look for
``pip download``. A ``file://`` index is a folder: ``<folder>/<project>/index.html``,
as pip reads it; a find-links entry is a folder of files or a page of links.

Each requirement ends in one of three states:

- ``listed``: some place lists a file of that version (a wheel, when only
  wheels will do, as for model parts pip fetches with ``--only-binary``);
- ``gone``: every place answered and none lists it; ``versions`` says what
  they list instead;
- ``unknown``: not found, and some place could not be asked (``reason``):
  it might be there.

Places are asked in pip's order and the first that lists the version ends the
search; requirements are asked in parallel over one HTTP client.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .pip_settings import PipSettings, redact

TIMEOUT_S = 10.0
ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True)
class Requirement:
    """``project==version``, and whether pip may only take a wheel of it."""

    project: str
    version: str
    wheel_only: bool = False

    def __str__(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass
class Status:
    """What the places pip looks in say of one requirement."""

    requirement: Requirement
    state: str = "gone"  # listed, gone or unknown
    where: str | None = None  # the place that lists it
    versions: list[str] = field(default_factory=list)  # what is listed instead, when gone
    reason: str | None = None  # why a place could not be asked

    def summary(self) -> str:
        """``listed (place)``, ``gone (versions listed: ...)`` or ``could not ask: reason``."""
        if self.state == "listed":
            return f"listed ({self.where})"
        if self.state == "unknown":
            return f"could not ask: {self.reason}"
        listed = ", ".join(self.versions) or "none"
        kind = "no wheel of it; " if self.requirement.wheel_only else ""
        return f"gone ({kind}versions listed: {listed})"


class CannotAsk(Exception):
    """A place did not answer (network, HTTP error, unreadable folder); str() says why."""


def check(
    requirements: Iterable[Requirement], settings: PipSettings, *, timeout: float = TIMEOUT_S
) -> list[Status]:
    """The status of each requirement, in the order given."""
    wanted = list(requirements)
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=settings.cert) if settings.cert else True
    )
    with httpx.Client(
        timeout=timeout, verify=verify, proxy=settings.proxy, follow_redirects=True
    ) as client:
        places: list[_Place] = [_Index(url, client) for url in settings.indexes]
        places += [_FindLinks(url, client) for url in settings.find_links]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda r: _status(r, places), wanted))


def _status(requirement: Requirement, places: list[_Place]) -> Status:
    status = Status(requirement)
    pinned = Version(requirement.version)
    versions: set[Version] = set()
    reasons = []
    for place in places:
        try:
            files = place.files(requirement.project)
        except CannotAsk as exc:
            reasons.append(f"{place.name}: {exc}")
            continue
        for filename in files:
            found = _version_of(filename, requirement.project)
            if found is None:
                continue
            versions.add(found)
            if found == pinned and (filename.endswith(".whl") or not requirement.wheel_only):
                status.state, status.where = "listed", place.name
                return status
    status.versions = [str(v) for v in sorted(versions)]
    if reasons:
        status.state, status.reason = "unknown", "; ".join(reasons)
    return status


def _version_of(filename: str, project: str) -> Version | None:
    """The version of ``project`` that ``filename`` holds, or None (another project, not a dist)."""
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return version if name == canonicalize_name(project) else None


class _Place:
    """One place pip looks in; ``files(project)`` lists the file names it offers."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.name = redact(url)
        self.client = client

    def files(self, project: str) -> list[str]:
        raise NotImplementedError

    def _get(self, url: str) -> httpx.Response | None:
        """The response to GET ``url``; None for 404/410 (nothing there)."""
        try:
            response = self.client.get(url, headers={"Accept": ACCEPT})
        except httpx.HTTPError as exc:
            raise CannotAsk(_first_line(exc)) from None
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            raise CannotAsk(f"HTTP {response.status_code}")
        return response


class _Index(_Place):
    """A simple-API index: one page per project."""

    def files(self, project: str) -> list[str]:
        page = f"{self.url.rstrip('/')}/{canonicalize_name(project)}/"
        if page.startswith("file:"):
            root = Path(url2pathname(urlsplit(self.url).path))
            if not root.is_dir():
                raise CannotAsk(f"no folder {root}")
            return _read_page(Path(url2pathname(urlsplit(page).path)) / "index.html")
        response = self._get(page)
        if response is None:
            return []
        if "json" in response.headers.get("content-type", ""):
            try:
                return [file["filename"] for file in response.json()["files"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise CannotAsk(f"unreadable JSON page ({exc})") from None
        return _links(response.text)


class _FindLinks(_Place):
    """A find-links entry: a folder of distributions, or one page of links to them."""

    def files(self, project: str) -> list[str]:
        if "://" not in self.url or self.url.startswith("file:"):
            path = Path(url2pathname(urlsplit(self.url).path) if "://" in self.url else self.url)
            if path.is_dir():
                return [p.name for p in path.iterdir()]
            if path.is_file():
                return _read_page(path)
            raise CannotAsk(f"no folder {path}")
        response = self._get(self.url)
        return [] if response is None else _links(response.text)


def _read_page(path: Path) -> list[str]:
    """The files an HTML page on disk links to; none when it does not exist."""
    try:
        return _links(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CannotAsk(f"cannot read {path} ({exc.strerror})") from None


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _links(html: str) -> list[str]:
    """The file names an HTML page of the simple API links to (as pip reads them: the URL's)."""
    parser = _Anchors()
    parser.feed(html)
    return [unquote(urlsplit(href).path.rsplit("/", 1)[-1]) for href in parser.hrefs]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
