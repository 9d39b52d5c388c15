"""Handing a reply from the decode thread to the UI in batches.

The decode thread must never wait on the UI: `call_from_thread` per token blocks it, and one
message per token floods the UI queue. Instead the thread adds each event to this buffer and
posts a single wake-up message only when the buffer goes from empty to non-empty. The UI
drains everything that arrived since, in one go, so the faster tokens come the bigger the
batches get, and the UI never falls behind by more than one render.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    GenerationStats,
    PromptProgress,
    TextDelta,
    TurnsDropped,
)


@dataclass
class ReplyBatch:
    """Everything that happened since the last drain."""

    text: str = ""
    stats: GenerationStats | None = None
    prompt_progress: PromptProgress | None = None
    dropped_messages: int = 0
    finished: Finished | None = None
    error: str | None = None


@dataclass
class ReplyBuffer:
    wake: Callable[[], object]
    """Called (from the decode thread) when the buffer stops being empty; must not block."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _parts: list[str] = field(default_factory=list)
    _pending: ReplyBatch | None = None

    def push(self, event: GenerationEvent) -> None:
        with self._lock:
            was_empty = self._pending is None
            batch = self._pending = self._pending or ReplyBatch()
            match event:
                case TextDelta(text=text, stats=stats):
                    self._parts.append(text)
                    batch.stats = stats
                case PromptProgress(stats=stats):
                    batch.prompt_progress = event
                    batch.stats = stats
                case TurnsDropped(messages=count):
                    batch.dropped_messages += count
                case Finished(stats=stats):
                    batch.finished = event
                    batch.stats = stats
        if was_empty:
            self.wake()

    def fail(self, message: str) -> None:
        with self._lock:
            was_empty = self._pending is None
            self._pending = self._pending or ReplyBatch()
            self._pending.error = message
        if was_empty:
            self.wake()

    def drain(self) -> ReplyBatch | None:
        with self._lock:
            batch, self._pending = self._pending, None
            parts, self._parts = self._parts, []
        if batch is not None:
            batch.text = "".join(parts)
        return batch
