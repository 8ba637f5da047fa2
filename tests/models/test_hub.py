"""Pulling from a hub-shaped local server (HF_ENDPOINT) with the real huggingface-hub client."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.errors import PullError
from moa_local.models import catalog
from moa_local.models.catalog import HfSource
from moa_local.models.store import HUB_DOWNLOAD_DIR, ModelStore
from tests.hub_fake import FakeHub, HubFile, running_hub
from tests.models.test_store import Bars, catalog_entry

REPO = "someone/Tiny-Instruct-GGUF"
FILENAME = "tiny-instruct-q4_k_m.gguf"
DATA = b"GGUF" + bytes(range(256)) * 16000  # about 4 MB: several 1 MiB blocks


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with running_hub() as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield running


def hub_entry(size: int | None = None) -> catalog.CatalogEntry:
    return catalog_entry("hub-model", HfSource(REPO, FILENAME, size=size))


def test_a_hub_download_is_verified_against_the_published_sha256(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.add(REPO, FILENAME, HubFile(DATA))
    store = ModelStore(tmp_path / "home")
    model = hub_entry(len(DATA))
    bars = Bars()
    manifest = store.pull(model, bars)
    assert store.path_for(model).read_bytes() == DATA
    assert manifest.source == "hf"
    assert manifest.sha256 == hashlib.sha256(DATA).hexdigest()
    # one bar for the model, moved by the hub client's download, nothing else
    assert bars.totals == [len(DATA)] and bars.done == len(DATA)
    assert sorted(p.name for p in store.directory_for(model).iterdir()) == [
        "hub-model.gguf",
        "manifest.json",
    ]


def test_a_file_that_differs_from_the_published_sha256_is_refused(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.add(REPO, FILENAME, HubFile(DATA, published_sha256="ab" * 32))
    store = ModelStore(tmp_path / "home")
    model = hub_entry()
    with pytest.raises(PullError, match="failed verification"):
        store.pull(model)
    assert not store.path_for(model).exists()
    # the bad download is not kept for a resume either
    assert not (store.directory_for(model) / HUB_DOWNLOAD_DIR).exists()


class StopHalfway(Bars):
    """Interrupts the download (as Ctrl-C would) once half the file has arrived."""

    def update(self, n: int) -> None:
        super().update(n)
        if self.done >= len(DATA) // 2:
            raise KeyboardInterrupt


def test_an_interrupted_hub_download_resumes_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(REPO, FILENAME, HubFile(DATA))
    store = ModelStore(tmp_path / "home")
    model = hub_entry()
    with pytest.raises(KeyboardInterrupt):
        store.pull(model, StopHalfway())
    assert not store.path_for(model).exists()
    kept = store.directory_for(model) / HUB_DOWNLOAD_DIR
    assert kept.exists()  # the partial download waits for the next pull
    bars = Bars()
    store.pull(model, bars)
    assert store.path_for(model).read_bytes() == DATA
    # the second pull asked only for the rest
    (asked,) = hub.ranges
    assert int(asked.split("=")[1].rstrip("-")) >= len(DATA) // 4
    assert not kept.exists()


def test_models_marks_what_this_machine_can_reach(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = catalog.CATALOG["llama3.2-1b"]
    (source,) = entry.sources
    assert isinstance(source, HfSource)
    hub.add(source.repo, source.filename, HubFile(b"GGUF"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # and no find-links: pypi is not reachable
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["llama3.2-1b"]["reachable"] == "hf"
    assert rows["mistral-7b"]["reachable"] == "no"  # the fake hub does not hold it
    assert rows["smollm2-135m"]["reachable"] == "no"


def test_the_catalog_has_the_well_known_instruct_models() -> None:
    wanted = {
        "llama3.2-1b": "llama3.2:1b",
        "llama3.2-3b": "llama3.2:3b",
        "mistral-7b": "mistral:7b",
        "qwen2.5-1.5b": "qwen2.5:1.5b",
        "qwen2.5-3b": "qwen2.5:3b",
        "qwen2.5-7b": "qwen2.5:7b",
        "gemma3-1b": "gemma3:1b",
    }
    for name, tag in wanted.items():
        entry = catalog.CATALOG[name]
        assert entry.ollama_tag == tag and entry.chat
        assert entry.quantization == "Q4_K_M" and entry.size > 100_000_000
        assert entry.parameters > 900_000_000
        assert any(isinstance(s, HfSource) and s.filename.endswith(".gguf") for s in entry.sources)
