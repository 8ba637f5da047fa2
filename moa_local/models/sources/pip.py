"""Downloads through the user's own pip: ``python -m pip download --no-deps``.

pip is used rather than an HTTP client of our own so that whatever it is
configured with (an index mirror, extra indexes, certificates, proxies: the
usual set-up of an air-gapped site) applies as is. pip's own bar is off; the
caller polls what has arrived so far (pip writes under ``$TMPDIR``, pointed at
a directory of the caller's) and reports it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import PullError

POLL_SECONDS = 0.25


def pip_download(
    requirement: str,
    destination: Path,
    scratch: Path,
    poll: Callable[[], None],
    *,
    binary_only: bool,
    label: str = "",
    hint: str = "",
) -> None:
    """Download ``requirement`` (no dependencies) into ``destination``; ``poll`` runs meanwhile.

    ``scratch`` becomes pip's temporary directory. Raises :class:`PullError`
    naming ``label`` (default: the requirement) with pip's most telling line
    (and ``hint``) when pip fails.
    """
    destination.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        *("-m", "pip", "download", "--no-deps"),
        *(["--only-binary=:all:"] if binary_only else []),
        *("--disable-pip-version-check", "--no-input", "--progress-bar", "off"),
        *("--dest", str(destination), requirement),
    ]
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    with open(scratch.parent / "pip.log", "w+b") as log:
        try:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=(
                    functools.partial(_die_with_parent, os.getpid())
                    if sys.platform == "linux"
                    else None
                ),
            )
        except OSError as exc:
            raise PullError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None
        try:
            while process.poll() is None:
                poll()
                time.sleep(POLL_SECONDS)
        except BaseException:
            process.terminate()
            process.wait()
            raise
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    if process.returncode != 0:
        suffix = f"; {hint}" if hint else ""
        what = label or requirement
        raise PullError(f"pip could not download {what}: {pip_error(output)}{suffix}")


def pip_error(output: str) -> str:
    """The most telling line of pip's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if "No module named pip" in output:
        return "pip is not installed in this Python environment"
    if errors:
        return errors[0].removeprefix("ERROR:").strip()
    return lines[-1] if lines else "no output"


def _die_with_parent(parent: int) -> None:
    """In the pip child: be killed when the pulling process ``parent`` dies (even by SIGKILL).

    Otherwise an orphaned pip goes on writing into a temporary folder that
    the next pull is about to clean up. A parent that died before the
    request took effect (between fork and here) is dead already: die now.
    """
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
