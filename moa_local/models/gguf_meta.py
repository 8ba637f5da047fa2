"""Read the header of a GGUF file: its key/value metadata and tensor table.

``gguf.GGUFReader`` maps and decodes the whole file, including every vocabulary
string, which takes seconds on 150k-token vocabularies. Before loading a model
we only need a handful of facts (is it a GGUF at all, its architecture, context
length, whether it carries a chat template, how many parameters it has), so
this reader walks the header once, keeps scalar values and the lengths of
arrays, and stops after the tensor table. Results are cached by path, size
and modification time.

The layout (GGUF v2/v3, little-endian): magic ``GGUF``, uint32 version, uint64
tensor count, uint64 key/value count, the key/value pairs, then per tensor a
name, uint32 dimension count, uint64 dimensions, uint32 ggml type and uint64
offset.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ModelError

GGUF_MAGIC = b"GGUF"

# GGUF value types (gguf spec, GGUFValueType).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = 8, 9, 10, 11, 12

_SCALAR_FORMATS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}

# Keys whose string value we keep even though strings in arrays are skipped.
_MAX_KEPT_STRING = 1 << 20


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int

    @property
    def n_elements(self) -> int:
        """Number of values in the tensor."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class GGUFMetadata:
    """The parts of a GGUF header moa-local uses before loading a model."""

    path: Path
    version: int
    values: dict[str, Any]
    array_lengths: dict[str, int]
    tensors: tuple[TensorInfo, ...] = field(repr=False)

    @property
    def architecture(self) -> str:
        """``general.architecture``, e.g. ``llama`` or ``qwen2``."""
        return str(self.values.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        """A value of the architecture's namespace, e.g. ``arch_value("context_length")``."""
        return self.values.get(f"{self.architecture}.{key}", default)

    @property
    def context_length(self) -> int | None:
        """The context the model was trained for, when the file says."""
        value = self.arch_value("context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        """The Jinja chat template shipped in the file, if any."""
        template = self.values.get("tokenizer.chat_template")
        return str(template) if template else None

    @property
    def parameter_count(self) -> int:
        """Total number of weights, summed over the tensor table."""
        return sum(tensor.n_elements for tensor in self.tensors)


def read_metadata(path: str | os.PathLike[str]) -> GGUFMetadata:
    """Read a GGUF header, or raise :class:`ModelError` saying why the file is unusable."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {resolved}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {resolved}: {exc.strerror}") from None
    if not resolved.is_file():
        raise ModelError(f"model path is not a file: {resolved}")
    return _read_cached(resolved, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_cached(path: Path, size: int, mtime_ns: int) -> GGUFMetadata:
    del size, mtime_ns  # part of the cache key only
    try:
        with open(path, "rb") as handle:
            return _parse(path, handle)
    except (struct.error, UnicodeDecodeError, EOFError, MemoryError):
        raise ModelError(
            f"{path} is not a valid GGUF file (its header is truncated or corrupt)"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None


def _parse(path: Path, handle: BinaryIO) -> GGUFMetadata:
    magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes)"
        )
    (version,) = _unpack(handle, "<I")
    if version not in (2, 3):
        raise ModelError(f"{path}: unsupported GGUF version {version} (2 and 3 are supported)")
    tensor_count, kv_count = _unpack(handle, "<QQ")
    if kv_count > 1_000_000 or tensor_count > 10_000_000:
        raise ModelError(f"{path} is not a valid GGUF file (implausible header counts)")
    values: dict[str, Any] = {}
    array_lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = _read_string(handle)
        (value_type,) = _unpack(handle, "<I")
        if value_type == _ARRAY:
            array_lengths[key] = _skip_array(handle)
        else:
            values[key] = _read_scalar(handle, value_type)
    tensors = []
    for _ in range(tensor_count):
        name = _read_string(handle)
        (n_dims,) = _unpack(handle, "<I")
        if n_dims > 8:
            raise ModelError(f"{path} is not a valid GGUF file (tensor {name!r} has {n_dims} dims)")
        shape = _unpack(handle, f"<{n_dims}Q")
        (ggml_type,) = _unpack(handle, "<I")
        _unpack(handle, "<Q")  # data offset
        tensors.append(TensorInfo(name, tuple(shape), ggml_type))
    return GGUFMetadata(path, version, values, array_lengths, tuple(tensors))


def _unpack(handle: BinaryIO, fmt: str) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)


def _read_string(handle: BinaryIO) -> str:
    (length,) = _unpack(handle, "<Q")
    if length > _MAX_KEPT_STRING * 16:
        raise EOFError
    data = handle.read(length)
    if len(data) != length:
        raise EOFError
    return data.decode("utf-8")


def _read_scalar(handle: BinaryIO, value_type: int) -> Any:
    if value_type == _STRING:
        return _read_string(handle)
    fmt = _SCALAR_FORMATS.get(value_type)
    if fmt is None:
        raise EOFError
    return _unpack(handle, fmt)[0]


def _skip_array(handle: BinaryIO) -> int:
    item_type, length = _unpack(handle, "<IQ")
    if item_type == _STRING:
        for _ in range(length):
            (item_length,) = _unpack(handle, "<Q")
            handle.seek(item_length, os.SEEK_CUR)
    elif item_type == _ARRAY:
        for _ in range(length):
            _skip_array(handle)
    else:
        fmt = _SCALAR_FORMATS.get(item_type)
        if fmt is None:
            raise EOFError
        handle.seek(struct.calcsize(fmt) * length, os.SEEK_CUR)
    return int(length)
