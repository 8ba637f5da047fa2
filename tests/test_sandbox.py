"""The sandbox for model-written code: each misbehaviour ends as a scored status."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from moa_local.sandbox import SandboxLimits, run_program, run_program_async


def test_passing_failing_and_erroring_programs() -> None:
    assert run_program("assert sum([1, 2]) == 3").status == "passed"
    failed = run_program("assert 1 + 1 == 3, 'math'")
    assert failed.status == "failed" and failed.detail == "AssertionError: math"
    error = run_program("def f():\n    return 1 / 0\nf()")
    assert error.status == "error" and error.detail == "ZeroDivisionError: division by zero"
    syntax = run_program("def f(:\n")
    assert syntax.status == "error" and "SyntaxError" in syntax.detail


def test_endless_loop_times_out_on_the_wall_clock() -> None:
    started = time.monotonic()
    result = run_program("while True:\n    pass", SandboxLimits(timeout=2, cpu_seconds=30))
    assert result.status == "timeout" and "timed out" in result.detail
    assert time.monotonic() - started < 6


def test_busy_loop_is_stopped_by_the_cpu_limit() -> None:
    result = run_program("while True:\n    pass", SandboxLimits(timeout=30, cpu_seconds=1))
    assert result.status == "timeout" and result.seconds < 10


def test_allocating_far_more_than_allowed_is_an_error() -> None:
    result = run_program("block = bytearray(2 * 1024**3)", SandboxLimits(memory_mb=256))
    assert result.status == "error" and "MemoryError" in result.detail


def test_forking_is_refused_and_no_child_survives() -> None:
    for program in (
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nsubprocess.Popen(['sleep', '100'])",
        "import multiprocessing",
    ):
        result = run_program(program)
        assert result.status == "error", program
    # A fork the guard cannot see (through libc) is killed with the process group.
    program = (
        "import ctypes, os\n"
        "pid = ctypes.CDLL(None).fork()\n"
        "print(os.getpid(), flush=True)\n"
        "while True:\n    pass\n"
    )
    result = run_program(program, SandboxLimits(timeout=2, cpu_seconds=30))
    assert result.status == "timeout"
    pids = [int(line) for line in result.stdout.split()]
    assert len(pids) == 2
    time.sleep(0.2)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_reading_stdin_ends_at_once() -> None:
    started = time.monotonic()
    result = run_program("name = input('name? ')")
    assert result.status == "error" and "EOFError" in result.detail
    assert time.monotonic() - started < 5


def test_writing_or_deleting_outside_its_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "keep.txt"
    victim.write_text("precious")
    attempts = [
        f"open({str(outside / 'new.txt')!r}, 'w').write('x')",
        f"import os\nos.remove({str(victim)!r})",
        f"import shutil\nshutil.rmtree({str(outside)!r})",
        f"import os\nfd = os.open({str(outside / 'fd.txt')!r}, os.O_CREAT | os.O_WRONLY)",
        f"import pathlib\npathlib.Path({str(outside / 'p.txt')!r}).write_text('x')",
    ]
    for program in attempts:
        result = run_program(program)
        assert result.status == "error" and "sandbox" in result.detail, program
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert victim.read_text() == "precious"


def test_its_own_directory_is_writable_and_removed_afterwards() -> None:
    result = run_program(
        "import os\nopen('notes.txt', 'w').write('hi')\nprint(os.getcwd())\n"
        "print(open('notes.txt').read())"
    )
    assert result.status == "passed"
    workdir, content = result.stdout.split()
    assert content == "hi" and not Path(workdir).exists()


def test_environment_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_SECRET_TOKEN", "hunter2")
    result = run_program("import os\nprint(sorted(os.environ))")
    assert "MOA_SECRET_TOKEN" not in result.stdout
    assert "hunter2" not in result.stdout


def test_huge_output_is_truncated() -> None:
    result = run_program("print('x' * 10_000_000)")
    assert len(result.stdout) <= 8 * 1024


async def test_async_runs_concurrently() -> None:
    result = await run_program_async("print(6 * 7)")
    assert result.passed and result.stdout.strip() == "42"
