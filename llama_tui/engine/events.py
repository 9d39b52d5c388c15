"""What a generation reports while it runs: plain data, safe to hand to any thread."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from llama_tui.engine.thinking import ThinkingMarkers


class StopReason(Enum):
    END = "end"
    """The model ended its turn (an end-of-generation token or a stop string)."""
    LENGTH = "length"
    """The reply reached the max reply tokens setting."""
    CONTEXT_FULL = "context full"
    """No room was left in the context."""
    CANCELLED = "stopped"
    """The user stopped it."""


@dataclass(frozen=True)
class GenerationStats:
    """Figures for one reply, from llama.cpp's counters and the engine's own clock."""

    prompt_tokens: int = 0
    """Tokens in the whole prompt, including the part reused from the KV cache."""
    prompt_evaluated: int = 0
    """Prompt tokens evaluated for this reply: the rest came from the KV cache."""
    prompt_seconds: float = 0.0
    """llama.cpp's time for evaluating them (t_p_eval)."""
    llama_prompt_tokens: int = 0
    """llama.cpp's n_p_eval: tokens it evaluated in batches for this reply."""
    time_to_first_token: float | None = None
    """Seconds from the request to the first token of the reply."""
    generated_tokens: int = 0
    decode_seconds: float = 0.0
    """Wall time between the first and the latest token of the reply."""
    context_used: int = 0
    """Tokens in the context (KV cache) now."""
    context_size: int = 0
    llama_eval_tokens: int = 0
    """Tokens llama.cpp evaluated while generating this reply (drafted ones included)."""
    llama_eval_seconds: float = 0.0
    """llama.cpp's compute time for them (its t_eval, and t_p_eval for batches of several
    tokens), without sampling overhead."""
    drafted_tokens: int = 0
    """Speculative decoding: drafted tokens the model verified."""
    accepted_tokens: int = 0
    """Speculative decoding: drafted tokens it accepted, which became part of the reply."""

    @property
    def prompt_tokens_per_second(self) -> float | None:
        if self.prompt_evaluated < 1 or self.prompt_seconds <= 0:
            return None
        return self.prompt_evaluated / self.prompt_seconds

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed as the user sees it: tokens after the first, over the time they took."""
        if self.generated_tokens < 2 or self.decode_seconds <= 0:
            return None
        return (self.generated_tokens - 1) / self.decode_seconds

    @property
    def acceptance_rate(self) -> float | None:
        """The share of drafted tokens accepted; None when nothing was drafted."""
        if self.drafted_tokens < 1:
            return None
        return self.accepted_tokens / self.drafted_tokens


@dataclass(frozen=True)
class PromptProgress:
    """Prompt evaluation has reached `done` of `total` new tokens."""

    done: int
    total: int
    stats: GenerationStats


@dataclass(frozen=True)
class TurnsDropped:
    """The oldest chat turns did not fit the context and were left out of the prompt."""

    messages: int
    """How many messages (user and assistant) were left out."""


@dataclass(frozen=True)
class Notice:
    """Something the user should know about this reply, said in the transcript (e.g. the
    model's chat template failed and a built-in one was used instead)."""

    text: str


@dataclass(frozen=True)
class ThinkingFormat:
    """How this chat reply marks its thinking, for a thinking.ThinkingSplitter: sent before
    the first TextDelta of a chat reply from a model that has thinking markers."""

    markers: ThinkingMarkers
    opened_in_prompt: bool
    """The prompt ended with the open marker: the reply starts inside the thinking."""


@dataclass(frozen=True)
class TextDelta:
    text: str
    stats: GenerationStats


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of a reasoning model's thinking, sent apart from the answer (a server's
    `reasoning_content`): shown folded, kept out of Finished.text, never sent back."""

    text: str
    stats: GenerationStats


@dataclass(frozen=True)
class Finished:
    reason: StopReason
    text: str
    """The whole reply (its answer, when its thinking is told apart)."""
    stats: GenerationStats
    thinking: str = ""
    """A reasoning model's thinking, when told apart from the answer."""


GenerationEvent = PromptProgress | TurnsDropped | Notice | ThinkingFormat | TextDelta | ThinkingDelta | Finished
