"""Model references and their resolution into a :class:`ModelSpec`.

A user names a model in one of four ways:

- a name defined under ``[models.NAME]`` in models.toml (which may point at a
  GGUF ``path`` or extend a catalog entry with its own settings);
- a catalog name such as ``qwen2.5-coder-0.5b``;
- ``path:/some/file.gguf``, a GGUF used in place;
- ``echo:NAME[?key=value&...]``, the deterministic echo backend for tests and
  dry runs (see :mod:`moa_local.backends.echo` for its options);
- ``ollama:TAG``, a model of the local Ollama server (``$OLLAMA_HOST``).

A ``[models.NAME]`` table with ``host = "..."`` runs on that ``[hosts.NAME]``
server (Ollama or OpenAI-compatible) under its ``model`` name there.

Resolution never loads a model; it checks what can be checked cheaply (the
name exists, a path is a GGUF with a chat template) so that a bad reference
fails before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from ..errors import ModelError, ModelNotInstalled
from . import catalog
from .gguf_meta import read_metadata

if TYPE_CHECKING:
    from ..config import Config, HostConfig, ModelConfig
    from .store import ModelStore

DEFAULT_N_CTX = 4096


@dataclass(frozen=True)
class ModelSpec:
    """Everything a backend needs to run one model, resolved from a reference."""

    name: str
    backend: str
    path: Path | None = None
    catalog_entry: catalog.CatalogEntry | None = field(default=None, repr=False)
    n_ctx: int = DEFAULT_N_CTX
    n_gpu_layers: int | None = None
    n_threads: int | None = None
    chat_format: str | None = None
    parameters: int | None = None
    quantization: str | None = None
    family: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    host: HostConfig | None = None  # the server a remote model runs on
    # Every server of a model several hosts serve (``host = [...]``); each
    # request runs on one of them (moa_local.machine.replicas), named by ``host``.
    replicas: tuple[HostConfig, ...] = ()
    remote_model: str | None = None  # its name there (Ollama tag, OpenAI model id)

    @property
    def strength(self) -> tuple[int, int]:
        """Sort key for ``aggregator = "auto"``: parameter count, then quantization quality."""
        return (self.parameters or 0, catalog.quant_quality(self.quantization))

    @property
    def resource_key(self) -> tuple[object, ...]:
        """What identifies the loaded model, whatever name it was called by."""
        if self.backend == "echo":
            return ("echo", self.name)
        return (
            self.backend,
            str(self.path) if self.path else None,
            self.host.url if self.host else None,
            self.remote_model,
            self.n_ctx,
            self.n_gpu_layers,
            self.n_threads,
            self.chat_format,
        )

    @property
    def label(self) -> str:
        """Short name for progress lines and traces (with the host, for remote models)."""
        return f"{self.name}@{self.host.name}" if self.host else self.name


def parse_echo_reference(reference: str) -> tuple[str, dict[str, str]]:
    """Split ``echo:NAME?k=v&k2=v2`` into ``("NAME", {"k": "v", ...})``."""
    body = reference.removeprefix("echo:")
    name, _, query = body.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    return name or "echo", options


def resolve_model(
    reference: str,
    config: Config,
    store: ModelStore,
    *,
    require_installed: bool = True,
) -> ModelSpec:
    """Turn a model reference into a :class:`ModelSpec`, or raise :class:`ModelError`.

    With ``require_installed`` a catalog model that is not pulled yet raises
    :class:`ModelNotInstalled`; without it the spec points at where the file
    will be once pulled.
    """
    reference = reference.strip()
    if not reference:
        raise ModelError("empty model name")
    if reference.startswith("echo:"):
        return _echo_spec(reference)
    if reference.startswith("ollama:"):
        tag = reference.removeprefix("ollama:").strip()
        if not tag:
            raise ModelError(f"{reference!r}: give an Ollama tag, e.g. ollama:qwen2.5-coder:0.5b")
        return ModelSpec(
            name=reference,
            backend="ollama",
            host=default_ollama_host(),
            remote_model=tag,
            n_ctx=DEFAULT_N_CTX,
        )
    if reference.startswith("path:"):
        return _path_spec(reference, Path(reference.removeprefix("path:")), None)
    model_config = config.models.get(reference)
    if model_config is not None:
        return _configured_spec(reference, model_config, config, store, require_installed)
    entry = catalog.lookup(reference)
    if entry is not None:
        return _catalog_spec(reference, entry, None, store, require_installed)
    known = sorted({*config.models, *catalog.CATALOG})
    raise ModelError(
        f"unknown model {reference!r}: not defined in models.toml and not in the catalog "
        f"(known: {', '.join(known)}; or use path:/file.gguf)"
    )


_ECHO_OPTIONS = {
    "delay": float,
    "word_delay": float,
    "fail": str,
    "fail_after": int,
    "reply": str,
    "n_ctx": int,
    "params": float,
    "size_mb": float,
    "device": str,
    "slot": str,
    "estimate_delay": float,
    "unload_delay": float,
    "unload_fail": str,
    "logprob": float,
    "recall": int,
}


def _echo_spec(reference: str) -> ModelSpec:
    _, options = parse_echo_reference(reference)
    for key, value in options.items():
        kind = _ECHO_OPTIONS.get(key)
        if kind is None:
            raise ModelError(
                f"unknown echo option {key!r} in {reference!r} (known: {', '.join(_ECHO_OPTIONS)})"
            )
        try:
            kind(value)
        except ValueError:
            raise ModelError(
                f"echo option {key}={value!r} in {reference!r} is not a valid {kind.__name__}"
            ) from None
    parameters = options.get("params")
    n_ctx = int(options.get("n_ctx", DEFAULT_N_CTX))
    params = int(float(parameters)) if parameters else None
    return ModelSpec(
        name=reference,
        backend="echo",
        n_ctx=n_ctx,
        parameters=params,
        family="echo",
        options=options,
    )


def _path_spec(name: str, path: Path, model_config: ModelConfig | None) -> ModelSpec:
    path = path.expanduser()
    metadata = read_metadata(path)
    chat_format = model_config.chat_format if model_config else None
    if metadata.chat_template is None and chat_format is None:
        raise ModelError(
            f"model {name!r} ({path}) has no chat template; it completes raw text only. "
            f'Set chat_format (e.g. "chatml") for it under [models.{_table_name(name)}] '
            "in models.toml to use it in a MoA"
        )
    n_ctx = model_config.n_ctx if model_config and model_config.n_ctx else DEFAULT_N_CTX
    trained = metadata.context_length
    if trained:
        n_ctx = min(n_ctx, trained)
    quant = metadata.values.get("general.file_type")
    return ModelSpec(
        name=name,
        backend="llamacpp",
        path=path.resolve(),
        n_ctx=n_ctx,
        n_gpu_layers=model_config.n_gpu_layers if model_config else None,
        n_threads=model_config.n_threads if model_config else None,
        chat_format=chat_format,
        parameters=(model_config.parameters if model_config else None) or metadata.parameter_count,
        quantization=_file_type_name(quant),
        family=(model_config.family if model_config else None) or metadata.architecture,
    )


def _configured_spec(
    name: str,
    model_config: ModelConfig,
    config: Config,
    store: ModelStore,
    require_installed: bool,
) -> ModelSpec:
    if model_config.backend == "echo":
        return _echo_spec(f"echo:{name}")
    if model_config.backend in ("ollama", "openai"):
        return _remote_spec(name, model_config, config)
    if model_config.backend != "llamacpp":  # a backend from the moa_local.backends entry points
        return _plugin_spec(name, model_config)
    if model_config.path is not None:
        return _path_spec(name, model_config.path, model_config)
    entry = catalog.lookup(model_config.catalog or name)
    if entry is None:
        raise ModelError(
            f"[models.{_table_name(name)}] in {config.source_label}: set `path` to a GGUF "
            f"file or `catalog` to a catalog model (catalog: {', '.join(catalog.CATALOG)})"
        )
    return _catalog_spec(name, entry, model_config, store, require_installed)


def _catalog_spec(
    name: str,
    entry: catalog.CatalogEntry,
    model_config: ModelConfig | None,
    store: ModelStore,
    require_installed: bool,
) -> ModelSpec:
    chat_format = model_config.chat_format if model_config else None
    if not entry.chat and chat_format is None:
        raise ModelError(
            f"model {name!r} is a base model without a chat template; it completes raw text "
            f"only. Set chat_format under [models.{_table_name(name)}] in models.toml to use it"
        )
    path = store.path_for(entry)
    if require_installed and not store.is_installed(entry):
        raise ModelNotInstalled(
            f"model {name!r} {store.problem(entry)}; run `moa-local pull {entry.name}`"
        )
    n_ctx = model_config.n_ctx if model_config and model_config.n_ctx else DEFAULT_N_CTX
    return ModelSpec(
        name=name,
        backend="llamacpp",
        path=path,
        catalog_entry=entry,
        n_ctx=min(n_ctx, entry.context_length),
        n_gpu_layers=model_config.n_gpu_layers if model_config else None,
        n_threads=model_config.n_threads if model_config else None,
        chat_format=chat_format,
        parameters=entry.parameters,
        quantization=entry.quantization,
        family=entry.family,
    )


def _plugin_spec(name: str, model_config: ModelConfig) -> ModelSpec:
    """A model of a third-party backend: its table's settings, handed over unread."""
    return ModelSpec(
        name=name,
        backend=model_config.backend,
        path=model_config.path,
        n_ctx=model_config.n_ctx or DEFAULT_N_CTX,
        n_gpu_layers=model_config.n_gpu_layers,
        n_threads=model_config.n_threads,
        chat_format=model_config.chat_format,
        parameters=model_config.parameters,
        family=model_config.family,
        remote_model=model_config.model,
    )


