"""ReplyBuffer: the hand-over from the decode thread to the UI, with a real thread.

The frames are measured on clocks the tests move (the buffer takes them as arguments), and
what happens is told by order and content, so the tests pass on a loaded machine.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from llama_tui.engine.events import Finished, GenerationEvent, GenerationStats, StopReason, TextDelta
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


class FakeClock:
    """A clock that moves only when the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stopped_clocks() -> tuple[ReplyBuffer, FakeClock, FakeClock]:
    """A buffer on clocks of its own: the time since the last drain and the UI's CPU time
    are what the test says, however busy the machine."""
    clock, ui_cpu = FakeClock(1_000_000.0), FakeClock(0.0)
    return ReplyBuffer(wake=lambda: None, clock=clock, ui_cpu_clock=ui_cpu), clock, ui_cpu


async def done_after_loop_turns(task: asyncio.Task[object], turns: int = 100) -> bool:
    """Let the event loop go round up to `turns` times (no clock involved); whether `task` is done."""
    for _ in range(turns):
        if task.done():
            break
        await asyncio.sleep(0)
    return task.done()


def push_from_the_decode_thread(buffer: ReplyBuffer, event: GenerationEvent) -> None:
    thread = threading.Thread(target=buffer.push, args=(event,))
    thread.start()
    thread.join()  # pushed: the order of what follows does not depend on timing


async def test_the_end_of_a_reply_cuts_the_wait_for_the_next_frame_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI spaces drains by its CPU budget; the last text must not wait out that pause."""
    monkeypatch.setattr(reply_buffer, "FRAME_SECONDS", 3600.0)  # a frame that nothing here waits out
    monkeypatch.setattr(reply_buffer, "MAX_FRAME_SECONDS", 3600.0)
    buffer, _, _ = stopped_clocks()
    buffer.push(TextDelta("first", STATS))
    assert (await buffer.drain_next_frame()).text == "first"  # type: ignore[union-attr]
    buffer.push(TextDelta(" second", STATS))
    drain = asyncio.create_task(buffer.drain_next_frame())
    try:
        assert not await done_after_loop_turns(drain)  # waiting for the next frame
        push_from_the_decode_thread(buffer, TextDelta(" third", STATS))
        assert not await done_after_loop_turns(drain)  # more text waits for the frame too
        push_from_the_decode_thread(buffer, Finished(StopReason.END, "first second third", STATS))
        assert await done_after_loop_turns(drain)  # the end is drained at once
    finally:
        drain.cancel()
    batch = drain.result()
    assert batch is not None and batch.text == " second third" and batch.finished is not None


async def test_a_frame_still_waits_when_nothing_ends() -> None:
    """Text alone is drained a frame after the last drain: that is what batches it."""
    buffer, clock, _ = stopped_clocks()
    frame = reply_buffer.FRAME_SECONDS
    buffer.push(TextDelta("a", STATS))
    await buffer.drain_next_frame()
    buffer.push(TextDelta("b", STATS))
    assert buffer.seconds_to_next_frame() == pytest.approx(frame)
    clock.now += frame / 2
    push_from_the_decode_thread(buffer, TextDelta("c", STATS))
    assert buffer.seconds_to_next_frame() == pytest.approx(frame / 2)  # more text does not shorten it
    # The drain waits out that half frame on the event loop's timer (the fake clock stands still).
    batch = await buffer.drain_next_frame()
    assert batch is not None and batch.text == "bc" and batch.finished is None
    assert buffer.seconds_to_next_frame() == pytest.approx(frame)  # and the next frame starts


async def test_a_busy_ui_does_not_stop_the_reply_for_long() -> None:
    """Drains are spaced by the UI's CPU since the last one; a burst of other UI work (a
    resize renders every reply again) must not hold the reply still for seconds."""
    buffer, clock, ui_cpu = stopped_clocks()
    budget, frame = reply_buffer.UI_CPU_BUDGET, reply_buffer.FRAME_SECONDS
    buffer.push(TextDelta("a", STATS))
    await buffer.drain_next_frame()
    ui_cpu.now += 3 * frame * budget  # UI work worth three frames at the budget
    assert buffer.seconds_to_next_frame() == pytest.approx(3 * frame)
    ui_cpu.now = 0.4  # 0.4 s of UI CPU: the budget would ask for 4 s
    assert buffer.seconds_to_next_frame() == pytest.approx(reply_buffer.MAX_FRAME_SECONDS)
    clock.now += reply_buffer.MAX_FRAME_SECONDS
    assert buffer.seconds_to_next_frame() == pytest.approx(0)  # due now, not in 3.5 s
    buffer.push(TextDelta("b", STATS))
    batch = await buffer.drain_next_frame()
    assert batch is not None and batch.text == "b"
