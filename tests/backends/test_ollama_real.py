"""Against a real Ollama, when an ``ollama`` binary is on PATH (skipped otherwise).

Starts ``ollama serve`` on a free loopback port unless OLLAMA_HOST already
answers, pulls smollm2:135m through moa-local, and runs a small MoA on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from moa_local import MoA
from tests.servers import free_port

pytestmark = pytest.mark.skipif(
    shutil.which("ollama") is None,
    reason="no `ollama` binary on PATH; the Ollama protocol is covered by test_ollama_backend.py",
)


@pytest.fixture(scope="module")
def ollama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "OLLAMA_HOST": url.removeprefix("http://"),
        "OLLAMA_MODELS": str(tmp_path_factory.mktemp("ollama-models")),
    }
    process = subprocess.Popen(
        ["ollama", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_pull_and_ask_on_a_real_ollama(ollama_url: str) -> None:
    Path("models.toml").write_text(
        f'[hosts.local]\nurl = "{ollama_url}"\nkind = "ollama"\n\n'
        '[models.smol]\nhost = "local"\nmodel = "smollm2:135m"\n'
    )
    moa = MoA(
        proposers=["smol"],
        strategy="temperature",
        n=2,
        aggregator="smol",
        layers=1,
        max_tokens=24,
        auto_pull=True,
    )
    result = moa.run_sync("What is the capital of France?")
    assert all(p.ok for p in result.layer_history[0])
    assert result.final_response
