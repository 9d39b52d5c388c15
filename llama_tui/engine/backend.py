"""The one interface the UI uses to talk to a model, wherever it runs.

`LoadedModel` (llama.cpp in this process) and `RemoteModel` (any OpenAI-compatible server)
implement it; the UI, its messages and the status bar are typed against `ModelBackend` only.
A generation is a stream of the events in `engine.events`, whichever backend produces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import GenerationEvent
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import SamplingSettings


class PromptError(ValueError):
    """The prompt cannot be used; the message says why, for the user. Nothing was generated."""


class GenerationError(RuntimeError):
    """The reply could not be generated, or not to its end (a server dropped the connection);
    the message says why, for the user. Text already streamed stays."""


class ModelBusy(RuntimeError):
    """A reply is already being generated on this model."""


class ModelClosed(RuntimeError):
    """The model was closed (or replaced) and can no longer generate."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so the UI offers only that."""

    completion: bool = True
    """Raw text continuation (the Completion tab); servers without /v1/completions lack it."""
    seed: bool = True
    """The same seed gives the same reply."""
    sampling: frozenset[str] = field(default_factory=frozenset)
    """The SamplingSettings fields this backend applies; others are ignored (and said so)."""
    gpu_offload: bool = False
    """Layers can be offloaded to a GPU by this app (a server decides for itself)."""
    exact_figures: bool = True
    """Token counts and times come from the engine itself, not estimated by the client."""
    thinking_switch: bool = False
    """Thinking can be turned off for a reply (the template takes enable_thinking)."""


class ModelBackend(Protocol):
    """A model ready to chat. Thread use: chat()/complete() are called on the UI thread and
    the returned iterator is consumed on one worker thread; cancel() may come from any thread."""

    @property
    def ref(self) -> ModelRef:
        """Which model this is (recent models and history record it)."""

    @property
    def name(self) -> str:
        """The name shown to the user."""

    @property
    def context_size(self) -> int:
        """Tokens the context holds."""

    @property
    def context_used(self) -> int:
        """Tokens in the context now (or as of the last reply, for a server)."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def description(self) -> str:
        """A line about how it runs, for the status bar's info (e.g. the chat template and why)."""

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        *,
        seed: int | None = None,
        prefill: str = "",
        enable_thinking: bool = True,
        thinking_budget: int | None = None,
    ) -> Iterator[GenerationEvent]:
        """Stream the assistant's reply (`prefill`: the start of a reply to continue). The seed
        is sampling.seed unless `seed` is given. Raises ModelBusy/ModelClosed at once; errors
        while streaming are raised from the iterator (PromptError, GenerationError: a message
        for the user). Close the iterator, or run it to the end, to free the model."""

    def complete(self, text: str, sampling: SamplingSettings, *, seed: int | None = None) -> Iterator[GenerationEvent]:
        """Stream a continuation of `text` (only if capabilities.completion)."""

    def cancel(self) -> None:
        """Stop the reply being generated, as soon as possible."""

    def count_tokens(self, text: str) -> int | None:
        """Tokens in `text`, or None when the backend cannot tell."""

    def clear_context(self) -> bool:
        """Forget the conversation held in the context (a new chat); whether it did."""

    def close(self) -> None:
        """Stop any reply, wait for it to end, free everything. Idempotent."""
