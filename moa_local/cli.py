"""The ``moa-local`` command. The only module that prints or exits.

Library errors arrive as :class:`~moa_local.errors.MoALocalError` and leave
as one ``error: ...`` line on stderr with the error's exit code (0 success,
1 the run failed, 2 usage or config error, 130 interrupted).
``MOA_LOCAL_DEBUG=1`` re-raises them with the full traceback instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from . import __version__, catalog
from .backends.base import BackendRegistry
from .config import Config, apply_overrides, load_config, moa_home, preset_overrides
from .errors import ConfigError, MoALocalError, ModelError, Terminated
from .moa import MoA
from .models import resolve_model
from .store import ModelStore, Progress, ProgressFactory, mib, silent_progress


def _debug() -> bool:
    return os.environ.get("MOA_LOCAL_DEBUG", "").lower() in ("1", "true", "yes", "on")


class _Group(click.Group):
    """Turns library errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoALocalError as exc:
            if _debug():
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if _debug():
                raise
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)


def config_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``, passed to the command as ``config_path``."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help=help_text)


budget_option = click.option(
    "--budget-mb", type=float, help="Memory budget per device in MiB (default: computed)."
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moa-local")
def main() -> None:
    """Local-first Mixture-of-Agents: several local models answer, refine, and aggregate."""


class _SummaryLine:
    """Progress for a stderr that is not a terminal: one line when the transfer ends."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.done = 0
        self.started = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        seconds = max(time.monotonic() - self.started, 1e-3)
        rate = self.done / seconds / (1 << 20)
        _err(f"{self.description}: {mib(self.done)} in {seconds:.1f} s ({rate:.1f} MiB/s)")


def _progress_factory(quiet: bool) -> ProgressFactory:
    """One tqdm bar per download on a terminal; one summary line per download elsewhere."""
    if quiet:
        return silent_progress
    if not sys.stderr.isatty():
        return lambda description, total: _SummaryLine(description)

    def factory(description: str, total: int) -> Progress:
        bar: Progress = tqdm(
            total=total,
            desc=description,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )
        return bar

    return factory


class ProgressPrinter:
    """Prints a run's progress on stderr from its trace events."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.layers = 0

    def __call__(self, event: str, record: dict[str, Any]) -> None:
        echo = _err
        if event == "run.start":
            self.layers = record["layers"]
            if self.verbose:
                echo(
                    f"run {record['run_id']}: strategy {record['strategy']}, "
                    f"{record['layers']} layer(s), aggregator {record['aggregator']}"
                )
        elif event == "trace.warning":
            echo(f"warning: {record['message']}")
        elif event == "roles.generated":
            names = ", ".join(role["name"] for role in record["roles"])
            note = (
                "" if record["outcome"] == "ok" else f" ({record['outcome']}: {record['detail']})"
            )
            echo(f"roles by {record['model']}: {names}{note}")
        elif event == "layer.start":
            echo(
                f"layer {record['layer']}/{self.layers}: {len(record['agents'])} proposers working"
            )
        elif event == "proposal.done":
            if record["error"]:
                echo(f"  x {record['agent']}: {record['error']}")
            else:
                speed = record["completion_tokens"] / record["seconds"] if record["seconds"] else 0
                echo(
                    f"  + {record['agent']}: {record['completion_tokens']} tokens, "
                    f"{speed:.1f} tok/s, {record['seconds']:.1f} s"
                )
        elif event == "references.shortened" and self.verbose:
            echo(f"  (references shortened to fit {record['model']}'s context)")
        elif event == "aggregate.start":
            echo(f"aggregating with {record['model']}...")
        elif event == "router.decision" and (self.verbose or record["action"] != "continue"):
            echo(f"router: {record['action']} ({record['reason']})")
        elif event == "verify.tests":
            echo(f"verify: {len(record['tests'])} tests for {record['entry_point']}")
        elif event == "verify.selected":
            echo(f"verify: chose {record['chosen']} ({record['reason']})")
        elif event == "aggregate.window":
            echo(f"aggregating window {record['step']} ({record['references']} answers)...")
        elif event == "final.start":
            echo(f"final agent {record['model']} rewriting...")
        elif event == "model.load" and self.verbose:
            measured = record["measured_mb"]
            echo(
                f"  loaded {record['model']} on {record['device']} in {record['seconds']:.1f} s: "
                f"estimated {record['estimate_mb']} MiB, measured "
                + (f"{measured} MiB" if measured is not None else "n/a")
            )
        elif event == "model.unload" and self.verbose:
            echo(f"  unloaded {record['model']} ({record['reason']})")


def _indices(text: str | None) -> list[int]:
    """``--only 1,2,3`` as integers; a bad one is a usage error."""
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"--only takes problem numbers separated by commas, got {text!r}"
        ) from None


