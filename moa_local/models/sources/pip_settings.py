"""Where the user's pip looks for packages: its index, extra indexes and find-links.

Read with ``python -m pip config list``, so that pip itself merges its
configuration files (``/etc/xdg/pip/pip.conf``, ``/etc/pip.conf``,
``~/.config/pip/pip.conf``, the virtual environment's ``pip.conf``,
``PIP_CONFIG_FILE``) and its ``PIP_*`` environment variables, exactly as it
would for ``pip download``. Its lines read ``global.index-url='...'``,
``download.index-url='...'`` or ``:env:.index-url='...'``; for the
``download`` command pip lets ``[download]`` override ``[global]`` and the
environment override both, and so does :func:`pip_settings`.

When pip cannot be run, the ``PIP_*`` variables alone are read. With neither,
the index is PyPI's, ``https://pypi.org/simple``, as pip's own default.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

DEFAULT_INDEX = "https://pypi.org/simple"
_TRUE = ("1", "true", "yes", "on")
_KEYS = ("index-url", "extra-index-url", "no-index", "find-links", "cert", "proxy")


@dataclass(frozen=True)
class PipSettings:
    """The places pip would look for a distribution, in the order it names them."""

    indexes: tuple[str, ...] = (DEFAULT_INDEX,)  # index-url (unless no-index), then extras
    find_links: tuple[str, ...] = ()
    cert: str | None = None
    proxy: str | None = None
    source: str = "pip's default"  # how these were found, for the report
    values: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: the indexes and find-links, passwords hidden."""
        parts = [f"index {redact(url)}" for url in self.indexes] or ["no index"]
        parts += [f"find-links {redact(url)}" for url in self.find_links]
        return f"{', '.join(parts)} ({self.source})"


def pip_settings(env: Mapping[str, str] | None = None) -> PipSettings:
    """What ``pip download`` would use here, read through pip itself when it runs."""
    env = dict(os.environ if env is None else env)
    command = [sys.executable, "-m", "pip", "config", "list"]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0:
        return settings_from(parse_config_list(done.stdout), "pip config list")
    values = {
        name[4:].lower().replace("_", "-"): value
        for name, value in env.items()
        if name.startswith("PIP_") and name[4:].lower().replace("_", "-") in _KEYS
    }
    return settings_from(values, "PIP_* variables; pip config list failed")


def parse_config_list(text: str) -> dict[str, str]:
    """``pip config list``'s lines merged for ``pip download``: env > [download] > [global]."""
    rank = {"global": 0, "download": 1, ":env:": 2}
    best: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        section, _, key = name.rpartition(".")
        if not sep or section not in rank or key not in _KEYS:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        if key not in best or rank[section] >= best[key][0]:
            best[key] = (rank[section], str(value))
    return {key: value for key, (_, value) in best.items()}


def settings_from(values: Mapping[str, str], source: str) -> PipSettings:
    """Settings from pip's option values (``index-url``, ``extra-index-url``, ...)."""
    no_index = values.get("no-index", "").strip().lower() in _TRUE
    indexes = [] if no_index else [values.get("index-url") or DEFAULT_INDEX]
    if not no_index:
        indexes += values.get("extra-index-url", "").split()
    return PipSettings(
        indexes=tuple(dict.fromkeys(url.rstrip("/") for url in indexes)),
        find_links=tuple(values.get("find-links", "").split()),
        cert=values.get("cert") or None,
        proxy=values.get("proxy") or None,
        source=source,
        values=dict(values),
    )


def redact(url: str) -> str:
    """``url`` with any password replaced by ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:****@{host}"))
