"""Handing a reply from the decode thread to the UI in batches.

The decode thread must never wait on the UI: `call_from_thread` per token blocks it, and one
message per token floods the UI queue. Instead the thread adds each event to this buffer and
posts a single wake-up message only when the buffer goes from empty to non-empty. The UI
waits for the next frame (at most `FRAME_SECONDS` after its last drain), then drains
everything that arrived since in one go. So the UI renders at most ~30 times a second
whatever the token rate (less when rendering gets costly), and never falls behind by more
than one frame.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    GenerationStats,
    Notice,
    PromptProgress,
    TextDelta,
    ThinkingDelta,
    TurnsDropped,
)


@dataclass
class ReplyBatch:
    """Everything that happened since the last drain."""

    text: str = ""
    thinking: str = ""
    """A reasoning model's thinking that arrived (engine.events.ThinkingDelta)."""
    thinking_stats: GenerationStats | None = None
    """The figures as of the latest thinking: its token count and time."""
    stats: GenerationStats | None = None
    prompt_progress: PromptProgress | None = None
    dropped_messages: int = 0
    notices: list[str] = field(default_factory=list)
    """Things to say in the transcript before the reply (engine.events.Notice)."""
    finished: Finished | None = None
    error: str | None = None

    @property
    def ends_reply(self) -> bool:
        return self.finished is not None or self.error is not None


# Each drain costs a render of the block being written and a repaint; on a 2-core machine
# that time is taken from the decode thread, so fewer, larger updates mean more tok/s.
FRAME_SECONDS = 1 / 30
# While a reply streams the UI thread may use this share of a core; when rendering costs
# more, drains are spaced further apart. On a 2-core VM, 0.1 gives 8-10 drains a second and
# keeps decoding within a few percent of the bare binding; 0.25 cost 8-12% of the decode
# speed (bench/decode_speed.py --what-if budget=F measures the effect).
UI_CPU_BUDGET = 0.1
# However long the UI was busy (a resize renders every reply again), the reply does not
# stand still for longer than this.
MAX_FRAME_SECONDS = 0.5


@dataclass
class ReplyBuffer:
    wake: Callable[[], object]
    """Called (from the decode thread) when the buffer stops being empty; must not block."""
    clock: Callable[[], float] = time.monotonic
    """Spaces the drains (tests pass their own)."""
    ui_cpu_clock: Callable[[], float] = time.thread_time
    """The UI thread's CPU time, read on the UI thread (tests pass their own)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _parts: list[str] = field(default_factory=list)
    _thinking: list[str] = field(default_factory=list)
    _pending: ReplyBatch | None = None
    _last_drain: float = 0.0
    _ui_cpu_at_last_drain: float = 0.0
    _waiting: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
    """Set while the UI waits for the next frame, so the end of a reply can cut the wait short."""

    def push(self, event: GenerationEvent) -> None:
        with self._lock:
            was_empty = self._pending is None
            batch = self._pending = self._pending or ReplyBatch()
            match event:
                case TextDelta(text=text, stats=stats):
                    self._parts.append(text)
                    batch.stats = stats
                case ThinkingDelta(text=text, stats=stats):
                    self._thinking.append(text)
                    batch.stats = batch.thinking_stats = stats
                case PromptProgress(stats=stats):
                    batch.prompt_progress = event
                    batch.stats = stats
                case TurnsDropped(messages=count):
                    batch.dropped_messages += count
                case Notice(text=text):
                    batch.notices.append(text)
                case Finished(stats=stats):
                    batch.finished = event
                    batch.stats = stats
            waiting = self._waiting if batch.ends_reply else None
        self._announce(was_empty, waiting)

    def fail(self, message: str) -> None:
        with self._lock:
            was_empty = self._pending is None
            self._pending = self._pending or ReplyBatch()
            self._pending.error = message
            waiting = self._waiting
        self._announce(was_empty, waiting)

    def _announce(self, was_empty: bool, waiting: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None) -> None:
        """Wake the UI if the buffer was empty; if the reply ended while the UI waits for the
        next frame, end that wait (decode thread side, outside the lock)."""
        if was_empty:
            self.wake()
        if waiting is not None:
            loop, event = waiting
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed: the app is gone
                pass

    def seconds_to_next_frame(self) -> float:
        """How long the UI still waits before its next drain (0 or less: none).

        A frame is FRAME_SECONDS, stretched when the UI thread spent more than its budget
        of CPU since the last drain (rendering a long Markdown reply gets costlier), but
        never beyond MAX_FRAME_SECONDS.
        """
        ui_cpu = self.ui_cpu_clock() - self._ui_cpu_at_last_drain
        frame = min(max(FRAME_SECONDS, ui_cpu / UI_CPU_BUDGET), MAX_FRAME_SECONDS)
        return self._last_drain + frame - self.clock()

    async def drain_next_frame(self) -> ReplyBatch | None:
        """Wait for the next frame, then drain (UI side). The end of a reply is shown at once."""
        wait = self.seconds_to_next_frame()
        if wait > 0:
            hurry = asyncio.Event()
            with self._lock:
                # The end of the reply is shown at once, even when it arrives during the wait.
                finishing = self._pending is not None and self._pending.ends_reply
                self._waiting = None if finishing else (asyncio.get_running_loop(), hurry)
            if not finishing:
                try:
                    await asyncio.wait_for(hurry.wait(), wait)
                except TimeoutError:
                    pass
                finally:
                    with self._lock:
                        self._waiting = None
        self._last_drain = self.clock()
        self._ui_cpu_at_last_drain = self.ui_cpu_clock()
        return self.drain()

    def drain(self) -> ReplyBatch | None:
        with self._lock:
            batch, self._pending = self._pending, None
            parts, self._parts = self._parts, []
            thinking, self._thinking = self._thinking, []
        if batch is not None:
            batch.text = "".join(parts)
            batch.thinking = "".join(thinking)
        return batch
