"""ReplyBuffer: the hand-over from the decode thread to the UI, with a real thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llama_tui.engine.events import Finished, GenerationStats, StopReason, TextDelta
from llama_tui.ui import reply_buffer
from llama_tui.ui.reply_buffer import ReplyBuffer

STATS = GenerationStats(generated_tokens=1, context_size=64)


def test_one_wake_per_batch_and_the_text_is_joined_in_order() -> None:
    wakes: list[int] = []
    buffer = ReplyBuffer(wake=lambda: wakes.append(1))
    for part in ["a", "b", "c"]:
        buffer.push(TextDelta(part, STATS))
    assert len(wakes) == 1  # only the push into an empty buffer wakes the UI
    batch = buffer.drain()
    assert batch is not None and batch.text == "abc"
    assert buffer.drain() is None
    buffer.push(TextDelta("d", STATS))
    assert len(wakes) == 2


async def test_the_end_of_a_reply_cuts_the_wait_for_the_next_frame_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI spaces drains by its CPU budget; the last text must not wait out that pause."""
    monkeypatch.setattr(reply_buffer, "FRAME_SECONDS", 5.0)
    buffer = ReplyBuffer(wake=lambda: None)
    buffer.push(TextDelta("first", STATS))
    assert (await buffer.drain_next_frame()).text == "first"  # type: ignore[union-attr]
    buffer.push(TextDelta(" second", STATS))

    def finish_from_another_thread() -> None:
        time.sleep(0.2)
        buffer.push(Finished(StopReason.END, "first second", STATS))

    started = time.monotonic()
    threading.Thread(target=finish_from_another_thread).start()
    batch = await buffer.drain_next_frame()
    waited = time.monotonic() - started
    assert batch is not None and batch.text == " second" and batch.finished is not None
    assert 0.15 < waited < 2.0  # woken by the end, not by the 5 s frame


async def test_a_frame_still_waits_when_nothing_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reply_buffer, "FRAME_SECONDS", 0.3)
    buffer = ReplyBuffer(wake=lambda: None)
    buffer.push(TextDelta("a", STATS))
    await buffer.drain_next_frame()
    buffer.push(TextDelta("b", STATS))
    started = time.monotonic()
    batch = await asyncio.wait_for(buffer.drain_next_frame(), 5)
    assert batch is not None and batch.text == "b"
    assert time.monotonic() - started >= 0.25


async def test_a_busy_ui_does_not_stop_the_reply_for_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drains are spaced by the UI's CPU since the last one; a burst of other UI work (a
    resize renders every reply again) must not hold the reply still for seconds."""
    buffer = ReplyBuffer(wake=lambda: None)
    buffer.push(TextDelta("a", STATS))
    await buffer.drain_next_frame()
    busy_until = time.thread_time() + 0.4  # 0.4 s of UI CPU: 4 s at a tenth of a core
    while time.thread_time() < busy_until:
        pass
    buffer.push(TextDelta("b", STATS))
    started = time.monotonic()
    await buffer.drain_next_frame()
    assert time.monotonic() - started < reply_buffer.MAX_FRAME_SECONDS + 0.5  # not the 4 s the budget asks for
