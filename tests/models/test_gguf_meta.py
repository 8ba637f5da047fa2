"""The GGUF header reader: the facts moa-local needs before loading a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_local.errors import ModelError
from moa_local.models.gguf_meta import read_metadata
from tests.tiny_gguf import CHATML_TEMPLATE


def test_reads_architecture_template_context_and_parameters(tiny_model: Path) -> None:
    metadata = read_metadata(tiny_model)
    assert metadata.architecture == "llama"
    assert metadata.chat_template == CHATML_TEMPLATE
    assert metadata.context_length == 4096
    assert metadata.array_lengths["tokenizer.ggml.tokens"] == 259
    # 2 layers of width 64 with 4 heads / 2 KV heads, n_ff 128, 259-token vocabulary
    embeddings = 2 * 259 * 64
    attention = 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64)
    ffn = 2 * 3 * 64 * 128
    norms = 2 * 2 * 64 + 64
    assert metadata.parameter_count == embeddings + attention + ffn + norms


def test_model_without_template(templateless_model: Path) -> None:
    assert read_metadata(templateless_model).chat_template is None


def test_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("definitely not a model")
    with pytest.raises(ModelError, match="is not a GGUF model file"):
        read_metadata(path)


def test_a_truncated_gguf(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_model.read_bytes()[:2000])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        read_metadata(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        read_metadata(tmp_path / "absent.gguf")