def _warnings_only(event: str, record: dict[str, Any]) -> None:
    """The observer of a quiet run: warnings still reach stderr."""
    if event == "trace.warning":
        _err(f"warning: {record['message']}")


async def _cancelled_by_sigterm(moa: MoA, work: Any) -> Any:
    """Await ``work``; SIGTERM cancels it (the trace ends with run.error), then models are freed.

    Raises :class:`Terminated` (exit 143) when SIGTERM was the cause.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise Terminated("terminated by SIGTERM: the run was cancelled") from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await moa.aclose()


def _with_preset(config_path: str | None, preset: str | None) -> Config | str | None:
    """The config to run: the file (or search order), with a preset's values on top."""
    if preset is None:
        return config_path
    config = load_config(config_path)
    labels = {key: f"[presets.{preset}] {key}" for key in config.presets.get(preset, {})}
    return apply_overrides(config, preset_overrides(config, preset), labels)


def _config_with_budget(config_path: str | None, budget_mb: float | None) -> Config:
    """The configuration, with ``--budget-mb`` on top when given."""
    return load_config(
        config_path, overrides={"budget_mb": budget_mb}, labels={"budget_mb": "--budget-mb"}
    )


def _err(message: str) -> None:
    click.echo(message, err=True)


@main.command()
@click.argument("prompt")
@config_option("models.toml to use (default: search order in the README).")
@click.option(
    "-m",
    "--proposer",
    "proposers",
    multiple=True,
    help="Proposer model (repeatable). Default: [defaults] proposers.",
)
@click.option("--preset", help="A [presets.NAME] of models.toml (flags still win).")
@click.option("--aggregator", help='Aggregator model, or "auto" for the strongest installed.')
@click.option("--layers", type=int, help="Number of proposer layers (>= 1).")
@click.option("--strategy", help="How to fill a layer: model, temperature or role.")
@click.option("-n", "--num-proposers", type=int, help="Proposers per layer.")
@click.option("--role-model", help="Model that writes the roles (strategy role).")
@click.option("--final-agent", help="Model that rewrites the aggregated answer once more.")
@click.option("--temperature", type=float, help="Sampling temperature (0 to 2).")
@click.option("--max-tokens", type=int, help="Most tokens per answer.")
@click.option(
    "--verify/--no-verify",
    default=None,
    help="Code questions: run candidates against tests the models write (runs model code).",
)
@click.option("--router", help="Selective MoA: off, agree (stop when answers agree) or on.")
@click.option("--task", help="auto (detect code questions), code or text.")
@click.option(
    "--aggregate",
    help="synthesize (write a new answer), select (pick the best answer) or auto.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--no-stream", is_flag=True, help="Print the answer at the end, not as it comes.")
