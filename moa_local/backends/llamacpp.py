"""GGUF models in-process through llama-cpp-python: setting it up, and loading models.

Two modules make the backend. This one prepares the ``llama_cpp`` module once
per process (quiet logs, contexts of several sequences, no AMX tiles where
they would crash) and holds :class:`LlamaCppBackend`, which loads models and
accounts for their memory; :mod:`.llamacpp_generate` holds the class it
extends, which generates on the loaded models in worker threads.

Models load lazily on first use and stay loaded for reuse within the process.
Token counting for context budgeting uses a vocabulary-only load of the model
(a fraction of the weights' cost), so the engine can fit references before the
model itself is loaded.

Work shared between generations is reused (see :mod:`.reuse`): each loaded
model keeps KV snapshots of its finished sequences, bounded to one context's
worth of KV cache and counted in its memory estimate, and greedy requests
decode with prompt lookup. Several sampled requests for one model (the
samples of a Self-MoA layer) decode together, one batch per step (see
:mod:`.batched`). ``LlamaCppBackend(reuse=False)`` turns all of this off
and starts every generation from an empty context, the baseline that
``moa-local bench`` compares against.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ModelError
from ..machine.devices import (
    budget_for,
    detect_devices,
    nvidia_used_bytes,
    physical_cores,
    process_rss,
)
from ..machine.placement import gpu_layers_for
from ..models.estimate import NO_MEMORY, MemoryEstimate, ModelShape, shape_from_gguf
from ..models.estimate import estimate as estimate_memory
from ..models.gguf_meta import read_metadata
from ..models.references import ModelSpec
from .base import LoadReport, ModelInfo, now
from .batched import MAX_SEQUENCES
from .llamacpp_generate import LlamaCppGeneration, LoadedModel, greedy_twins, load_key
from .reuse import SnapshotStore, reusing_llama_class

__all__ = [
    "AMX_ENV",
    "INSTALL_HINT",
    "LlamaCppBackend",
    "LoadedModel",
    "amx_compiled",
    "extra_buffers_off",
    "gpu_offload_supported",
    "greedy_twins",
    "import_llama_cpp",
]

INSTALL_HINT = "pip install 'moa-local[llamacpp]'"


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or :class:`BackendUnavailable` naming the install command."""
    try:
        import llama_cpp
    except ImportError:
        raise BackendUnavailable(
            f"GGUF models need llama-cpp-python, which is not installed; run: {INSTALL_HINT}"
        ) from None
    _quiet_llama_logs(llama_cpp)
    _avoid_amx_tiles(llama_cpp)
    _allow_sequences(llama_cpp)
    return llama_cpp


# Sequences the next context created on this thread may hold (1: llama.cpp's default).
_load_settings = threading.local()
_sequences_patched = False


def _allow_sequences(llama_cpp: Any) -> None:
    """Let a load ask for a context of several sequences in one unified KV cache.

    ``Llama()`` takes no ``n_seq_max``, so its context parameters come from a
    wrapper of llama.cpp's defaults that reads the thread's load settings.
    The KV cache is unified: the sequences share the ``n_ctx`` cells instead
    of splitting them, so one sequence alone still has the whole context and
    the cache takes the memory it took with one sequence.
    """
    global _sequences_patched
    if _sequences_patched:
        return
    low = llama_cpp.llama_cpp
    defaults = low.llama_context_default_params
    if not hasattr(defaults(), "kv_unified"):
        return  # an older llama.cpp: one sequence per context

    def params_with_sequences() -> Any:
        params = defaults()
        sequences = getattr(_load_settings, "sequences", 1)
        if sequences > 1:
            params.n_seq_max = sequences
            params.kv_unified = True
        return params

    low.llama_context_default_params = params_with_sequences
    _sequences_patched = True


_log_callback: Any = None


