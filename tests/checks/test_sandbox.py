"""The sandbox for model-written code: every misbehaviour ends as a scored status, quickly.

Most tests run twice, once per isolation (``guard``: limits and the guard
alone; ``bwrap``: the same under bubblewrap, skipped where bubblewrap does not
work); what only bubblewrap contains is in test_sandbox_isolation.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from moa_local.checks import sandbox
from moa_local.checks.isolation import SANDBOX_DIR, probe_bubblewrap
from moa_local.checks.sandbox import SandboxLimits, SandboxResult, run_program, run_program_async

BUBBLEWRAP = probe_bubblewrap()
needs_bubblewrap = pytest.mark.skipif(
    not BUBBLEWRAP.usable,
    reason=f"bubblewrap is not usable: {BUBBLEWRAP.reason} (apt-get install bubblewrap)",
)
# The same test under each isolation: parametrize a test's ``isolation`` argument.
each_isolation = pytest.mark.parametrize(
    "isolation", ["guard", pytest.param("bwrap", marks=needs_bubblewrap)]
)


def run(source: str, isolation: str | None = None, **limits: float) -> SandboxResult:
    """Run a dedented program with the given limits (isolation None: the best one here)."""
    limits_ = SandboxLimits(**limits)  # type: ignore[arg-type]
    return run_program(textwrap.dedent(source), limits_, isolation)


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private directory that tempfile, and so the sandbox, creates its directories in."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def gone(pid: int, within: float = 30.0) -> bool:
    """Whether process ``pid`` is dead (or a zombie nobody reaps) within ``within`` seconds.

    It returns as soon as it is: the bound is for a loaded machine, not a measurement.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def unique_seconds(whole: int) -> str:
    """A ``sleep`` duration of about ``whole`` s that no other process on the machine has.

    ``sleep 100`` may be running anywhere (another user's shell, another test
    run); ``sleep 100.<nine random digits>`` is this test's own.
    """
    return f"{whole}.{uuid.uuid4().int % 10**9:09d}"


def processes_mentioning(marker: str) -> list[int]:
    """Live processes on the machine whose command line mentions ``marker``.

    The marker must be unique to the test (:func:`unique_seconds`, a fresh
    temporary directory): every process on the machine is looked at.
    """
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process.pid)
    return found


@each_isolation
def test_a_passing_program(isolation: str) -> None:
    started = time.monotonic()
    result = run("print('hello')", isolation=isolation)
    elapsed = time.monotonic() - started
    assert result.status == "passed" and result.passed
    assert result.returncode == 0 and result.stdout == "hello\n" and result.stderr == ""
    # Its own running time: part of the call's.
    assert result.detail == "passed" and 0 < result.seconds <= elapsed


@each_isolation
def test_a_failed_assert_is_failed_with_the_programs_line_numbers(isolation: str) -> None:
    result = run(
        """\
        def add(a, b):
            return a - b

        assert add(1, 2) == 3, "add is wrong"
        """,
        isolation=isolation,
    )
    assert result.status == "failed" and not result.passed and result.returncode == 1
    assert result.detail == "AssertionError: add is wrong"
    assert 'program.py", line 4, in <module>' in result.stderr


@each_isolation
def test_other_exceptions_are_errors_named_in_the_detail(isolation: str) -> None:
    result = run("def f():\n    return 1 / 0\nf()", isolation=isolation)
    assert result.status == "error" and result.detail == "ZeroDivisionError: division by zero"
    assert 'program.py", line 2, in f' in result.stderr
    syntax = run("def f(:\n    pass", isolation=isolation)
    assert syntax.status == "error" and "SyntaxError" in syntax.detail
    exited = run("import sys\nsys.exit(3)", isolation=isolation)
    assert exited.status == "error" and exited.returncode == 3 and exited.detail == "exit status 3"
    # An AssertionError that is not the last line (it was caught) does not make it "failed".
    caught = run(
        "try:\n    assert False\nexcept AssertionError:\n    raise KeyError('k')",
        isolation=isolation,
    )
    assert caught.status == "error" and caught.detail == "KeyError: 'k'"


@each_isolation
def test_a_killing_signal_is_an_error(isolation: str) -> None:
    result = run("import signal\nsignal.raise_signal(signal.SIGTERM)", isolation=isolation)
    assert result.status == "error" and result.returncode == -signal.SIGTERM
    assert result.detail == "killed by SIGTERM"