@click.option("--trace-dir", help="Directory for the JSONL trace ('' turns traces off).")
@click.option("--no-pull", is_flag=True, help="Fail instead of pulling missing models.")
@budget_option
@click.option("-v", "--verbose", is_flag=True, help="More progress detail on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def ask(
    prompt: str,
    config_path: str | None,
    proposers: tuple[str, ...],
    preset: str | None,
    aggregator: str | None,
    layers: int | None,
    strategy: str | None,
    num_proposers: int | None,
    role_model: str | None,
    final_agent: str | None,
    temperature: float | None,
    max_tokens: int | None,
    verify: bool | None,
    router: str | None,
    task: str | None,
    aggregate: str | None,
    as_json: bool,
    no_stream: bool,
    trace_dir: str | None,
    no_pull: bool,
    budget_mb: float | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Ask PROMPT ('-' reads it from stdin); the answer streams to stdout."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    labels = {
        "proposers": "-m/--proposer",
        "aggregator": "--aggregator",
        "layers": "--layers",
        "strategy": "--strategy",
        "num_proposers": "--num-proposers",
        "role_model": "--role-model",
        "final_agent": "--final-agent",
        "temperature": "--temperature",
        "max_tokens": "--max-tokens",
        "trace_dir": "--trace-dir",
        "budget_mb": "--budget-mb",
        "verify": "--verify",
        "router": "--router",
        "task": "--task",
        "aggregate": "--aggregate",
    }
    observers = [_warnings_only] if quiet else [ProgressPrinter(verbose)]
    moa_kwargs: dict[str, Any] = {}
    if trace_dir is not None:
        moa_kwargs["trace_dir"] = trace_dir
    moa = MoA(
        proposers=list(proposers) or None,
        aggregator=aggregator,
        layers=layers,
        strategy=strategy,
        n=num_proposers,
        role_model=role_model,
        final_agent=final_agent,
        temperature=temperature,
        max_tokens=max_tokens,
        budget_mb=budget_mb,
        config=_with_preset(config_path, preset),
        auto_pull=not no_pull,
        progress=_progress_factory(quiet),
        observers=observers,
        labels=labels,
        verify=verify,
        router=router,
        task=task,
        aggregate=aggregate,
        **moa_kwargs,
    )
    if verbose and not quiet:
        _err(f"config: {moa.config.source_label}")
    moa.prepare()
    stream = not (as_json or no_stream)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = asyncio.run(
        _cancelled_by_sigterm(moa, moa.run(prompt, on_text=write if stream else None))
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif stream:
        click.echo("")
    else:
        click.echo(result.final_response)
    if not quiet:
        usage = result.usage
        _err(
            f"done in {result.seconds:.1f} s, {usage['total_tokens']} tokens"
            + (f"; trace: {result.trace_file}" if result.trace_file else "")
        )


@main.command("eval")
@click.argument("suite_name", metavar="SUITE", type=click.Choice(["humaneval", "ifbench"]))
@click.option(
    "--configs",
    help="Comma-separated: single:MODEL, moa, a [presets.NAME], with +verify/+router/+agree. "
    "Default: each default proposer alone, then moa.",
)
@click.option("--split", default="dev", type=click.Choice(["dev", "all"]), show_default=True)
@click.option("--limit", type=int, help="Only the first N problems of the split.")
@click.option(
    "--only",
    help="Comma-separated problem indices to run again (e.g. 32,68,81); not a split score.",
)
@click.option("--max-tokens", type=int, help="Most tokens per answer (every config alike).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--log-dir", default="logs/eval", show_default=True, help="JSONL logs and charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@config_option("models.toml with the [defaults] and [presets] to evaluate.")
@budget_option
def eval_command(
    suite_name: str,
    configs: str | None,
    split: str,
    limit: int | None,
    only: str | None,
    max_tokens: int | None,
    seed: int,
    log_dir: str,
    as_json: bool,
    config_path: str | None,
    budget_mb: float | None,
) -> None:
    """Score configs on SUITE (humaneval or ifbench); runs model-written code in a sandbox."""
    from .evals import report
    from .evals.runner import evaluate, parse_configs
    from .evals.suites import load_suite

    config = _config_with_budget(config_path, budget_mb)
    if configs is None:
        configs = ",".join([*(f"single:{m}" for m in config.proposers), "moa"])
    chosen = parse_configs(configs, config)
    suite = load_suite(suite_name)

    def bar(label: str, total: int, done: int) -> Any:
        return tqdm(
            total=total,
            initial=done,
            desc=label,
            unit="problem",
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
            disable=None,
        )

    summaries = evaluate(
        suite,
        chosen,
        base_config=config,
        split=split,
        limit=limit,
        only=_indices(only),
        max_tokens=max_tokens,
        seed=seed,
        log_dir=Path(log_dir),
        progress=bar,
        pull_progress=_progress_factory(False),
    )
    chart_path = report.chart(
        summaries,
        Path(log_dir) / f"{suite_name}-{split}.png",
        f"{suite_name} ({split} split{f', first {limit}' if limit else ''})",
    )
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=2))
    else:
        click.echo(report.table(summaries))
    _err(f"log: {Path(log_dir) / (suite_name + '.jsonl')}; chart: {chart_path}")


