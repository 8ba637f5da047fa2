"""What bubblewrap adds to the sandbox, and how moa-local finds out whether it has it.

The programs here get past the guard on purpose (``ctypes``, ``_io.FileIO``):
what stops them is the kernel, under bubblewrap. Those tests ask for
``isolation="bwrap"`` and skip, with the reason, where bubblewrap does not
work; a test that holds for both isolations runs under each.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from moa_local.checks import isolation
from moa_local.checks.isolation import (
    SANDBOX_DIR,
    Bubblewrap,
    GuardOnly,
    IsolationUnavailable,
    Probe,
    bubblewrap_args,
    default_isolation,
    probe_bubblewrap,
)
from moa_local.checks.sandbox import run_program
from moa_local.cli import main
from tests.checks.test_sandbox import (
    each_isolation,
    needs_bubblewrap,
    processes_mentioning,
    run,
    unique_seconds,
)
from tests.conftest import REPO_ROOT

PREFIXES = {
    os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)
}


def wait_for(condition: Callable[[], bool], within: float = 60.0) -> bool:
    """Whether ``condition()`` holds at some point within ``within`` seconds.

    It returns as soon as it does: the bound is for a loaded machine, not a measurement.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique ``sleep`` argument naming the processes a test's program starts; none survive."""
    marker = unique_seconds(61)
    yield marker
    for pid in processes_mentioning(f"sleep {marker}"):
        os.kill(pid, signal.SIGKILL)


def sleeper(marker: str) -> str:
    """Program text: this process becomes ``sleep MARKER`` (execv through libc, past the guard)."""
    return (
        f"    argv = (ctypes.c_char_p * 3)(b'sleep', b'{marker}', None)\n"
        "    libc.execv(b'/bin/sleep', argv)\n"
        "    os._exit(1)\n"
    )


# What bubblewrap mounts, and how the sandbox reads its exit status.


def test_only_the_system_and_the_interpreter_are_bound() -> None:
    args = bubblewrap_args()
    assert {"--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1"} <= set(args)
    assert "--bind" not in args and "--dev-bind" not in args  # nothing of the host is writable
    binds = [(args[i + 1], args[i + 2]) for i, arg in enumerate(args) if arg == "--ro-bind"]
    assert all(source == target for source, target in binds)
    sources = {source for source, _ in binds}
    system = {"/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/alternatives"}
    real_python = os.path.realpath(sys.executable)
    assert sources <= system | PREFIXES | {real_python}
    home = pwd.getpwuid(os.getuid()).pw_dir
    for hidden in ("/", "/tmp", "/etc", "/home", "/root", home, str(REPO_ROOT)):
        assert hidden not in sources
    # The private /tmp comes before the binds, so a prefix under /tmp stays visible.
    assert args.index("--tmpfs") < args.index("--ro-bind")


def test_a_signal_reads_as_the_signal_under_bubblewrap() -> None:
    assert [Bubblewrap().exit_status(s) for s in (0, 1, 3, 128, 137, 143)] == [
        0,
        1,
        3,
        128,
        -signal.SIGKILL,
        -signal.SIGTERM,
    ]
    assert GuardOnly().exit_status(143) == 143


# Finding out whether bubblewrap works: once per process, reason kept.


@pytest.fixture
def fresh_probe() -> Iterator[None]:
    """The probe forgets its answer before and after the test."""
    probe_bubblewrap.cache_clear()
    yield
    probe_bubblewrap.cache_clear()


