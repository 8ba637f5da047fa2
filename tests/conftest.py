"""Shared fixtures: every test gets its own MOA_LOCAL_HOME and working directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from moa_local.backends.echo import EchoBackend
from moa_local.config import override_defaults
from tests.tiny_gguf import write_tiny_gguf

REPO_ROOT = Path(__file__).resolve().parent.parent

# The keys issue #2 documents for a result (Python dict access and --json).
RESULT_KEYS = (
    "final_response",
    "truncated",
    "layer_history",
    "aggregator",
    "models_used",
    "num_proposals",
    "layers",
    "usage",
    "seconds",
    "trace_file",
    # Which candidate the answer is (None for new text) and which it was chosen among.
    "chosen",
    "candidates",
    # What the check of the question's stated form found in each answer it checked.
    "checks",
)


# The mixture shape the engine, CLI and backend tests exercise: two layers of
# one proposer per model, aggregated at the run's temperature, no router, no
# verification (test_verify_default.py covers it). The
# shipped defaults (Self-MoA, chosen by `moa-local eval`) are tested on their
# own in test_config.py (marker `shipped_defaults`), so changing them from the
# evidence does not silently change what every other test covers.
ENGINE_TEST_SHAPE = {
    "proposers": ["qwen2.5-coder-0.5b", "smollm2-135m"],
    "aggregator": "auto",
    "layers": 2,
    "strategy": "model",
    "num_proposers": 0,
    "temperature_range": [0.3, 1.0],
    "aggregator_temperature": -1.0,
    "router": "off",
    "layout": "references",
    "aggregate": "synthesize",
    "verify": False,
    "max_samples": 0,
}


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """A private home and cwd, no MOA_LOCAL_* settings from the outside, the test shape.

    The shape is given with ``override_defaults``, which changes no module
    state: configurations made in this test (in this process) start from it.
    """
    for name in list(os.environ):
        if name.startswith("MOA_LOCAL_"):
            monkeypatch.delenv(name)
    shipped = request.node.get_closest_marker("shipped_defaults") is not None
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("MOA_LOCAL_HOME", str(home))
    monkeypatch.chdir(work)
    with override_defaults({} if shipped else ENGINE_TEST_SHAPE):
        yield work


@pytest.fixture
def echo() -> EchoBackend:
    """A fresh echo backend whose stats a test can read."""
    return EchoBackend()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight llama GGUF with a ChatML template (a few hundred KB)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", context_length=4096)


@pytest.fixture(scope="session")
def templateless_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model without a chat template."""
    return write_tiny_gguf(
        tmp_path_factory.mktemp("gguf") / "no-template.gguf",
        chat_template=None,
        context_length=4096,
    )


# -- no process outlives the suite ------------------------------------------------------

# How long a process the suite started may take to finish exiting once the last
# test is over (a server killed in a teardown, a sandboxed program's group).
LEAK_GRACE_S = 10.0
# What pytest_sessionfinish found, for the terminal summary.
_LEAKED = pytest.StashKey[list[str]]()


def _still_running(processes: list[psutil.Process], within: float) -> list[psutil.Process]:
    """Those of ``processes`` still alive (zombies do not count) after up to ``within`` s."""
    _, alive = psutil.wait_procs(processes, timeout=within)
    running = []
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def _describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline()) or process.name()}"
    except psutil.Error:
        return f"pid {process.pid}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the suite started is still running at its end.

    Servers, sandboxed programs and commands under test are children of this
    pytest process; each test or fixture that starts one must stop it. One
    still here was leaked: it is named, killed, and the run fails.
    """
    leaked = _still_running(psutil.Process().children(recursive=True), LEAK_GRACE_S)
    if not leaked:
        return
    described = [_describe(process) for process in leaked]
    for process in leaked:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(leaked, timeout=LEAK_GRACE_S)
    session.config.stash[_LEAKED] = described
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the processes pytest_sessionfinish found still running (and killed)."""
    leaked = terminalreporter.config.stash.get(_LEAKED, [])
    if not leaked:
        return
    terminalreporter.section("processes left running", sep="=", red=True, bold=True)
    terminalreporter.write_line(
        f"{len(leaked)} process(es) started by the suite outlived it (now killed):", red=True
    )
    for line in leaked:
        terminalreporter.write_line(f"  {line}")
    terminalreporter.stats.setdefault("leaked process", []).extend(leaked)
