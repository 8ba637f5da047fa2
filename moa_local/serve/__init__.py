"""``moa-local serve``: mixtures as models behind the OpenAI and Ollama APIs, with a web page.

:func:`serve` binds the socket itself (so a port in use is one clear error,
and port 0 picks a free one), then runs uvicorn on it until interrupted.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import ConfigError, ServeError
from .app import create_app
from .runtime import ServeRuntime

__all__ = ["ServeRuntime", "bind", "create_app", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; :class:`ServeError` with the reason if not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; choose another with --port" if exc.errno == 98 else ""
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    runtime: ServeRuntime,
    sock: socket.socket,
    *,
    api_key: str | None = None,
    cors_origins: tuple[str, ...] = (),
) -> None:
    """Serve ``runtime`` on ``sock`` until SIGINT/SIGTERM; models are unloaded on the way out."""
    import uvicorn

    app = create_app(runtime, api_key=api_key, cors_origins=cors_origins)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