def default_ollama_host() -> HostConfig:
    """The Ollama server of ``$OLLAMA_HOST``, else the client's default."""
    from ..config import HostConfig

    raw = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1:11434"
    url = raw if raw.startswith(("http://", "https://")) else f"http://{raw}"
    host_part = url.split("://", 1)[1]
    if ":" not in host_part.rsplit("]", 1)[-1]:
        url = f"{url}:11434"
    url = url.replace("://0.0.0.0", "://127.0.0.1")
    return HostConfig(name="ollama", url=url.rstrip("/"), kind="ollama")


def _remote_spec(name: str, model_config: ModelConfig, config: Config) -> ModelSpec:
    host = config.hosts[model_config.host] if model_config.host else default_ollama_host()
    entry = catalog.lookup(model_config.catalog or name)
    remote = model_config.model or (entry.ollama_tag if entry else None) or name
    return ModelSpec(
        name=name,
        backend=model_config.backend,
        n_ctx=model_config.n_ctx or DEFAULT_N_CTX,
        parameters=model_config.parameters or (entry.parameters if entry else None),
        quantization=entry.quantization if entry else None,
        family=model_config.family or (entry.family if entry else None),
        host=host,
        remote_model=remote,
        replicas=tuple(config.hosts[h] for h in model_config.replicas),
    )


def _table_name(name: str) -> str:
    return f'"{name}"' if "." in name or ":" in name or "/" in name else name


# llama.cpp's LLAMA_FTYPE values for the common file types.
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    30: "IQ4_XS",
    32: "BF16",
}


def _file_type_name(value: object) -> str | None:
    if isinstance(value, int):
        return _FILE_TYPES.get(value)
    return None
