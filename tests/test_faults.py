"""Faults injected for real end in one clear line and lose nothing.

Pulls run in subprocesses (``tests.pull_child``) through the real pip, from
wheels built here: one is killed with SIGKILL mid-pull, two pull the same
model at once, one may not write files past a size limit (RLIMIT_FSIZE, the
way a full disk fails a write). ``moa-local ask`` runs as a subprocess for
SIGTERM, a damaged store, an unwritable trace directory and a 1 MB prompt.
A pytest run of its own leaves a process running: the session-end check in
conftest.py names it, kills it and fails that run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from moa_local.models.store import ModelStore
from moa_local.trace import read_trace
from tests.conftest import REPO_ROOT
from tests.pull_child import chunk, model

CHUNKS = 6


def build_wheels(folder: Path, chunks: int = CHUNKS) -> None:
    """One compressed wheel per chunk of the fault test model."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, chunks + 1):
        module = f"moa_fault_part{n}"
        info = f"{module}-1.0.dist-info"
        with zipfile.ZipFile(
            folder / f"{module}-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED
        ) as z:
            z.writestr(f"{module}/data/part{n:02d}.bin", chunk(n))
            z.writestr(
                f"{info}/METADATA",
                f"Metadata-Version: 2.1\nName: moa-fault-part{n}\nVersion: 1.0\n",
            )
            z.writestr(
                f"{info}/WHEEL",
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
            z.writestr(f"{info}/RECORD", "")


@pytest.fixture
def pull_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a pulling child: the wheelhouse, and a private TMPDIR to inspect."""
    build_wheels(tmp_path / "wheels")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path / "wheels"),
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(REPO_ROOT),
    }


def child(home: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pull_child", str(home), str(CHUNKS), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
    )


def expected_sha() -> str:
    return hashlib.sha256(b"".join(chunk(n) for n in range(1, CHUNKS + 1))).hexdigest()


def test_a_killed_pull_is_cleaned_up_by_the_next_one(
    tmp_path: Path, pull_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    store = ModelStore(home)
    entry = model(CHUNKS)
    process = child(home, pull_env)
    deadline = time.monotonic() + 300  # left as soon as a partial file is written
    partials: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        partials = [p for p in store.directory_for(entry).glob(".*.partial") if p.stat().st_size]
        if partials:
            break
        time.sleep(0.05)
    assert partials, "the pull never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    scratch = Path(pull_env["TMPDIR"])
    temporary = list(scratch.glob("moa-local-pull-fault-model-*"))
    # what issue 10 found: a killed pull leaves a partial file and a temporary folder
    assert temporary and partials[0].exists()
    # A pip child caught being started shares the pull's lock until it dies
    # with it (PR_SET_PDEATHSIG) a moment later; from then on the partial file
    # is a leftover. Left as soon as it is: the bound is for a loaded machine.
    kinds: set[str] = set()
    deadline = time.monotonic() + 60
    while "partial" not in kinds and time.monotonic() < deadline:
        time.sleep(0.05)
        kinds = {item.kind for item in store.leftovers(entry)}
    assert "partial" in kinds

    for name, value in pull_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    found = {item.path for item in store.leftovers()}
    assert set(temporary) <= found  # prune would see them too
    manifest = store.pull(entry)
    assert manifest.sha256 == expected_sha()
    assert not list(store.directory_for(entry).glob(".*.partial"))
    assert not any(path.exists() for path in temporary)
    assert not store.leftovers()


@pytest.mark.parametrize("parent_alive", [True, False])
def test_a_pip_whose_puller_died_while_it_started_dies_too(parent_alive: bool) -> None:
    # The window the SIGKILL above can hit: pip forked, its puller killed
    # before pip asked to die with it. Here, ``parent`` is the pid pip was
    # started by; a different one is the puller that is gone.
    started_by = "os.getppid()" if parent_alive else "os.getppid() + 10**7"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os\nfrom moa_local.models.sources.pip import _die_with_parent\n"
            f"_die_with_parent({started_by})\nprint('still running')",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    if parent_alive:
        assert result.returncode == 0 and result.stdout == "still running\n", result.stderr
    else:
        assert result.returncode == -signal.SIGKILL and result.stdout == ""


def test_two_pulls_of_one_model_end_with_one_verified_file(
    tmp_path: Path, pull_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    store = ModelStore(home)
    entry = model(CHUNKS)
    # The two start together for certain: both find the model's pull lock
    # taken (here, by the test) and wait; released, they race for it.
    store.root.mkdir(parents=True)
    lock = os.open(store.root / f".{entry.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        first, second = child(home, pull_env), child(home, pull_env)
        waiting = [p.stdout.readline() for p in (first, second)]  # type: ignore[union-attr]
    finally:
        os.close(lock)
    outputs = [
        line + p.communicate(timeout=300)[0]
        for line, p in zip(waiting, (first, second), strict=True)
    ]
    assert all(
        line.startswith(f"{entry.name}: waiting for another pull of it") for line in waiting
    ), outputs
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert all(out.strip().endswith(f"ok {expected_sha()}") for out in outputs)
    assert store.is_installed(entry)
    assert sorted(p.name for p in store.directory_for(entry).iterdir()) == [
        "fault-model.gguf",
        "manifest.json",
    ]
    assert not list(Path(pull_env["TMPDIR"]).glob("moa-local-pull-*"))


def test_a_full_disk_mid_pull_is_one_line_and_leaves_nothing(
    tmp_path: Path, pull_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    limit = 2 * len(chunk(2))  # the third chunk no longer fits
    process = child(home, pull_env, str(limit))
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 1, output
    (line,) = output.strip().splitlines()
    assert line.startswith("error: the disk filled up while pulling fault-model")
    assert "it needs 234 KiB" in line and "nothing was left behind" in line
    store = ModelStore(home)
    assert not store.directory_for(model(CHUNKS)).exists()
    assert not list(Path(pull_env["TMPDIR"]).glob("moa-local-pull-*"))


# -- moa-local ask ---------------------------------------------------------------------


def ask(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "moa_local", "ask", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
    )


def test_sigterm_cancels_the_run_writes_its_end_and_exits_143(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    process = ask(
        "Take your time",
        "-m",
        "echo:slow?delay=60",
        "--aggregator",
        "echo:agg",
        "--layers",
        "1",
        "--trace-dir",
        str(traces),
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120  # left as soon as the run is going
    while time.monotonic() < deadline:
        files = list(traces.glob("*.jsonl"))
        if files and any(e["event"] == "layer.start" for e in read_trace(files[0])):
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError(f"the run never started: {process.communicate()}")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1] == "error: terminated by SIGTERM: the run was cancelled"
    (trace,) = traces.glob("*.jsonl")
    last = read_trace(trace)[-1]
    assert last["event"] == "run.error" and last["kind"] == "cancelled"


@pytest.mark.parametrize("damage", ["deleted", "truncated", "corrupt manifest"])
def test_a_damaged_model_says_to_pull_it_again(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "home"
    entry = model(CHUNKS)
    store = ModelStore(home)
    directory = store.directory_for(entry)
    directory.mkdir(parents=True)
    data = b"".join(chunk(n) for n in range(1, CHUNKS + 1))
    store.path_for(entry).write_bytes(data)
    manifest = {
        "name": "smollm2-135m",
        "filename": entry.filename,
        "source": "pypi",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "pulled_at": "2026-12-02T00:00:00Z",
    }
    # the damage is done to a real catalog model's directory
    real = home / "models" / "smollm2-135m"
    real.mkdir(parents=True)
    gguf = real / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(data)
    manifest["filename"] = gguf.name
    (real / "manifest.json").write_text(json.dumps(manifest))
    if damage == "deleted":
        gguf.unlink()
    elif damage == "truncated":
        gguf.write_bytes(data[:1000])
    else:
        (real / "manifest.json").write_text("{not json")
    process = ask(
        "Hi", "-m", "smollm2-135m", "--no-pull", env={"MOA_LOCAL_HOME": str(home)}, cwd=tmp_path
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    (line,) = stderr.strip().splitlines()
    assert line.startswith("error: model 'smollm2-135m' ")
    assert line.endswith("run `moa-local pull smollm2-135m`")
    word = {"deleted": "lost its file", "truncated": "damaged", "corrupt manifest": "unreadable"}
    assert word[damage] in line


def test_an_unwritable_trace_directory_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the trace directory should be")
    process = ask(
        "Hello",
        "-m",
        "echo:a",
        "--aggregator",
        "echo:agg",
        "--layers",
        "1",
        "--trace-dir",
        str(blocker / "traces"),
        cwd=tmp_path,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip().endswith("Hello")
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"cannot write traces to {blocker / 'traces'}" in warnings[0]


def test_a_megabyte_prompt_is_one_clear_context_error(tmp_path: Path) -> None:
    prompt = tmp_path / "huge.txt"
    prompt.write_text("word " * 210_000)  # about 1 MB
    with open(prompt) as stdin:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "moa_local",
                "ask",
                "-",
                "-m",
                "echo:a",
                "--aggregator",
                "echo:agg",
                "--trace-dir",
                str(tmp_path / "traces"),
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: echo:agg: the prompt takes about")
    assert "more than the context" in line and "Traceback" not in result.stderr
    (trace,) = (tmp_path / "traces").glob("*.jsonl")
    events = [e["event"] for e in read_trace(trace)]
    assert "proposal.done" not in events and events[-1] == "run.error"


async def test_an_empty_answer_is_a_failure_not_a_reference() -> None:
    from moa_local import MoA
    from moa_local.backends.echo import EchoBackend

    echo = EchoBackend()
    moa = MoA(
        proposers=["echo:blank?reply=%20%20", "echo:good"],
        aggregator="echo:agg",
        layers=1,
        backends={"echo": echo},
        trace_dir="",
    )
    result = await moa.run("Q")
    blank, good = result.layer_history[0]
    assert blank.error == "empty answer" and good.ok
    assert "refs=1" in result.final_response  # only the good answer reached the aggregator


def test_prune_removes_leftovers_and_models(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    real = home / "models" / "smollm2-135m"
    real.mkdir(parents=True)
    data = b"GGUF" + b"x" * 50_000
    (real / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(data)
    (real / "manifest.json").write_text(
        json.dumps(
            {
                "name": "smollm2-135m",
                "filename": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "source": "pypi",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pulled_at": "2026-12-02T00:00:00Z",
            }
        )
    )
    stale = real / ".SmolLM2-135M-Instruct.Q4_1.gguf.99999999.abc.partial"
    stale.write_bytes(b"y" * 20_000)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = scratch / f"moa-local-pull-smollm2-135m-{dead.pid}-x1"
    orphan.mkdir()
    (orphan / "wheel.whl").write_bytes(b"z" * 30_000)
    env = {**os.environ, "MOA_LOCAL_HOME": str(home), "TMPDIR": str(scratch)}

    def prune(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "moa_local", "prune", *args],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    listed = prune("--dry-run")
    assert listed.returncode == 0 and stale.exists() and orphan.exists()
    assert "would free 49 KiB" in listed.stderr
    done = prune()
    assert done.returncode == 0
    assert not stale.exists() and not orphan.exists()
    assert "freed 49 KiB" in done.stderr and done.stdout.startswith("smollm2-135m")
    removed = prune("--rm", "smollm2-135m")
    assert removed.returncode == 0 and not real.exists()
    assert "removed smollm2-135m (49 KiB)" in removed.stderr
    unknown = prune("--rm", "nope")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown model 'nope'")


# -- the suite itself: no process outlives it -------------------------------------------

ONE_TEST = """\
import subprocess

def test_starts_processes():
    subprocess.Popen(["true"])  # ends at once, never waited for: not running
    sleeper = subprocess.Popen(["sleep", "{seconds}"])
    {end}
"""


@pytest.mark.parametrize(
    ("end", "leaked"),
    [
        pytest.param("", True, id="left-running"),
        pytest.param("sleeper.kill()\n    sleeper.wait()", False, id="stopped"),
    ],
)
def test_a_process_left_running_fails_the_run_and_is_killed(
    tmp_path: Path, end: str, leaked: bool
) -> None:
    from tests.checks.test_sandbox import processes_mentioning, unique_seconds

    seconds = unique_seconds(600)
    suite = tmp_path / "suite"
    suite.mkdir()
    # The session-end check of this suite's conftest, and nothing else of it.
    (suite / "conftest.py").write_text(
        "import tests.conftest\n"
        "from tests.conftest import pytest_sessionfinish, pytest_terminal_summary\n"
        "tests.conftest.LEAK_GRACE_S = 1.0\n"
    )
    (suite / "test_one.py").write_text(ONE_TEST.format(seconds=seconds, end=end))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
            capture_output=True,
            text=True,
            cwd=suite,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        # Killed either way: by the test, or by the check.
        assert processes_mentioning(f"sleep {seconds}") == []
    finally:
        for pid in processes_mentioning(f"sleep {seconds}"):  # not ours to leave behind
            os.kill(pid, signal.SIGKILL)
    if not leaked:
        assert result.returncode == 0, result.stdout
        assert "processes left running" not in result.stdout
        return
    assert result.returncode == 1, result.stdout
    section = result.stdout.split("processes left running", 1)[1].splitlines()
    assert section[1] == "1 process(es) started by the suite outlived it (now killed):"
    assert section[2].startswith("  pid ") and section[2].endswith(f": sleep {seconds}")
    assert result.stdout.strip().splitlines()[-1].startswith("1 passed, 1 leaked process in ")
