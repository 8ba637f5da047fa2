"""The model commands: ``pull`` (catalog models into the store, Ollama models
on their host), ``prune`` (leftovers of interrupted pulls, ``--rm`` a model)
and ``models`` (the catalog and configured models, installed or not).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..backends.base import BackendRegistry
from ..backends.capabilities import PullsModels
from ..config import Config, load_config, moa_home
from ..errors import ModelError
from ..models import catalog
from ..models.references import resolve_model
from ..models.store import ModelStore, mib
from .common import config_option, err
from .group import main
from .progress import progress_factory


@main.command()
@click.argument("names", nargs=-1, required=True)
@config_option("models.toml whose [models] may name catalog models.")
@click.option("--force", is_flag=True, help="Download again even if already pulled.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def pull(names: tuple[str, ...], config_path: str | None, force: bool, quiet: bool) -> None:
    """Download catalog models (sha256-verified) into the store, or Ollama models on their host."""
    config = load_config(config_path)
    store = ModelStore(moa_home())
    remote = [name for name in names if _is_ollama(name, config)]
    entries = [_catalog_entry(name, config) for name in names if name not in remote]
    for name in remote:
        spec = resolve_model(name, config, store)
        backend = BackendRegistry().for_model(spec)
        if not isinstance(backend, PullsModels) or spec.host is None:
            raise ModelError(f"{name}: the {backend.name} backend cannot pull models")
        asyncio.run(backend.pull(spec, progress_factory(quiet)))
        if not quiet:
            err(f"{name}: pulled {spec.remote_model} on Ollama at {spec.host.url}")
    # On a terminal: one bar per model, then a line. Elsewhere (a log, CI): one line.
    bars = progress_factory(quiet or not sys.stderr.isatty())
    for entry in entries:
        if store.is_installed(entry) and not force:
            if not quiet:
                err(f"{entry.name}: already pulled ({store.path_for(entry)})")
            continue
        started = time.monotonic()
        manifest = store.pull(entry, bars, force=force, on_wait=None if quiet else err)
        if not quiet:
            seconds = max(time.monotonic() - started, 1e-3)
            rate = manifest.size / seconds / (1 << 20)
            err(
                f"{entry.name}: {mib(manifest.size)} from {manifest.source} in {seconds:.1f} s "
                f"({rate:.1f} MiB/s), sha256 verified ({store.path_for(entry)})"
            )


@main.command()
@click.option(
    "--rm", "remove", multiple=True, metavar="NAME", help="Also delete this model (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def prune(remove: tuple[str, ...], dry_run: bool) -> None:
    """Remove what interrupted pulls left behind; list models; --rm deletes one."""
    store = ModelStore(moa_home())
    doomed = []
    for name in remove:
        entry = catalog.lookup(name)
        if entry is None:
            raise ModelError(f"unknown model {name!r}; see moa-local models")
        if not store.directory_for(entry).exists():
            raise ModelError(f"{name} is not pulled; nothing to remove")
        doomed.append(entry)
    leftovers = store.leftovers()
    freed = 0
    verb = "would remove" if dry_run else "removed"
    for item in leftovers:
        if not dry_run:
            store.remove_leftover(item)
        freed += item.size
        err(f"{verb} {item.kind} leftover {item.path} ({mib(item.size)})")
    for entry in doomed:
        size = store.size_on_disk(entry)
        if not dry_run:
            store.remove(entry)
        freed += size
        err(f"{verb} {entry.name} ({mib(size)})")
    kept = [e for e in catalog.CATALOG.values() if store.is_installed(e) and e not in doomed]
    for entry in kept:
        click.echo(
            f"{entry.name:<22} {mib(store.size_on_disk(entry)):>10}  {store.path_for(entry)}"
        )
    if not kept:
        click.echo("no models pulled")
    err(f"{'would free' if dry_run else 'freed'} {mib(freed)}")


def _is_ollama(name: str, config: Config) -> bool:
    model_config = config.models.get(name)
    return name.startswith("ollama:") or (
        model_config is not None and model_config.backend == "ollama"
    )


def _catalog_entry(name: str, config: Config) -> catalog.CatalogEntry:
    model_config = config.models.get(name)
    if model_config is not None and model_config.backend == "openai":
        raise ModelError(
            f"{name!r} is served by host {model_config.host!r} (an OpenAI-compatible server); "
            "load it there, moa-local cannot pull it"
        )
    if model_config is not None and model_config.path is not None:
        raise ModelError(f"{name!r} is a local file ({model_config.path}); nothing to pull")
    entry = catalog.lookup(model_config.catalog or name if model_config else name)
    if entry is None:
        raise ModelError(
            f"unknown model {name!r}: not in the catalog ({', '.join(catalog.CATALOG)})"
        )
    return entry


@main.command()
@config_option("models.toml whose [models] are listed too.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--no-check", is_flag=True, help="Do not probe the sources (pip's index, the hub).")
def models(config_path: str | None, as_json: bool, no_check: bool) -> None:
    """List catalog and configured models, whether each is installed, and reachable sources."""
    from ..models.sources.reach import reachable_sources  # httpx, only for this command

    config = load_config(config_path)
    store = ModelStore(moa_home())
    entries = list(catalog.CATALOG.values())
    reach = {} if no_check else reachable_sources(entries)
    rows = [_catalog_row(entry, store) for entry in entries]
    for row in rows:
        kinds = reach.get(row["name"])
        row["reachable"] = "not checked" if kinds is None else ", ".join(kinds) or "no"
    for name, model_config in config.models.items():
        if name in catalog.CATALOG and model_config.path is None:
            continue
        rows.append(_configured_row(name, config, store))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ["name", "family", "params", "quant", "size", "installed", "reachable", "source"]
    table = [[str(row[key]) for key in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row_cells in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)).rstrip())


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _human_params(count: int | None) -> str:
    if not count:
        return "?"
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


def _catalog_row(entry: catalog.CatalogEntry, store: ModelStore) -> dict[str, Any]:
    return {
        "name": entry.name,
        "family": entry.family,
        "params": entry.size_label,
        "quant": entry.quantization,
        "size": _human_bytes(entry.size),
        "installed": "yes" if store.is_installed(entry) else "no",
        "source": "catalog" + ("" if entry.chat else " (base, no chat)"),
    }


def _configured_row(name: str, config: Config, store: ModelStore) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "family": "?",
        "params": "?",
        "quant": "?",
        "size": "?",
        "installed": "no",
        "reachable": "-",
        "source": "models.toml",
    }
    try:
        spec = resolve_model(name, config, store, require_installed=False)
    except ModelError as exc:
        row["installed"] = f"error: {exc}"[:60]
        return row
    row.update(
        family=spec.family or "?",
        params=_human_params(spec.parameters),
        quant=spec.quantization or "?",
    )
    if spec.path is not None and spec.path.exists():
        row.update(size=_human_bytes(spec.path.stat().st_size), installed="yes")
        if spec.catalog_entry is None:
            row["source"] = f"path {Path(spec.path).name}"
    elif spec.backend == "echo":
        row.update(installed="yes", source="echo")
    return row
