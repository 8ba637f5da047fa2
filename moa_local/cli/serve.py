"""``moa-local serve``: mixtures as models over the OpenAI and Ollama APIs.

The command checks the address (an API key is required off loopback),
prepares the default mixture's models before it listens, and hands the
socket to :func:`moa_local.serve.serve`. The server (Starlette, uvicorn) is
imported when the command runs, so that other commands start without it.
"""

from __future__ import annotations

import click

from ..errors import ConfigError
from .common import budget_option, config_option, config_with_budget, err
from .group import main
from .progress import progress_factory


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
    from .. import serve as server

    if not server.is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} is reachable from other machines: set --api-key "
            "(or MOA_LOCAL_API_KEY) so that only your clients can use it"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    config = config_with_budget(config_path, budget_mb)
    runtime = server.ServeRuntime(
        config,
        workers=workers,
        max_queue=max_queue,
        singles=singles,
        progress=progress_factory(quiet),
    )
    # Pull and resolve the default mixture's models now, not in the first request.
    runtime.prepare_default()
    sock = server.bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    err(
        f"moa-local serve: listening on {url} (page {url}/, OpenAI {url}/v1, Ollama {url}); "
        f"models: {', '.join(o.name for o in runtime.offers)}"
    )
    server.serve(runtime, sock, api_key=api_key, cors_origins=cors_origins)
