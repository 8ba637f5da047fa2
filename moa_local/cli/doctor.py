"""``moa-local doctor``: :func:`moa_local.doctor.diagnose` printed as text or JSON."""

from __future__ import annotations

import json

import click

from ..config import moa_home
from ..doctor import check_sources, diagnose
from ..models.store import ModelStore
from .common import budget_option, config_option, config_with_budget
from .group import main


@main.command()
@config_option("models.toml to diagnose (default: search order in the README).")
@budget_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--sources",
    is_flag=True,
    help="Only ask the package index pip uses whether every catalog model's wheels and every "
    "suite's data package are still listed at their pinned versions (exit 1: something is "
    "gone, 3: some index could not be asked; a package known to be withdrawn, bigbench, is "
    "reported and does not fail the check).",
)
def doctor(config_path: str | None, budget_mb: float | None, as_json: bool, sources: bool) -> None:
    """Show devices, budgets, backends, model estimates, the plan and the code sandbox."""
    if sources:
        _sources(as_json)
        return
    config = config_with_budget(config_path, budget_mb)
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
    reachable = {host["name"] for host in report["hosts"] if host["reachable"]}
    for model, hosts in report["replicated"].items():
        states = ", ".join(f"{h} {'up' if h in reachable else 'down'}" for h in hosts)
        click.echo(f"  {model}: one model on {len(hosts)} hosts ({states}); least loaded first")
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
    sandbox = report["sandbox"]
    mark = "ok" if sandbox["isolation"] == "bwrap" else "--"
    click.echo(f"sandbox for model-written code\n  {mark} {sandbox['detail']}")
    verify = report["verify"]
    setting = verify["setting"] if isinstance(verify["setting"], str) else str(verify["setting"])
    click.echo(f"  verify = {setting.lower()}: {verify['effect']}")
    if "form" in verify:
        click.echo(f"  check_form = {verify['check_form']}: {verify['form']}")


def _sources(as_json: bool) -> None:
    """``doctor --sources``: one line per pinned distribution; the exit code says the worst."""
    report = check_sources()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"sources, as pip looks for them: {report['pip']}")
        width = max(len(row["requirement"]) for row in report["sources"])
        for row in report["sources"]:
            mark = {"listed": "ok", "gone": "--", "withdrawn": "- "}.get(row["state"], "??")
            users = ", ".join(row["used_by"])
            click.echo(f"  {mark} {row['requirement']:<{width}}  {row['summary']}  [{users}]")
    if report["exit_code"]:
        raise SystemExit(report["exit_code"])
