"""Load and sampling settings, with the defaults the command line and the UI share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from llama_tui.engine.drafting import SpeculativeMode

# The seed the original Rust CLI used; kept so runs stay reproducible across the two.
DEFAULT_SEED = 561371
# The Rust CLI had no context option and used the model's default; 4096 fits chat on
# small machines while leaving room for a long conversation.
DEFAULT_CONTEXT = 4096

OverrideValue = bool | int | float | str


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for generating tokens: all cores but one, which is left for the UI.

    llama.cpp's threads meet at a barrier after every step, so one thread losing its core
    (to the UI rendering the reply, or another program) stalls all of them: on a busy 2-core
    machine 2 threads decoded at 12-60 tok/s where 1 thread held 60.
    """
    return max(1, available_cores() - 1)


def default_batch_threads() -> int:
    # Prompt evaluation runs while the UI is idle, so it may use every core (never more).
    return available_cores()


@dataclass(frozen=True)
class LoadSettings:
    """What llama.cpp needs to load a model; changing any of these means reloading it."""

    n_ctx: int = DEFAULT_CONTEXT
    """Context length in tokens (the CLI's --max-token)."""
    n_gpu_layers: int = 0
    """Layers offloaded to the GPU; -1 offloads all. Needs a GPU build of llama.cpp."""
    n_threads: int = field(default_factory=default_threads)
    """Threads for generating tokens one at a time."""
    n_threads_batch: int = field(default_factory=default_batch_threads)
    """Threads for evaluating the prompt in batches."""
    seed: int = DEFAULT_SEED
    """Sampling seed: the same seed and prompt give the same reply."""
    chat_format: str | None = None
    """A built-in chat template name; None uses the file's own or picks by architecture."""
    overrides: dict[str, OverrideValue] = field(default_factory=dict)
    """GGUF metadata overrides (the CLI's -o KEY=VALUE)."""


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is chosen; these apply to the next reply without a reload."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_reply_tokens: int | None = None
    """Stop a reply after this many tokens; None lets it run until the context is full."""
    speculative: SpeculativeMode = "auto"
    """Speculative decoding by prompt lookup (engine.drafting): "on" drafts whenever the
    conversation holds a match, "auto" only while drafts are being accepted, "off" never.
    It never changes the reply, only how fast it comes."""


def parse_override(text: str) -> tuple[str, OverrideValue]:
    """Parse KEY=VALUE as the Rust CLI did: int, then float, then bool, else string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    for convert in (int, float):
        try:
            return key, convert(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return key, raw.lower() == "true"
    return key, raw