def test_without_bwrap_the_guard_runs_alone(
    fresh_probe: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap there
    assert probe_bubblewrap() == Probe(None)
    assert probe_bubblewrap().reason == "bwrap is not installed"
    assert default_isolation().name == "guard"
    result = run_program("import os\nprint(os.getcwd() != '/tmp')")
    assert result.passed and result.stdout == "True\n"
    with pytest.raises(IsolationUnavailable, match="bwrap is not installed"):
        run_program("print(1)", isolation="bwrap")


def test_a_bwrap_that_cannot_make_namespaces_counts_as_missing(
    fresh_probe: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'bwrap: Creating new namespace failed: Operation not permitted' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    probe = probe_bubblewrap()
    assert probe.path == str(fake) and not probe.usable
    assert probe.problem == "bwrap: Creating new namespace failed: Operation not permitted"
    assert probe_bubblewrap() is probe  # asked once per process
    assert default_isolation().name == "guard"
    with pytest.raises(IsolationUnavailable, match="Operation not permitted"):
        run_program("print(1)", isolation="bwrap")


@pytest.mark.parametrize(
    ("probe", "line"),
    [
        pytest.param(
            Probe("/usr/bin/bwrap"),
            "  ok bubblewrap (no network, private /tmp, read-only system, home hidden)\n",
            id="works",
        ),
        pytest.param(
            Probe(None),
            "  -- rlimits and a guard only: install bubblewrap (apt-get install bubblewrap / "
            "dnf install bubblewrap / pacman -S bubblewrap) for real isolation\n",
            id="missing",
        ),
        pytest.param(
            Probe("/usr/bin/bwrap", "bwrap: setting up uid map: Permission denied"),
            "  -- rlimits and a guard only: /usr/bin/bwrap does not work here "
            "(bwrap: setting up uid map: Permission denied)\n",
            id="fails",
        ),
    ],
)
@pytest.mark.shipped_defaults  # verify = "auto", as shipped
def test_doctor_says_how_model_written_code_is_isolated(
    probe: Probe, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "probe_bubblewrap", lambda: probe)
    text = CliRunner().invoke(main, ["doctor"])
    assert text.exit_code == 0, text.output
    assert "\nsandbox for model-written code\n" + line in text.stdout
    # What the default verify = "auto" does with that isolation.
    tested = "verify = auto: every code question is tested, under bubblewrap (on asserts the model"
    untested = "verify = auto: no code question is tested: auto needs bubblewrap"
    assert (tested if probe.usable else untested) in text.stdout
    assert "check_form = stated: free text is checked against the form its question" in text.stdout
    report = json.loads(CliRunner().invoke(main, ["doctor", "--json"]).stdout)["sandbox"]
    assert report == {
        "isolation": "bwrap" if probe.usable else "guard",
        "detail": line[5:-1],
        "bwrap": probe.path,
        "problem": probe.problem,
    }


# What a program under bubblewrap cannot do, even past the guard.

NETWORK = """\
import socket, urllib.request
interfaces = sorted(name for _, name in socket.if_nameindex())
try:
    print(urllib.request.urlopen({url!r}, timeout=5).read().decode(), interfaces)
except OSError as error:
    print("unreachable", type(getattr(error, "reason", error)).__name__, interfaces)
"""


@each_isolation
def test_the_network_is_cut_only_under_bubblewrap(isolation: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data("reached")
    # By address: the sandbox has no /etc/hosts to look "localhost" up in.
    result = run(NETWORK.format(url=f"http://127.0.0.1:{httpserver.port}/"), isolation)
    assert result.passed, result.stderr
    if isolation == "guard":  # the guard does nothing about the network
        assert result.stdout.startswith("reached ") and len(httpserver.log) == 1
    else:  # a loopback of its own, where nothing listens
        assert result.stdout == "unreachable ConnectionRefusedError ['lo']\n"
        assert httpserver.log == []


@needs_bubblewrap
def test_home_checkout_and_host_tmp_are_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    monkeypatch.setenv("HOME", str(home))
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    program = f"""\
        import json, os
        def readable(path):
            try:
                with open(path) as file:
                    return file.read()
            except OSError as error:
                return type(error).__name__
        print(json.dumps({{
            "key": readable({str(key)!r}),
            "readme": readable({str(REPO_ROOT / "README.md")!r}),
            "checkout": os.path.exists({str(REPO_ROOT / "moa_local")!r}),
            "host tmp": os.path.exists({str(tmp_path)!r}),
            "real home": os.listdir({real_home!r}) if os.path.isdir({real_home!r}) else [],
            "HOME": os.environ["HOME"],
        }}))
        """
    result = run(program, "bwrap")
    assert result.passed, result.stderr
    seen = json.loads(result.stdout)
    assert seen["key"] == seen["readme"] == "FileNotFoundError"
    assert seen["checkout"] is seen["host tmp"] is False
    assert seen["HOME"] == SANDBOX_DIR
    # Of the real home, at most the way to a Python prefix inside it (pyenv, a venv).
    ways_to_python = {
        Path(prefix).relative_to(real_home).parts[0]
        for prefix in PREFIXES
        if Path(prefix).is_relative_to(real_home) and prefix != real_home
    }
    assert set(seen["real home"]) <= ways_to_python


@needs_bubblewrap
def test_writing_outside_its_tmp_fails_even_past_the_guard(tmp_path: Path) -> None:
    name = f"moa-sandbox-test-{uuid.uuid4().hex}"
    targets = [
        f"/{name}",
        f"/usr/{name}",
        f"/etc/{name}",
        f"/dev/{name}",
        os.path.join(sys.prefix, name),
        os.path.join(pwd.getpwuid(os.getuid()).pw_dir, name),
        str(tmp_path / name),
        f"{SANDBOX_DIR}/program.py",  # itself: bound read-only
    ]
    program = f"""\
        import _io
        for target in {targets!r}:
            try:
                _io.FileIO(target, "w").close()  # no guard on _io
                print("wrote", target)
            except OSError as error:
                print(type(error).__name__)
        _io.FileIO("/tmp/scratch", "w").close()
        print("wrote its own /tmp")
        """
    try:
        result = run(program, "bwrap")
        assert result.passed, result.stderr
        *refusals, last = result.stdout.splitlines()
        assert last == "wrote its own /tmp"
        assert len(refusals) == len(targets) and not any("wrote" in r for r in refusals)
    finally:
        left = [t for t in targets[:-1] if os.path.lexists(t)]
        for target in left:
            os.remove(target)
    assert left == []


@needs_bubblewrap
def test_signals_cannot_reach_the_host() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    program = f"""\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def kill(pid):
            ctypes.set_errno(0)
            return [libc.kill(pid, 9), ctypes.get_errno()]
        if os.getpid() > 16:
            raise SystemExit("not in a PID namespace of its own: not trying")
        print(os.getppid(), kill({victim.pid}), kill(os.getppid()), kill(1), flush=True)
        """
    try:
        result = run(program, "bwrap")
        # Its parent is the sandbox's PID 1, which ignores it; the host's
        # processes do not exist for it (ESRCH).
        assert result.passed, result.stderr
        assert result.stdout == "1 [-1, 3] [0, 0] [0, 0]\n"
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@each_isolation
def test_a_fork_bomb_through_libc_dies_with_the_program(isolation: str, marker: str) -> None:
    program = (
        "import ctypes, os, time\n"
        "libc = ctypes.CDLL(None)\n"
        "first = os.getpid()\n"
        "for _ in range(6):\n"
        "    libc.fork()  # the guard cannot see these\n"
        "if os.getpid() != first:\n" + sleeper(marker) + "time.sleep(60)\n"
    )
    with ThreadPoolExecutor(1) as pool:
        # Time for 63 forks on a loaded machine; the program itself never ends.
        running = pool.submit(run, program, isolation, timeout=5)
        grown = wait_for(lambda: len(processes_mentioning(f"sleep {marker}")) == 63, within=5)
        result = running.result()
    assert grown and result.status == "timeout"
    assert wait_for(lambda: processes_mentioning(f"sleep {marker}") == [])


@needs_bubblewrap
def test_a_child_that_leaves_the_process_group_still_dies(marker: str) -> None:
    # Out of the session and process group, which the guard alone would not
    # catch; the PID namespace ends with the program. The program ends only
    # once the child is ``sleep``: the pipe (close-on-exec) closes at its execv.
    program = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None)\n"
        "done, exec_closes = os.pipe()\n"
        "if libc.fork() == 0:\n"
        "    libc.setsid()\n" + sleeper(marker) + "os.close(exec_closes)\n"
        "assert os.read(done, 1) == b''\n"
        "print('left a child behind')\n"
    )
    result = run(program, "bwrap")
    assert result.passed and result.stdout == "left a child behind\n"
    assert wait_for(lambda: processes_mentioning(f"sleep {marker}") == [])


@needs_bubblewrap
def test_the_program_dies_with_moa_local(marker: str) -> None:
    program = textwrap.dedent(
        """\
        import ctypes, os, time
        libc = ctypes.CDLL(None)
        if libc.fork() == 0:
        """
    )
    program += sleeper(marker) + "time.sleep(60)\n"
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom moa_local.checks.sandbox import SandboxLimits, run_program\n"
            "run_program(sys.argv[1], SandboxLimits(timeout=60, cpu_seconds=60), 'bwrap')",
            program,
        ]
    )
    try:
        assert wait_for(lambda: len(processes_mentioning(f"sleep {marker}")) == 1)
    finally:
        caller.kill()  # no cleanup runs: SIGKILL
        caller.wait()
    assert wait_for(lambda: processes_mentioning(f"sleep {marker}") == [])