@each_isolation
def test_a_sleeping_program_times_out_on_the_wall_clock(isolation: str) -> None:
    started = time.monotonic()
    result = run(
        "import os, time\nprint(os.getcwd(), flush=True)\ntime.sleep(60)",
        timeout=3,
        cpu_seconds=30,
        isolation=isolation,
    )
    # Killed at the wall clock (no exit status of its own) once its 3 s were
    # up, not waited out for the 60 s it asked for; the upper bounds leave
    # room for a loaded machine.
    assert result.status == "timeout" and result.returncode is None
    assert result.detail == f"timed out after {result.seconds:.3g} s"
    assert 3 <= result.seconds < 30 and time.monotonic() - started < 30
    # Output written before the kill is kept; the directory is gone (under
    # bubblewrap it is the sandbox's own tmpfs, gone with its mount namespace).
    workdir = Path(result.stdout.strip())
    assert not workdir.exists() if isolation == "guard" else workdir == Path(SANDBOX_DIR)


@each_isolation
def test_a_busy_loop_is_stopped_by_the_cpu_limit(isolation: str) -> None:
    # A wall clock far off (on a loaded machine one CPU second takes several):
    # an exit status of its own says the kernel stopped it, not the wall clock.
    result = run("while True:\n    pass", timeout=60, cpu_seconds=1, isolation=isolation)
    assert result.status == "timeout" and result.detail == "CPU time limit exceeded"
    assert result.returncode in (-signal.SIGXCPU, -signal.SIGKILL)


@each_isolation
def test_a_program_that_ignores_sigxcpu_still_times_out(isolation: str) -> None:
    result = run(
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass",
        timeout=60,
        cpu_seconds=1,
        isolation=isolation,
    )
    # SIGKILL at the hard CPU limit: the wall clock (60 s) would leave no exit status.
    assert result.status == "timeout" and result.returncode == -signal.SIGKILL
    assert result.detail == "CPU time limit exceeded"


@each_isolation
def test_allocating_far_more_than_allowed_is_an_error(isolation: str) -> None:
    at_once = run("block = bytearray(2 * 1024**3)", memory_mb=256, isolation=isolation)
    assert at_once.status == "error" and at_once.detail == "MemoryError"
    growing = run(
        "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024**2))",
        memory_mb=256,
        isolation=isolation,
    )
    # An error, not a timeout: refused at the limit, not swapped in until the wall clock.
    assert growing.status == "error" and "MemoryError" in growing.detail


@each_isolation
def test_resource_limits_are_set_and_cannot_be_raised(isolation: str) -> None:
    result = run(
        """\
        import json, resource
        names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE")
        print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in names}))
        resource.setrlimit(resource.RLIMIT_CPU, (100, 100))
        """,
        cpu_seconds=3,
        memory_mb=512,
        file_size_mb=2,
        isolation=isolation,
    )
    mb = 1024 * 1024
    assert json.loads(result.stdout) == {
        "RLIMIT_CPU": [3, 4],
        "RLIMIT_AS": [512 * mb, 512 * mb],
        "RLIMIT_FSIZE": [2 * mb, 2 * mb],
        "RLIMIT_CORE": [0, 0],
    }
    assert result.status == "error" and "resource.setrlimit is not allowed" in result.detail


def test_the_process_limit_is_set_only_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tasks on the machine come and go; the count is read from the kernel
    # (at least this process's own threads are among them).
    assert sandbox._task_count() >= psutil.Process().num_threads() >= 1
    monkeypatch.setattr(sandbox, "_task_count", lambda: 1234)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    as_user = {kind: (soft, hard) for kind, soft, hard in sandbox._rlimits(SandboxLimits())}
    # Room for the tasks that exist already, and a margin, but bounded (and
    # never above a hard limit this process has).
    wanted = 1234 + sandbox._NPROC_MARGIN
    current_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if current_hard != resource.RLIM_INFINITY:
        wanted = min(wanted, current_hard)
    assert as_user[resource.RLIMIT_NPROC] == (wanted, wanted)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    as_root = {kind for kind, _, _ in sandbox._rlimits(SandboxLimits())}
    assert resource.RLIMIT_NPROC not in as_root


