"""`moa-local chat`: through a pseudo-terminal (pexpect) and through a pipe, on echo models.

``echo:NAME?recall=1`` answers the first user message of the chat, so a
second answer that repeats the first question proves the earlier turn
reached the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moa_local.chat import Conversation, parse_command, read_message

CONFIG = """
[defaults]
proposers = ["echo:a?recall=1"]
aggregator = "echo:a?recall=1"
layers = 1
strategy = "model"
num_proposers = 0
trace_dir = "traces"

[presets.plain]
proposers = ["echo:b"]
aggregator = "echo:b"

[presets.slow]
proposers = ["echo:s?word_delay=0.5"]
aggregator = "echo:s?word_delay=0.5"
"""


@pytest.fixture
def config(isolated: Path) -> Path:
    path = isolated / "models.toml"
    path.write_text(CONFIG)
    return path


def chat_through_a_pipe(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moa_local", "chat", "-q"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_a_pipe_gets_one_answer_per_message_and_the_conversation_is_kept(config: Path) -> None:
    done = chat_through_a_pipe(
        'my name is Ada\nwhat is my name?\n"""\nfirst line\nsecond line\n"""\n'
        "/preset plain\nhello there\n/bye\nnever read\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "my name is Ada",
        "my name is Ada",  # the second answer saw the first turn
        "my name is Ada",  # so did the multi-line message's
        "[b t=0.70 refs=0] hello there",  # another preset, same conversation
    ]
    assert "now preset plain" in done.stderr


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/nope", "error: unknown command /nope; /help lists them"),
        ("/save /no/such/dir/chat.json", "error: cannot save to /no/such/dir/chat.json: "),
        ("/preset missing", "error: unknown preset 'missing'"),
        ("/save", "error: /save needs a file name"),
    ],
)
def test_a_bad_command_is_one_line_and_the_chat_goes_on(
    config: Path, line: str, error: str
) -> None:
    done = chat_through_a_pipe(f"{line}\nhello\n")
    assert done.returncode == 0
    errors = [e for e in done.stderr.splitlines() if e.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(error), done.stderr
    assert done.stdout == "hello\n"


def test_a_terminal_chat_keeps_turns_survives_ctrl_c_and_saves(config: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    child = pexpect.spawn(
        sys.executable, ["-m", "moa_local", "chat"], env=env, encoding="utf-8", timeout=60
    )
    try:
        child.expect("/help for commands")
        child.expect(">>>")
        child.sendline("my name is Ada")
        child.expect(">>>")
        child.sendline("what is my name?")
        child.expect("my name is Ada")  # the answer: the typed line was another
        child.expect(">>>")
        child.sendline("/preset slow")
        child.expect("now preset slow")
        child.expect(">>>")
        child.sendline("tell me a long story")
        child.expect("proposers working")
        child.sendintr()  # Ctrl-C while the answer is being made
        child.expect("stopped; this turn is not kept")
        child.expect(">>>")
        child.sendline("/save chat.json")
        child.expect(r"saved 2 turn\(s\)")
        child.expect(">>>")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    saved = json.loads(Path("chat.json").read_text())
    assert [t["user"] for t in saved["turns"]] == ["my name is Ada", "what is my name?"]
    assert [t["assistant"] for t in saved["turns"]] == ["my name is Ada"] * 2
    assert all(t["trace"][0]["event"] == "run.start" for t in saved["turns"])


def test_ctrl_d_ends_a_terminal_chat(config: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    child = pexpect.spawn(
        sys.executable, ["-m", "moa_local", "chat"], env=env, encoding="utf-8", timeout=60
    )
    child.expect(">>>")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_commands_are_slash_words_and_paths_are_messages() -> None:
    assert parse_command("/preset fast") == ("/preset", "fast")
    assert parse_command("/?") == ("/help", "")
    assert parse_command("/etc/hosts lists names") is None
    assert parse_command("hello /bye") is None


async def test_a_multiline_message_is_read_between_triple_quotes() -> None:
    lines = iter(['"""first', "second", 'third"""', "next"])

    async def next_line(continued: bool) -> str | None:
        return next(lines, None)

    assert await read_message(next_line) == "first\nsecond\nthird"
    assert await read_message(next_line) == "next"
    assert await read_message(next_line) is None


def test_saving_writes_the_whole_file_or_nothing(tmp_path: Path) -> None:
    conversation = Conversation()
    folder = tmp_path / "saved"
    folder.mkdir()
    target = folder / "chat.json"
    target.write_text("old")
    conversation.save(target)
    assert json.loads(target.read_text()) == {"turns": []}
    assert [p.name for p in folder.iterdir()] == ["chat.json"]  # no temporary left