def _quiet_llama_logs(llama_cpp: Any) -> None:
    """Keep llama.cpp's own log lines off the user's terminal (MOA_LOCAL_DEBUG=1 shows them).

    ``verbose=False`` does not silence everything (context warnings still
    print), so a no-op log callback is installed once per process.
    """
    global _log_callback
    if _log_callback is not None or os.environ.get("MOA_LOCAL_DEBUG"):
        return
    try:

        @llama_cpp.llama_log_callback
        def ignore(level: int, text: bytes, user_data: Any) -> None:
            return None

        llama_cpp.llama_log_set(ignore, None)
        _log_callback = ignore  # a reference keeps the C callback alive
    except AttributeError:  # an older llama-cpp-python without the log API
        _log_callback = False


AMX_ENV = "MOA_LOCAL_AMX"
_extra_buffers_off = False


def amx_compiled(llama_cpp: Any) -> bool:
    """Whether this llama.cpp build has Intel AMX matrix kernels compiled in."""
    try:
        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    except AttributeError:
        return False
    return "AMX_INT8 = 1" in info


def extra_buffers_off() -> bool:
    """Whether models load without llama.cpp's extra (AMX, repack) weight buffers."""
    return _extra_buffers_off


def _avoid_amx_tiles(llama_cpp: Any) -> None:
    """Load models without the AMX weight buffers when the build has AMX kernels.

    A llama.cpp compiled natively on a CPU that advertises AMX uses tile
    instructions for quantized matrix products of more than one token; in
    virtual machines that advertise AMX without enabling it, the first
    ``ldtilecfg`` is a general protection fault, which kills the process with
    a segmentation fault (seen on this project's 2-core build machines). The
    extra buffer types are the only route to those kernels, so they are
    turned off process-wide; this also gives up CPU weight repacking.
    ``MOA_LOCAL_AMX=1`` keeps them, for machines where AMX really works.
    """
    global _extra_buffers_off
    if _extra_buffers_off or os.environ.get(AMX_ENV) == "1" or not amx_compiled(llama_cpp):
        return
    low = llama_cpp.llama_cpp
    defaults = low.llama_model_default_params
    if not hasattr(defaults(), "use_extra_bufts"):
        return  # an older llama.cpp, without the switch

    def params_without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    # Llama() reads its model parameters from this module function.
    low.llama_model_default_params = params_without_extra_buffers
    _extra_buffers_off = True


def gpu_backends(info: str | None = None) -> list[str]:
    """The GPU backends this llama.cpp build has (CUDA, Metal, Vulkan...), from its system
    info line ("CUDA : ARCHS = 890 | ... | CPU : SSE3 = 1 | ...")."""
    if info is None:
        try:
            info = import_llama_cpp().llama_print_system_info().decode("utf-8", "replace")
        except AttributeError:
            return []
    names = re.findall(r"(?:^|\|)\s*([A-Za-z][\w-]*)\s*:", info)
    return [n for n in dict.fromkeys(names) if n.upper() in _GPU_BACKENDS]


