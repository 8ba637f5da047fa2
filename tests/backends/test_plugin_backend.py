"""A backend from another package, installed the way pip installs one.

The plugin is a module plus a ``.dist-info`` folder (``METADATA`` and
``entry_points.txt``) in a folder put on ``sys.path``: importlib.metadata
finds it there as it finds any installed distribution, and moa-local takes it
from the ``moa_local.backends`` entry-point group, from the config's check of
``backend`` to the answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from moa_local import MoA
from moa_local.cli import main
from moa_local.config import load_config
from moa_local.errors import ConfigError

MODULE = "moa_shout_plugin"

PLUGIN = '''"""A third-party moa-local backend: it answers the last message in capitals."""

from moa_local.backends.base import BaseBackend, Completion, now

SEEN = []  # (model name, its name on the plugin's side) of every request


class ShoutBackend(BaseBackend):
    name = "shout"

    async def stream(self, request):
        started = now()
        SEEN.append((request.model.name, request.model.remote_model))
        text = request.messages[-1]["content"].upper()
        yield text
        yield Completion(
            text=text, prompt_tokens=1, completion_tokens=1, seconds=now() - started
        )
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``moa-shout-plugin`` installed into a site folder of its own, on sys.path."""
    site = tmp_path / "site"
    info = site / "moa_shout_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (site / f"{MODULE}.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: moa-shout-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[moa_local.backends]\nshout = {MODULE}:ShoutBackend\n")
    (info / "top_level.txt").write_text(f"{MODULE}\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(MODULE, None)


def write_config() -> None:
    Path("models.toml").write_text('[models.loud]\nbackend = "shout"\nmodel = "megaphone-1"\n')


def test_a_moa_runs_on_a_backend_another_package_installed(plugin: Path) -> None:
    write_config()
    result = MoA(proposers=["loud"], aggregator="loud", layers=1).run_sync("say hi")
    assert result.layer_history[0][0].content == "SAY HI"
    assert result.final_response == "SAY HI"
    seen = sys.modules[MODULE].SEEN
    assert seen and set(seen) == {("loud", "megaphone-1")}


def test_moa_local_ask_runs_on_it_too(plugin: Path) -> None:
    write_config()
    argv = ["ask", "-m", "loud", "--aggregator", "loud", "--layers", "1", "--json", "say hi"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["final_response"] == "SAY HI"


def test_an_unknown_backend_is_an_error_naming_the_installed_ones(plugin: Path) -> None:
    Path("models.toml").write_text('[models.quiet]\nbackend = "whisper"\n')
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert "[models.quiet] backend must be one of llamacpp, echo, ollama, openai, shout, " in str(
        raised.value
    )
    assert str(raised.value).endswith("got 'whisper'")


def test_without_the_plugin_its_name_is_unknown() -> None:
    write_config()
    with pytest.raises(ConfigError, match="backend must be one of llamacpp, echo, ollama, openai,"):
        load_config()