@each_isolation
def test_forking_and_spawning_are_refused(isolation: str) -> None:
    seconds = unique_seconds(100)  # names the sleeps these programs would start
    programs = {
        "import os\nwhile True:\n    os.fork()": "os.fork",
        f"import subprocess\nsubprocess.Popen(['sleep', '{seconds}'])": "subprocess",
        f"import subprocess\nsubprocess.run('sleep {seconds}', shell=True)": "subprocess",
        f"import os\nos.system('sleep {seconds}')": "os.system",
        "import multiprocessing as m\nm.Process(target=print).start()": "os.fork",
        f"import os\nos.execv('/bin/sleep', ['sleep', '{seconds}'])": "os.execv",
        "import os\nos.kill(1, 9)": "os.kill",
        "import os\nos.setsid()": "os.setsid",
    }
    for program, operation in programs.items():
        result = run(program, isolation=isolation)
        assert result.status == "error", program
        assert result.detail == f"PermissionError: sandbox: {operation} is not allowed", program
    assert processes_mentioning(f"sleep {seconds}") == []


FORK_THROUGH_LIBC = """\
import ctypes, os, time
pid = ctypes.CDLL(None).fork()  # the guard cannot see this one
if pid == 0:
    time.sleep(60)
    os._exit(0)
print(pid, os.getcwd(), flush=True)
"""


@pytest.mark.parametrize(
    ("rest_of_program", "limits", "status"),
    [
        pytest.param("", {}, "passed", id="left-behind"),
        # Long enough to start and print on a loaded machine; the sleep, far longer.
        pytest.param("time.sleep(60)\n", {"timeout": 5}, "timeout", id="on-timeout"),
    ],
)
def test_a_child_is_killed_with_the_process_group(
    rest_of_program: str, limits: dict[str, float], status: str
) -> None:
    # The guard alone: the pid and directory it prints are the host's (for
    # bubblewrap, see test_sandbox_isolation.py).
    result = run(FORK_THROUGH_LIBC + rest_of_program, "guard", **limits)
    assert result.status == status
    pid, workdir = result.stdout.split()
    assert gone(int(pid)) and processes_mentioning(workdir) == []


@each_isolation
def test_reading_stdin_is_an_error_at_once(isolation: str) -> None:
    # At once: an EOFError ends it; a program left waiting for input would
    # time out instead (status "timeout" at the 10 s wall clock).
    result = run("name = input('name? ')", isolation=isolation)
    assert result.status == "error" and result.detail.startswith("EOFError")


def test_writing_or_deleting_outside_its_directory_is_refused(tmp_path: Path) -> None:
    # The guard alone. Under bubblewrap these host paths (in /tmp) would lie in
    # the sandbox's own /tmp, and not exist: test_sandbox_isolation.py checks
    # that writes outside it fail there even past the guard.
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    attempts = {
        "open": f"open({str(outside / 'new.txt')!r}, 'w')",
        "append": f"open({str(victim)!r}, 'a')",
        "pathlib": f"pathlib.Path({str(outside / 'p.txt')!r}).write_text('x')",
        "os.open": f"os.open({str(outside / 'fd.txt')!r}, os.O_CREAT | os.O_WRONLY)",
        "remove": f"os.remove({str(victim)!r})",
        "unlink": f"pathlib.Path({str(victim)!r}).unlink()",
        "rename": f"os.rename({str(victim)!r}, 'stolen.txt')",
        "rmtree": f"shutil.rmtree({str(outside)!r})",
        "mkdir": f"os.mkdir({str(outside / 'sub')!r})",
        "symlink": f"os.symlink('/etc', {str(outside / 'link')!r})",
        "chmod": f"os.chmod({str(victim)!r}, 0)",
        "truncate": f"os.truncate({str(victim)!r}, 0)",
        "through a link": f"os.symlink({str(victim)!r}, 'link')\nopen('link', 'w')",
        "chdir": f"os.chdir({str(outside)!r})",
    }
    lines = ["import os, pathlib, shutil"]
    for name, attempt in attempts.items():
        lines += [
            "try:",
            textwrap.indent(attempt, "    "),
            "except PermissionError as error:",
            f"    print({name!r}, 'refused' if 'sandbox' in str(error) else error)",
        ]
    lines.append(f"os.remove({str(victim)!r})")  # unhandled: the program ends with it
    result = run("\n".join(lines), "guard")
    assert result.stdout.splitlines() == [f"{name} refused" for name in attempts]
    assert result.status == "error" and "sandbox: os.remove(" in result.detail
    assert list(outside.iterdir()) == []
    assert victim.read_text() == "precious" and victim.stat().st_mode & 0o777 != 0