_GPU_BACKENDS = {"CUDA", "METAL", "VULKAN", "HIP", "ROCM", "SYCL", "OPENCL", "MUSA", "CANN"}


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python was built with a GPU backend."""
    llama_cpp = import_llama_cpp()
    try:
        return bool(llama_cpp.llama_supports_gpu_offload())
    except AttributeError:
        return False


class LlamaCppBackend(LlamaCppGeneration):
    """Runs GGUF files with llama-cpp-python."""

    name = "llamacpp"

    def __init__(self, *, reuse: bool = True, lookup: bool = True, batch: bool = True) -> None:
        self.reuse = reuse
        self.lookup = lookup and reuse
        self.batch = batch and reuse
        self._llama_cpp = import_llama_cpp()
        self._models: dict[tuple[Any, ...], LoadedModel] = {}
        self._vocabularies: dict[Path, Any] = {}
        self._load_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self._vocab_lock = threading.Lock()
        self._gpu: str | None = None
        self._gpu_budget = 0  # bytes of the first GPU's budget, once it is looked up
        self._shapes: dict[Path, ModelShape] = {}

    # -- loading -------------------------------------------------------------

    def loaded(self) -> list[ModelSpec]:
        """Specs of the models currently loaded."""
        return [model.spec for model in self._models.values()]

    async def loaded_model(self, spec: ModelSpec) -> LoadedModel:
        """The loaded model for ``spec``, loading it on first use."""
        model = self._models.get(load_key(spec))
        if model is not None:
            return model
        return await asyncio.to_thread(self._load_once, spec)

    async def load(self, spec: ModelSpec) -> LoadReport:
        """Load ``spec`` (if it is not yet) and report the memory the load took."""
        if load_key(spec) in self._models:
            return LoadReport(seconds=0.0)
        gpu = self._gpu_device()
        gpu_before = nvidia_used_bytes() if gpu and gpu.startswith("cuda") else None
        rss_before = process_rss()
        model = await self.loaded_model(spec)
        measured = {"cpu": max(0, process_rss() - rss_before)}
        if gpu_before is not None:
            gpu_after = nvidia_used_bytes()
            if gpu_after is not None and gpu:
                measured[gpu] = max(0, gpu_after - gpu_before)
        return LoadReport(seconds=model.load_seconds, measured=measured)

    async def unload(self, spec: ModelSpec) -> None:
        """Free ``spec``'s weights, KV cache and context."""
        model = self._models.pop(load_key(spec), None)
        if model is not None:
            await asyncio.to_thread(_close_when_idle, model)

    async def estimate(self, spec: ModelSpec) -> MemoryEstimate:
        """Memory of a load of ``spec``, from its GGUF header (or the catalog's facts)."""
        return await asyncio.to_thread(self._estimate_blocking, spec)

    def _estimate_blocking(self, spec: ModelSpec) -> MemoryEstimate:
        shape = self._shape(spec)
        if shape is None:
            return NO_MEMORY
        gpu = self._gpu_device()
        return estimate_memory(
            shape,
            spec.n_ctx,
            gpu_device=gpu,
            gpu_layers=self._gpu_layers(spec) if gpu else 0,
            # KV snapshots may fill one context's worth of KV cache.
            snapshot_bytes=shape.kv_bytes(spec.n_ctx) if self.reuse else 0,
        )

    def compute_device(self, spec: ModelSpec) -> str | None:
        """CPU slots are taken unless the model runs wholly on a GPU."""
        gpu = self._gpu_device()
        return None if gpu and self._gpu_layers(spec) < 0 else "cpu"

    def _gpu_device(self) -> str | None:
        if self._gpu is None:
            gpus = [d for d in detect_devices() if d.kind != "cpu"]
            self._gpu_budget = budget_for(gpus[0]).bytes if gpus else 0
            self._gpu = gpus[0].name if gpus and gpu_offload_supported() else ""
        return self._gpu or None

    def _gpu_layers(self, spec: ModelSpec) -> int:
        """``n_gpu_layers`` as configured, else as many layers as the GPU's budget holds
        (all when the model fits; :mod:`moa_local.machine.placement`)."""
        if spec.n_gpu_layers is not None:
            return spec.n_gpu_layers
        if not gpu_offload_supported():
            return 0
        if self._gpu_device() is None:
            return -1  # a GPU NVML does not see (Metal, Vulkan): llama.cpp places it
        shape = self._shape(spec)
        if shape is None:
            return -1
        return gpu_layers_for(shape, spec.n_ctx, self._gpu_budget)

    def _shape(self, spec: ModelSpec) -> ModelShape | None:
        """The model's shape from its GGUF header (read once), else the catalog's."""
        if spec.path is not None and spec.path.exists():
            if spec.path not in self._shapes:
                self._shapes[spec.path] = shape_from_gguf(read_metadata(spec.path))
            return self._shapes[spec.path]
        if spec.catalog_entry is not None:
            return spec.catalog_entry.shape
        return None

    def _load_once(self, spec: ModelSpec) -> LoadedModel:
        # A thread lock (not an asyncio one) so that the backend can serve
        # several event loops, e.g. successive MoA.run_sync calls.
        key = load_key(spec)
        with self._registry_lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            model = self._models.get(key)
            if model is None:
                model = self._load_blocking(spec)
                self._models[key] = model
            return model

    def _load_blocking(self, spec: ModelSpec) -> LoadedModel:
        if spec.path is None:
            raise ModelError(f"model {spec.name!r} has no GGUF file")
        n_gpu_layers = self._gpu_layers(spec)
        threads = spec.n_threads or physical_cores()
        started = now()
        llama_class = reusing_llama_class(self._llama_cpp)
        _load_settings.sequences = MAX_SEQUENCES if self.batch else 1
        try:
            llama = llama_class(
                model_path=str(spec.path),
                n_ctx=spec.n_ctx,
                n_gpu_layers=n_gpu_layers,
                n_threads=threads,
                n_threads_batch=threads,
                chat_format=spec.chat_format,
                # Weights in anonymous memory: with mmap, llama.cpp's CPU
                # repacking keeps both the file pages and the repacked copy
                # resident (1.8 GB instead of 1.2 GB for Qwen2.5 1.5B Q4_K_M).
                use_mmap=False,
                # Sliding-window layers keep only window + batch tokens.
                swa_full=False,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"llama.cpp could not load {spec.name!r} from {spec.path}: the file is corrupt, "
                f"truncated, or of an architecture this llama-cpp-python does not support ({exc})"
            ) from None
        finally:
            _load_settings.sequences = 1
        if spec.chat_format is None and not llama.metadata.get("tokenizer.chat_template"):
            llama.close()
            raise ModelError(
                f"model {spec.name!r} has no chat template; set chat_format for it in models.toml"
            )
        if self.reuse:
            # The bound the scheduler budgeted for this load.
            llama.snapshots = SnapshotStore(self._estimate_blocking(spec).snapshots)
            llama.lookup = self.lookup
        else:
            llama.fresh_each_call = True
        with self._vocab_lock:  # the model's own tokenizer serves from now on
            vocab = self._vocabularies.pop(spec.path, None)
        if vocab is not None:
            vocab.close()
        return LoadedModel(spec, llama, threading.Lock(), now() - started, threads)

    def _vocabulary(self, spec: ModelSpec) -> Any:
        """A tokenizer for ``spec``: the loaded model's, else a vocabulary-only load."""
        model = self._models.get(load_key(spec))
        if model is not None:
            return model.llama
        assert spec.path is not None
        with self._vocab_lock:
            vocab = self._vocabularies.get(spec.path)
            if vocab is None:
                try:
                    vocab = self._llama_cpp.Llama(
                        model_path=str(spec.path),
                        vocab_only=True,
                        n_ctx=16,
                        n_batch=16,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ModelError(
                        f"llama.cpp could not read the vocabulary of {spec.name!r} "
                        f"({spec.path}): {exc}"
                    ) from None
                self._vocabularies[spec.path] = vocab
        return vocab

    # -- protocol ----------------------------------------------------------------

    async def count_tokens(self, model: ModelSpec, text: str) -> int:
        """Tokens ``text`` takes in the model's own vocabulary."""
        vocab = await asyncio.to_thread(self._vocabulary, model)
        tokens = vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return len(tokens)

    async def info(self, model: ModelSpec) -> ModelInfo:
        """The context size this model is (or will be) loaded with."""
        return ModelInfo(n_ctx=model.n_ctx, parameters=model.parameters)

    async def close(self) -> None:
        """Free every loaded model."""
        for model in self._models.values():
            with model.lock:
                model.llama.close()
        self._models.clear()
        for vocab in self._vocabularies.values():
            vocab.close()
        self._vocabularies.clear()


def _close_when_idle(model: LoadedModel) -> None:
    """Close ``model`` once no generation holds it (worker thread)."""
    with model.lock:  # waits for a generation still finishing on this model
        model.llama.close()