@main.command()
@click.option(
    "--plans",
    default="default,self-moa,role",
    show_default=True,
    help=(
        "Comma-separated plans: default, self-moa (one model x3, 2 layers), "
        "self-moa-continue (the same in the continue layout), role (x3)."
    ),
)
@click.option(
    "--prompts",
    default="fact,code,long",
    show_default=True,
    help="Comma-separated fixed prompts: fact, code, long.",
)
@click.option("--model", help="Model of the self-moa and role plans (default: the aggregator).")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per plan.")
@config_option("models.toml with the [defaults] of the default plan.")
@budget_option
def bench(
    plans: str,
    prompts: str,
    model: str | None,
    max_tokens: int,
    as_json: bool,
    config_path: str | None,
    budget_mb: float | None,
) -> None:
    """Time each plan naive (every call from scratch) and optimized (reused work), greedy."""
    from .bench import run_bench

    config = _config_with_budget(config_path, budget_mb)
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1, got {max_tokens}")
    results = run_bench(
        config,
        plans=[p.strip() for p in plans.split(",") if p.strip()],
        prompts=[p.strip() for p in prompts.split(",") if p.strip()],
        model=model,
        max_tokens=max_tokens,
        on_progress=_err,
        progress=_progress_factory(False),
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    header = (
        "plan",
        "naive s",
        "optimized s",
        "speedup",
        "lower bound s",
        "prefill tok",
        "(naive)",
        "decode tok",
        "identical",
        "lookup accepted",
    )
    rows = [
        (
            r.plan,
            f"{r.naive_s:.1f}",
            f"{r.optimized_s:.1f}",
            f"{r.speedup:.2f}x",
            f"{r.lower_bound_s:.1f}",
            str(r.prefill_tokens),
            str(r.naive_prefill_tokens),
            str(r.decode_tokens),
            f"{r.identical_outputs:.0%} of {r.generations}",
            "-" if r.acceptance_rate is None else f"{r.acceptance_rate:.0%}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for r in results:
        for difference in r.differences:
            click.echo(f"{r.plan}: {difference}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=11435, show_default=True, help="Port (0: any free one).")
@config_option("models.toml with the [defaults] and [presets] to offer.")
@click.option(
    "--api-key",
    envvar="MOA_LOCAL_API_KEY",
    help="Key every request must send (Bearer); required off loopback. Env: MOA_LOCAL_API_KEY.",
)
@click.option(
    "--max-queue",
    type=int,
    default=16,
    show_default=True,
    help="Requests that may wait for a worker; beyond them: 429 (OpenAI) / 503 (Ollama).",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Runs at once (they share the CPU)."
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allow browser pages from this origin (repeatable). Default: CORS off.",
)
@click.option(
    "--singles/--no-singles",
    default=True,
    show_default=True,
    help="Also offer each installed model alone, by its name, to compare with.",
)
@budget_option
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def serve(
    host: str,
    port: int,
    config_path: str | None,
    api_key: str | None,
    max_queue: int,
    workers: int,
    cors_origins: tuple[str, ...],
    singles: bool,
    budget_mb: float | None,
    quiet: bool,
) -> None:
    """Serve mixtures as models over the OpenAI and Ollama APIs, with a live page at /."""
    from . import serve as server

    if not server.is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} is reachable from other machines: set --api-key "
            "(or MOA_LOCAL_API_KEY) so that only your clients can use it"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    config = _config_with_budget(config_path, budget_mb)
    runtime = server.ServeRuntime(
        config,
        workers=workers,
        max_queue=max_queue,
        singles=singles,
        progress=_progress_factory(quiet),
    )
    # Pull and resolve the default mixture's models now, not in the first request.
    runtime.prepare_default()
    sock = server.bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    _err(
        f"moa-local serve: listening on {url} (page {url}/, OpenAI {url}/v1, Ollama {url}); "
        f"models: {', '.join(o.name for o in runtime.offers)}"
    )
    server.serve(runtime, sock, api_key=api_key, cors_origins=cors_origins)


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
        asyncio.run(backend.pull(spec, _progress_factory(quiet)))  # type: ignore[attr-defined]
        if not quiet:
            _err(f"{name}: pulled {spec.remote_model} on Ollama at {spec.host.url}")  # type: ignore[union-attr]
    # On a terminal: one bar per model, then a line. Elsewhere (a log, CI): one line.
    bars = _progress_factory(quiet or not sys.stderr.isatty())
    for entry in entries:
        if store.is_installed(entry) and not force:
            if not quiet:
                _err(f"{entry.name}: already pulled ({store.path_for(entry)})")
            continue
        started = time.monotonic()
        manifest = store.pull(entry, bars, force=force, on_wait=None if quiet else _err)
        if not quiet:
            seconds = max(time.monotonic() - started, 1e-3)
            rate = manifest.size / seconds / (1 << 20)
            _err(
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
        _err(f"{verb} {item.kind} leftover {item.path} ({mib(item.size)})")
    for entry in doomed:
        size = store.size_on_disk(entry)
        if not dry_run:
            store.remove(entry)
        freed += size
        _err(f"{verb} {entry.name} ({mib(size)})")
    kept = [e for e in catalog.CATALOG.values() if store.is_installed(e) and e not in doomed]
    for entry in kept:
        click.echo(
            f"{entry.name:<22} {mib(store.size_on_disk(entry)):>10}  {store.path_for(entry)}"
        )
    if not kept:
        click.echo("no models pulled")
    _err(f"{'would free' if dry_run else 'freed'} {mib(freed)}")


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
    from .sources.reach import reachable_sources

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


@main.command()
@config_option("models.toml to diagnose (default: search order in the README).")
@budget_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(config_path: str | None, budget_mb: float | None, as_json: bool) -> None:
    """Show devices, memory budgets, backends, model estimates and the plan for [defaults]."""
    from .doctor import diagnose

    config = _config_with_budget(config_path, budget_mb)
    report = diagnose(config, ModelStore(moa_home()))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("devices")
    for device in report["devices"]:
        click.echo(
            f"  {device['name']:<8} {device['total_mb']:>8} MiB total  "
            f"{device['free_mb']:>8} MiB free   {device['description']}"
        )
    cpu = report["cpu"]
    click.echo(
        f"  cpu slots: {cpu['cpu_slots']} concurrent generation(s) sharing "
        f"{cpu['physical_cores']} physical cores"
    )
    click.echo("budgets")
    for name, budget in report["budgets"].items():
        click.echo(f"  {name:<8} {budget['mb']:>8} MiB   ({budget['source']})")
    click.echo("backends")
    for name, backend in report["backends"].items():
        mark = "ok" if backend["usable"] else "--"
        click.echo(f"  {mark} {name:<9} {backend['detail']}")
    click.echo("models")
    click.echo(
        f"  {'NAME':<22} {'BACKEND':<9} {'N_CTX':>6} {'ESTIMATE':>10}  {'FITS':<5} INSTALLED"
    )
    for row in report["models"]:
        if row["error"]:
            click.echo(f"  {row['name']:<22} error: {row['error']}")
            continue
        estimate = f"{row['estimate_mb']} MiB"
        fits = "yes" if row["fits"] else "NO"
        note = f"  ({row['note']})" if row.get("note") else ""
        installed = (
            "remote"
            if row["backend"] in ("ollama", "openai")
            else ("yes" if row["installed"] else "no")
        )
        click.echo(
            f"  {row['name']:<22} {row['backend']:<9} {row['n_ctx']:>6} {estimate:>10}  "
            f"{fits:<5} {installed}{note}"
        )
    if report["hosts"]:
        click.echo("hosts")
    for host in report["hosts"]:
        if host["reachable"]:
            models = ", ".join(host["models"]) or "no models"
            click.echo(f"  ok {host['name']:<10} {host['kind']:<7} {host['url']}: {models}")
        else:
            click.echo(
                f"  -- {host['name']:<10} {host['kind']:<7} {host['url']}: unreachable "
                f"({host.get('error', '')})"
            )
    plan = report["plan"]
    click.echo(f"plan for [defaults]: {plan['layers']} layer(s), aggregator {plan['aggregator']}")
    for number, wave in enumerate(plan["waves"], start=1):
        click.echo(f"  wave {number}: {', '.join(wave)}")
    if len(plan["waves"]) == 1 and not plan["problems"]:
        click.echo("  every proposer model of a layer fits in memory at once")
    elif len(plan["waves"]) > 1:
        click.echo(
            f"  each layer runs in {len(plan['waves'])} waves; models are swapped between them"
        )
    for problem in plan["problems"]:
        click.echo(f"  problem: {problem}")
    click.echo(
        f"  at most {cpu['cpu_slots']} generation(s) at once on the CPU "
        "(models in memory together still take turns on the cores)"
    )


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


if __name__ == "__main__":  # pragma: no cover
    main()