@each_isolation
def test_its_own_directory_is_writable(isolation: str) -> None:
    result = run(
        """\
        import os, pathlib, shutil, tempfile
        with open("notes.txt", "w") as file:
            file.write("hi")
        os.makedirs("a/b/c")
        pathlib.Path("a/b/c/d.txt").write_text("d")
        os.rename("notes.txt", "a/notes.txt")
        shutil.copy("a/notes.txt", "copy.txt")
        shutil.rmtree("a")
        with tempfile.NamedTemporaryFile() as named, tempfile.TemporaryDirectory() as folder:
            named.write(b"x")
            open(os.path.join(folder, "f"), "w").close()
        open(os.devnull, "w").write("discarded")
        os.remove("copy.txt")
        print(sorted(os.listdir(".")), len(open(os.__file__).read()) > 0)
        """,
        isolation=isolation,
    )
    assert result.status == "passed", result.stderr
    assert result.stdout == "['program.py'] True\n"


@each_isolation
def test_the_directories_are_removed_whatever_happens(
    isolation: str, temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = run(
        "import os\nopen('left.txt', 'w').write('x')\nprint(os.getcwd())", isolation=isolation
    )
    assert passed.status == "passed"
    if isolation == "guard":  # under bubblewrap it saw its own /tmp
        assert Path(passed.stdout.strip()).parent == temp_root
        assert not Path(passed.stdout.strip()).exists()
    assert run("raise ValueError", isolation=isolation).status == "error"
    assert run("import time\ntime.sleep(60)", timeout=0.5, isolation=isolation).status == "timeout"
    assert list(temp_root.iterdir()) == []

    def broken_popen(*args: object, **kwargs: object) -> None:
        raise OSError("cannot start")

    monkeypatch.setattr(subprocess, "Popen", broken_popen)
    with pytest.raises(OSError, match="cannot start"):
        run("print(1)", isolation=isolation)
    assert list(temp_root.iterdir()) == []


@each_isolation
def test_the_environment_is_stripped(isolation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_SANDBOX_MARKER", "hunter2")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    program = "import json, os\nprint(json.dumps([dict(os.environ), os.getcwd(), hash('moa')]))"
    environment, cwd, first_hash = json.loads(run(program, isolation=isolation).stdout)
    assert "MOA_SANDBOX_MARKER" not in environment and "HTTPS_PROXY" not in environment
    assert "hunter2" not in json.dumps(environment)
    assert set(environment) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "LC_CTYPE",  # Python's C-locale coercion may add it
    }
    assert environment["HOME"] == environment["TMPDIR"] == cwd
    assert environment["PYTHONHASHSEED"] == "0"
    # The hash seed is honoured: string hashes are the same in every run.
    assert json.loads(run(program, isolation=isolation).stdout)[2] == first_hash


@each_isolation
def test_output_is_bounded_and_keeps_its_end(isolation: str) -> None:
    flood = run("while True:\n    print('x' * 1000)", file_size_mb=1, isolation=isolation)
    assert flood.status == "error" and "File too large" in flood.detail
    assert len(flood.stdout) < 9 * 1024 and "bytes cut" in flood.stdout
    noisy = run(
        "import sys\nsys.stderr.write('noise\\n' * 100_000)\nprint('result line')\n"
        "raise ValueError('the last line')",
        isolation=isolation,
    )
    assert len(noisy.stderr) < 9 * 1024
    assert noisy.detail == "ValueError: the last line" and noisy.stdout == "result line\n"


async def test_run_program_async() -> None:
    results = await asyncio.gather(
        *(run_program_async(f"print({n} * 7)") for n in range(3)),
        run_program_async("assert False", SandboxLimits(timeout=5)),
    )
    assert [r.stdout for r in results[:3]] == ["0\n", "7\n", "14\n"]
    assert results[3].status == "failed"
