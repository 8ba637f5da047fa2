"""`moa-local serve` as a subprocess on a free loopback port, as a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 60


@dataclass
class Server:
    """A running server: its base URL, process and stderr file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def running_server(config: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``moa-local serve --config CONFIG --port 0 ARGS``; stop it on exit (SIGINT)."""
    log = config.with_suffix(".serve.log")
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moa_local",
                "serve",
                "--config",
                str(config),
                "--port",
                "0",
                "-q",
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env={**os.environ, **(env or {})},
        )
    server = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "listening on http://" in text:
                address = text.split("listening on ", 1)[1].split()[0]
                server = Server(address, process, log)
                break
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}: {text}")
            time.sleep(0.05)
        else:
            raise AssertionError(f"serve did not start: {log.read_text(errors='replace')}")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
