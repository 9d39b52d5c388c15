"""Models a newcomer should try first: the Hugging Face tab's "Recommended" list.

A short, hand-picked table of well-known small chat GGUFs, each a file of a real Hugging Face
repository in a sensible quantization (Q4_K_M), with what a newcomer wants to know before
downloading: parameters, download size, memory needed, and whether it thinks before answering.
The picker shows it while its search box is empty, and downloads a row through the same
resumable path as a search result (engine.hub.download_gguf).

Memory needed: `memory_needed()` applies the app's one estimate rule
(`gguf_header.estimate_memory_for`, also behind the local list's figures) to the file size
and the model's published shape: file size + an f16 KV cache at the context length the model
will be loaded with (the context setting, 4096 by default) + llama.cpp's compute buffer for
one 512-token batch. Gemma 3 keeps most layers' KV cache to a 1024-token window, so its
figure is an over-estimate; the others are within a few per cent of what llama.cpp takes.

File sizes and shapes were taken from each repository's file listing and config.json (the
sizes are exact byte counts of those files); a repository that re-uploads a file changes
only its download size, which the download itself reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_tui.engine.gguf_header import MemoryEstimate, available_ram_bytes, estimate_memory_for

__all__ = ["RECOMMENDED", "Fit", "Recommended", "fit", "gib", "memory_needed"]


@dataclass(frozen=True)
class Recommended:
    name: str
    """What people call it: "Llama 3.2 1B Instruct"."""
    repo_id: str
    filename: str
    parameters: str
    """Parameter count as model cards write it: "1.2B"."""
    size_bytes: int
    """The file's exact size on the Hub: the download."""
    thinks: bool
    """A reasoning model: it thinks before it answers (ctrl+t turns that off for Qwen3)."""
    licence: str
    about: str
    """One line on why it is on the list."""
    # Its shape, from the model's config.json, for the memory estimate.
    blocks: int
    head_count: int
    head_count_kv: int
    head_dim: int
    vocab_size: int


RECOMMENDED: tuple[Recommended, ...] = (
    Recommended(
        "Llama 3.2 1B Instruct", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        "1.2B", 807_694_464, thinks=False, licence="Llama 3.2 Community",
        about="Meta's smallest chat model: quick on any CPU, good for short answers.",
        blocks=16, head_count=32, head_count_kv=8, head_dim=64, vocab_size=128_256,
    ),
    Recommended(
        "Gemma 3 1B it", "ggml-org/gemma-3-1b-it-GGUF", "gemma-3-1b-it-Q4_K_M.gguf",
        "1.0B", 806_058_240, thinks=False, licence="Gemma",
        about="Google's small chat model; many languages.",
        blocks=26, head_count=4, head_count_kv=1, head_dim=256, vocab_size=262_144,
    ),
    Recommended(
        "SmolLM2 1.7B Instruct", "bartowski/SmolLM2-1.7B-Instruct-GGUF", "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
        "1.7B", 1_055_609_824, thinks=False, licence="Apache-2.0",
        about="Hugging Face's fully open small model; English.",
        blocks=24, head_count=32, head_count_kv=32, head_dim=64, vocab_size=49_152,
    ),
    Recommended(
        "Qwen3 1.7B", "unsloth/Qwen3-1.7B-GGUF", "Qwen3-1.7B-Q4_K_M.gguf",
        "1.7B", 1_107_409_472, thinks=True, licence="Apache-2.0",
        about="Thinks before it answers (ctrl+t turns thinking off): better at maths and logic.",
        blocks=28, head_count=16, head_count_kv=8, head_dim=128, vocab_size=151_936,
    ),
    Recommended(
        "Llama 3.2 3B Instruct", "bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        "3.2B", 2_019_377_600, thinks=False, licence="Llama 3.2 Community",
        about="A capable all-rounder for a laptop; slower than the 1B ones.",
        blocks=28, head_count=24, head_count_kv=8, head_dim=128, vocab_size=128_256,
    ),
    Recommended(
        "Gemma 3 4B it", "ggml-org/gemma-3-4b-it-GGUF", "gemma-3-4b-it-Q4_K_M.gguf",
        "3.9B", 2_489_757_856, thinks=False, licence="Gemma",
        about="The best writer here; needs a few GB free.",
        blocks=34, head_count=8, head_count_kv=4, head_dim=256, vocab_size=262_208,
    ),
    Recommended(
        "Qwen3 4B", "unsloth/Qwen3-4B-GGUF", "Qwen3-4B-Q4_K_M.gguf",
        "4.0B", 2_497_281_312, thinks=True, licence="Apache-2.0",
        about="The strongest reasoner here; thinking makes its answers slow on a CPU.",
        blocks=36, head_count=32, head_count_kv=8, head_dim=128, vocab_size=151_936,
    ),
)


def memory_needed(model: Recommended, n_ctx: int, n_gpu_layers: int = 0) -> MemoryEstimate:
    """What loading `model` with an `n_ctx`-token context takes (see the module docstring)."""
    return estimate_memory_for(
        model.size_bytes, n_ctx,
        blocks=model.blocks, head_count=model.head_count, head_count_kv=model.head_count_kv,
        key_length=model.head_dim, value_length=model.head_dim, vocab_size=model.vocab_size,
        n_gpu_layers=n_gpu_layers,
    )


def gib(size: int) -> str:
    """Bytes in GiB, as memory is counted: 1_610_612_736 -> "1.5 GiB"."""
    return f"{size / 2**30:.1f} GiB"


@dataclass(frozen=True)
class Fit:
    needed: int
    """Bytes of RAM (the part not offloaded to a GPU)."""
    free: int | None
    """Bytes available now, None when the system does not say."""

    @property
    def fits(self) -> bool:
        return self.free is None or self.needed <= self.free

    @property
    def warning(self) -> str:
        """"" when it fits, else what to tell the user."""
        if self.fits:
            return ""
        assert self.free is not None
        return f"may not fit: {gib(self.needed)} needed, {gib(self.free)} free"


def fit(model: Recommended, n_ctx: int, n_gpu_layers: int = 0, free: int | None = None) -> Fit:
    """Whether `model` fits in the memory free now (`free`: bytes, else asked of the system)."""
    if free is None:
        free = available_ram_bytes()
    return Fit(memory_needed(model, n_ctx, n_gpu_layers).ram_bytes, free)
