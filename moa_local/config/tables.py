"""The named tables of a config file that describe machines: ``[models.NAME]``, ``[hosts.NAME]``.

Each reader takes the parsed TOML value and the file's label, checks every key
with a rule of :mod:`.validate`, and returns frozen records:
:class:`ModelConfig` per model and :class:`HostConfig` per host. Hosts are
read before models, because a model names its host and takes its backend from
the host's kind. (``[presets.NAME]`` hold settings: :mod:`.load` reads them.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .defaults import BACKENDS, HOST_KINDS
from .validate import Invalid, Rule, boolean, integer, is_number, number, read_table, string


@dataclass(frozen=True)
class HostConfig:
    """One ``[hosts.NAME]`` table: a server on this or another machine."""

    name: str
    url: str
    kind: str = "ollama"
    budget_mb: float | None = None  # memory the host may fill with our models
    total_mb: float | None = None  # Ollama: its memory, from which what it holds is taken
    api_key: str | None = None
    timeout: float = 600.0  # seconds a generation may take on this host
    slots: int = 0  # concurrent generations (0: Ollama decides; OpenAI servers: 1)
    keep_alive: str | float | None = None  # Ollama: how long it keeps a model after a chat
    # OpenAI servers: ask for each generated token's log-probability (the server
    # must support it: llama_cpp.server only with --logits_all true).
    logprobs: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """One ``[models.NAME]`` table."""

    name: str
    backend: str = "llamacpp"
    host: str | None = None  # the first (or only) host it is served by
    model: str | None = None  # the model's name on its server (Ollama tag, OpenAI id)
    path: Path | None = None
    catalog: str | None = None
    n_ctx: int | None = None
    n_gpu_layers: int | None = None
    n_threads: int | None = None
    chat_format: str | None = None
    parameters: int | None = None
    family: str | None = None
    # Every host that serves it, when several do (``host = ["a", "b"]``):
    # each request goes to one of them (moa_local.machine.replicas).
    replicas: tuple[str, ...] = ()


def _host_names(value: Any) -> list[str]:
    """``host``: one [hosts.NAME], or a list of them for a model several hosts serve."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise Invalid(f"must be a host name or a list of them, got {value!r}")
    if len(set(names)) != len(names):
        raise Invalid(f"names a host twice: {value!r}")
    return names


def _keep_alive(value: Any) -> str | float:
    """Ollama's ``keep_alive``: a duration ("10m") or seconds."""
    if isinstance(value, str):
        return value
    if is_number(value):
        return value if isinstance(value, float) else int(value)
    raise Invalid(f"must be a string, got {value!r}")


def _installed_backends() -> list[str]:
    """Backends installed through the ``moa_local.backends`` entry-point group
    (a third-party package adds one there; moa_local.backends.base loads it)."""
    return [entry.name for entry in entry_points(group="moa_local.backends")]


_MODEL_KEYS: dict[str, Rule] = {
    "backend": string,
    "path": string,
    "catalog": string,
    "n_ctx": integer(128),
    "n_gpu_layers": integer(-1),
    "n_threads": integer(1),
    "chat_format": string,
    "parameters": integer(1),
    "family": string,
    "description": string,
    "host": Rule(_host_names, "a [hosts.NAME] or a list of them"),
    "model": string,
}


def read_models(
    tables: Any, label: str, hosts: Mapping[str, HostConfig] | None = None
) -> dict[str, ModelConfig]:
    """``[models.NAME]`` tables; ``hosts`` are the file's hosts, which models may name."""
    hosts = hosts or {}
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `models` must be a set of [models.NAME] tables")
    models = {}
    for name, table in tables.items():
        where = f"{label}: [models.{name}]"
        values = read_table(table, _MODEL_KEYS, where)
        names = values.get("host") or []
        for host in names:
            if host not in hosts:
                known = ", ".join(hosts) or "none defined"
                raise ConfigError(f"{where} host {host!r} is not a [hosts.NAME] table ({known})")
        host = names[0] if names else None
        backend = values.get("backend", hosts[host].kind if host else "llamacpp")
        for other in names:
            if backend != hosts[other].kind:
                raise ConfigError(
                    f"{where} backend {backend!r} does not match host {other!r} (kind "
                    f"{hosts[other].kind!r})"
                )
        if backend not in BACKENDS and backend not in _installed_backends():
            available = (*BACKENDS, *sorted(set(_installed_backends()) - set(BACKENDS)))
            raise ConfigError(
                f"{where} backend must be one of {', '.join(available)}, got {backend!r}"
            )
        if "path" in values and "catalog" in values:
            raise ConfigError(f"{where} sets both `path` and `catalog`; keep one")
        path = values.get("path")
        if path is not None:
            path = Path(path).expanduser()
            if not path.is_absolute() and label != "the built-in defaults":
                # Relative paths are relative to the file that names them.
                path = Path(label).parent / path
        models[name] = ModelConfig(
            name=name,
            backend=backend,
            path=path,
            catalog=values.get("catalog"),
            n_ctx=values.get("n_ctx"),
            n_gpu_layers=values.get("n_gpu_layers"),
            n_threads=values.get("n_threads"),
            chat_format=values.get("chat_format"),
            parameters=values.get("parameters"),
            family=values.get("family"),
            host=host,
            model=values.get("model"),
            replicas=tuple(names) if len(names) > 1 else (),
        )
        if backend == "openai" and not (host and values.get("model")):
            raise ConfigError(f"{where} an openai model needs `host` and `model`")
        if backend in ("ollama", "openai") and "path" in values:
            raise ConfigError(f"{where} a model served by {backend} has no `path`; remove it")
    return models


_HOST_KEYS: dict[str, Rule] = {
    "url": string,
    "kind": string,
    "budget_mb": number(1.0),
    "total_mb": number(1.0),
    "api_key": string,
    "timeout": number(1.0),
    "slots": integer(0),
    "logprobs": boolean,
    "keep_alive": Rule(_keep_alive, 'a duration such as "10m", or seconds'),
}


def read_hosts(tables: Any, label: str) -> dict[str, HostConfig]:
    """``[hosts.NAME]`` tables: each server's address, kind and limits."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{label}: `hosts` must be a set of [hosts.NAME] tables")
    hosts = {}
    for name, table in tables.items():
        where = f"{label}: [hosts.{name}]"
        values = read_table(table, _HOST_KEYS, where)
        url = values.get("url", "")
        if not url.startswith(("http://", "https://")) or not url.split("://", 1)[1].strip("/"):
            raise ConfigError(f"{where} url must be http://HOST[:PORT] or https://..., got {url!r}")
        kind = values.get("kind", "ollama")
        if kind not in HOST_KINDS:
            raise ConfigError(f"{where} kind must be one of {', '.join(HOST_KINDS)}, got {kind!r}")
        if "total_mb" in values and kind != "ollama":
            raise ConfigError(f"{where} total_mb is for Ollama hosts; use budget_mb")
        if "total_mb" in values and "budget_mb" in values:
            raise ConfigError(f"{where} sets both budget_mb and total_mb; keep one")
        hosts[name] = HostConfig(
            name=name,
            url=url.rstrip("/"),
            kind=kind,
            budget_mb=values.get("budget_mb"),
            total_mb=values.get("total_mb"),
            api_key=values.get("api_key"),
            timeout=values.get("timeout", 600.0),
            slots=values.get("slots", 0),
            keep_alive=values.get("keep_alive"),
            logprobs=values.get("logprobs", False),
        )
    return hosts
