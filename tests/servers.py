"""Start real llama-cpp-python OpenAI-compatible servers for tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Every server started in this process, in order; see stopping_servers().
_STARTED: list[LlamaServer] = []


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` serving one GGUF on a loopback port."""

    def __init__(self, model: Path, log: Path, *options: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--model_alias",
                "tiny",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "4096",
                *options,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _STARTED.append(self)

    def wait_ready(self, timeout: float = 90) -> LlamaServer:
        """Block until the server answers /v1/models."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"llama_cpp.server on {self.url} did not start in {timeout} s")

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait for it; again: nothing."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


@contextmanager
def stopping_servers() -> Iterator[None]:
    """Stop, on leaving, every server started inside the block, wherever the test put it.

    A fixture wraps its setup, yield and teardown in it: a server the test
    started itself (a host restarted on its port, kept in a list or a local)
    is stopped with the fixture's own.
    """
    before = len(_STARTED)
    try:
        yield
    finally:
        for server in _STARTED[before:]:
            server.stop()
