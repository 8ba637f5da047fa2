"""models.toml, environment and flags merge in one place; mistakes name their source."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from moa_local.config import BUILTIN_PRESETS, TABLES, load_config
from moa_local.errors import ConfigError
from tests.conftest import REPO_ROOT


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.shipped_defaults
def test_repository_models_toml_documents_the_builtin_defaults() -> None:
    document = tomllib.loads((REPO_ROOT / "models.toml").read_text(encoding="utf-8"))
    for table, builtin in TABLES.items():
        assert document[table] == dict(builtin)


@pytest.mark.shipped_defaults
def test_without_any_file_the_builtin_defaults_apply() -> None:
    config = load_config()
    assert config.source is None
    assert config.proposers == ("qwen2.5-coder-1.5b",)
    assert config.aggregator == "qwen2.5-coder-1.5b" and config.layers == 1
    assert config.strategy == "temperature" and config.num_proposers == 3
    assert config.router == "agree" and config.verify == "auto"
    assert config.aggregate == "auto"


def test_precedence_flag_over_env_over_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write(Path("models.toml"), "[defaults]\nlayers = 3\nmax_tokens = 100\ntemperature = 0.2\n")
    monkeypatch.setenv("MOA_LOCAL_LAYERS", "4")
    monkeypatch.setenv("MOA_LOCAL_MAX_TOKENS", "200")
    config = load_config(overrides={"layers": 5})
    assert config.source == Path("models.toml")
    assert config.layers == 5  # flag
    assert config.max_tokens == 200  # environment
    assert config.temperature == 0.2  # file
    assert config.strategy == "model"  # built-in


def test_search_order_prefers_explicit_then_env_then_cwd_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = Path(__import__("os").environ["MOA_LOCAL_HOME"])
    write(home / "models.toml", "[defaults]\nlayers = 7\n")
    assert load_config().layers == 7
    write(Path("models.toml"), "[defaults]\nlayers = 6\n")
    assert load_config().layers == 6
    env_file = write(tmp_path / "env.toml", "[defaults]\nlayers = 5\n")
    monkeypatch.setenv("MOA_LOCAL_CONFIG", str(env_file))
    assert load_config().layers == 5
    explicit = write(tmp_path / "explicit.toml", "[defaults]\nlayers = 4\n")
    assert load_config(explicit).layers == 4


def test_env_list_and_range_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_LOCAL_PROPOSERS", "echo:a, echo:b")
    monkeypatch.setenv("MOA_LOCAL_TEMPERATURE_RANGE", "0.1,0.5")
    config = load_config()
    assert config.proposers == ("echo:a", "echo:b")
    assert config.temperature_range == (0.1, 0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[defaults]\nlayers = 2\nlayers 3\nmax_tokens = 9\n",
            r"models\.toml: invalid TOML: .*line 3",
            id="toml-syntax-error-names-file-and-line",
        ),
        pytest.param(
            "[defaults]\nlayer = 2\n",
            r"models\.toml: \[defaults\] unknown key 'layer'",
            id="unknown-key-names-the-table-and-key",
        ),
        pytest.param(
            '[models.mine]\npath = "x.gguf"\nctx = 4\n',
            r"\[models\.mine\] unknown key 'ctx'",
            id="unknown-model-key-names-the-model-table",
        ),
        pytest.param(
            "[default]\nlayers = 2\n",
            r"unknown table \[default\]",
            id="unknown-table",
        ),
    ],
)
def test_file_mistakes_name_where_they_are(text: str, message: str) -> None:
    write(Path("models.toml"), text)
    with pytest.raises(ConfigError, match=message):
        load_config()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("layers = 0", r"\[defaults\] layers must be >= 1, got 0"),
        ('layers = "two"', r"\[defaults\] layers must be an integer"),
        ("temperature = -0.5", r"\[defaults\] temperature must be between 0.0 and 2.0"),
        ('strategy = "vote"', r"\[defaults\] strategy must be one of model, temperature, role"),
        ("proposers = []", r"\[defaults\] proposers is empty"),
        ("temperature_range = [0.9, 0.1]", r"low <= high"),
    ],
)
def test_wrong_values_name_table_and_key(line: str, message: str) -> None:
    write(Path("models.toml"), f"[defaults]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_LOCAL_LAYERS", "many")
    with pytest.raises(ConfigError, match="MOA_LOCAL_LAYERS must be an integer"):
        load_config()


def test_bad_keyword_value_names_the_setting_on_the_error() -> None:
    with pytest.raises(ConfigError, match="^temperature must be between") as caught:
        load_config(overrides={"temperature": -1.0})
    error = caught.value
    assert (error.setting, error.where) == ("temperature", "temperature")
    assert error.reason == "must be between 0.0 and 2.0, got -1.0"


def test_file_and_environment_errors_name_the_setting_and_where(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(Path("models.toml"), "[defaults]\nlayers = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert (caught.value.setting, caught.value.where) == (
        "layers",
        "models.toml: [defaults] layers",
    )
    Path("models.toml").unlink()
    monkeypatch.setenv("MOA_LOCAL_TOP_P", "2")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert (caught.value.setting, caught.value.where) == ("top_p", "MOA_LOCAL_TOP_P")


def test_missing_explicit_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found: nope.toml"):
        load_config("nope.toml")


def test_relative_model_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    config_file = write(folder / "models.toml", '[models.mine]\npath = "weights/m.gguf"\n')
    config = load_config(config_file)
    assert config.models["mine"].path == folder / "weights" / "m.gguf"


def test_hosts_and_remote_models() -> None:
    write(
        Path("models.toml"),
        '[hosts.box]\nurl = "http://10.0.0.7:11434/"\nbudget_mb = 8000\n\n'
        '[models.big]\nhost = "box"\nmodel = "qwen2.5:14b"\n',
    )
    config = load_config()
    host = config.hosts["box"]
    assert (host.url, host.kind, host.budget_mb) == ("http://10.0.0.7:11434", "ollama", 8000)
    assert config.models["big"].backend == "ollama" and config.models["big"].model == "qwen2.5:14b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[models.m]\nhost = "nowhere"\n',
            r"\[models\.m\] host 'nowhere' is not a \[hosts\.NAME\]",
        ),
        ('[hosts.h]\nurl = "10.0.0.7:11434"\n', r"\[hosts\.h\] url must be http://HOST"),
        ('[hosts.h]\nurl = "http://h"\nkind = "vllm"\n', r"\[hosts\.h\] kind must be one of"),
        ('[hosts.h]\nurl = "http://h"\nport = 1\n', r"\[hosts\.h\] unknown key 'port'"),
        (
            '[hosts.h]\nurl = "http://h"\nkind = "openai"\n[models.m]\nhost = "h"\n',
            r"\[models\.m\] an openai model needs `host` and `model`",
        ),
        (
            '[hosts.h]\nurl = "http://h"\n[models.m]\nhost = "h"\nbackend = "openai"\n',
            r"\[models\.m\] backend 'openai' does not match host 'h'",
        ),
        ('[hosts.h]\nurl = "http://"\n', r"url must be http://HOST"),
        ('[hosts.h]\nurl = "http://h"\nkind = "openai"\ntotal_mb = 9\n', r"total_mb is for Ollama"),
        (
            '[hosts.h]\nurl = "http://h"\ntotal_mb = 9\nbudget_mb = 8\n',
            r"both budget_mb and total_mb",
        ),
        (
            '[hosts.h]\nurl = "http://h"\n[models.m]\nhost = "h"\npath = "x.gguf"\n',
            r"\[models\.m\] a model served by ollama has no `path`",
        ),
    ],
)
def test_bad_hosts_name_the_table_and_key(text: str, message: str) -> None:
    write(Path("models.toml"), text)
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_repository_models_toml_documents_the_builtin_presets() -> None:
    document = tomllib.loads((REPO_ROOT / "models.toml").read_text(encoding="utf-8"))
    assert document["presets"] == BUILTIN_PRESETS


def test_presets_from_a_file_add_to_the_builtin_ones_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[presets.mine]\nlayers = 3\nrouter = "agree"\nverify = true\n')
    config = load_config(path)
    assert config.presets["mine"] == {"layers": 3, "router": "agree", "verify": True}
    assert "self-moa" in config.presets
    path.write_text('[presets.bad]\nrouter = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"\[presets.bad\] router must be one of off, agree, on"):
        load_config(path)
    path.write_text("[presets.bad]\nverify = 1\n")
    with pytest.raises(ConfigError, match='verify must be true, false or "auto"'):
        load_config(path)
