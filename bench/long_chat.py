"""Long conversations in the app: opening one, the cost of a frame, scrolling, typing.

What: conversations of 10, 100 and 500 messages (user messages ~15 words; replies ~120 words
of Markdown with paragraphs, lists, some code blocks and headings; lognormal lengths, the
words of history_scale.py) are written into a real SQLite history (engine/store.py) in a
temporary LLAMA_TUI_HOME, and the real app runs headless at 120x40 with no model (opening,
scrolling and typing need none). In each run, for each length in turn (interleaved):

  open       from the Enter key on the conversation's row in the History screen (F7), sent
             as the terminal driver sends keys, to the end of the first frame painted with the
             end of the conversation's last message on screen and the transcript full above it
             (scrolled to its end, its content taller than the view): the History screen closing,
             the store read (a thread), the message widgets made, mounted, styled and laid out,
             and that frame drawn. Each open starts from a new, empty chat (ctrl+n).
  window     from the same key to the end of the last frame once the chat pane has mounted
             all it mounts at first (its window: the last 60 messages), if it mounts them
             after the first screen.
  frame      one frame: Textual's screen update (a layout when one is needed, the compositor
             rendering what changed) plus turning it into terminal output (render_segments,
             which the headless driver skips; done here and thrown away). Frames of:
             repaint    the whole screen repainted, nothing changed (screen.refresh())
             relayout   the whole screen laid out again and repainted (refresh(layout=True))
             stream     a new reply at the end of the transcript growing as the chat grows one
                        (AssistantMessage.append of ~40 characters, a drain's worth, then the
                        frames it causes); also the UI thread's CPU time per append
             scroll     page up --pages times, then page down as many, on the transcript (keys
                        sent as the driver sends them; its scroll animation included): every
                        frame drawn meanwhile, and key -> first frame with the transcript moved
  key        a letter typed into the message box every ~50 ms: key -> the box's Changed
             message, key -> the end of the first frame after it (p50/p95), with the
             conversation open, and with an empty chat ("0" in the table); and once more
             from the frame that shows the longest conversation on, as the rest of its window
             is mounted (opening it again)

Why: the issue "Conversations that last" asks that a conversation of 500 messages shows its
last screen within 300 ms, that scrolling and typing stay within the key-latency target
(p95 < 50 ms), and that a long transcript costs no more per frame than a short one. Tests
assert what makes that so (counts); the times are measured here.

Instrumentation wraps Textual's Screen._on_timer_update / _refresh_layout, the compositor's
render_update and App._display from outside; the app itself is unchanged. --profile runs
cProfile over the opens of the longest conversation and prints the top functions.

    .venv/bin/python bench/long_chat.py [--runs 5] [--lengths 10,100,500] [--pages 30]
                                        [--keys 40] [--profile] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import os
import pstats
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from history_scale import text_of, vocabulary

APP_SIZE = (120, 40)
CHUNK = 40
"""Characters appended per streaming step (~10 tokens: what a drain brings at ~100 tok/s)."""
STREAM_STEPS = 60
STEP_SECONDS = 0.1
"""A streaming step every 0.1 s, as the chat drains a reply 8-12 times a second."""
KEY_EVERY = 0.05
WINDOW = 60
"""Messages the chat pane mounts at first (llama_tui.ui.chat_pane.WINDOW)."""


# -- the conversations -------------------------------------------------------------------

class Words:
    """history_scale.py's vocabulary (common English words, then made-up ones, Zipf-ranked)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        self.cumulative: list[float] = []
        total = 0.0
        for rank in range(1, len(self.words) + 1):
            total += 1 / rank
            self.cumulative.append(total)

    def text(self, median_words: int) -> str:
        return text_of(self.rng, self.words, self.cumulative, median_words)

    def some(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)


def reply_markdown(words: Words) -> str:
    """A reply of ~120 words (median): paragraphs, and often a list, a code block or a heading."""
    rng = words.rng
    scale = rng.lognormvariate(0, 0.5)  # replies vary in length; the median stays ~120 words
    size = lambda n: max(1, round(n * scale))  # noqa: E731
    blocks = [words.text(size(35))]
    if rng.random() < 0.15:
        blocks.append("### " + " ".join(words.some(rng.randint(2, 5))).capitalize())
    if rng.random() < 0.45:
        marker = "-" if rng.random() < 0.6 else None
        items = [words.text(size(9)) for _ in range(rng.randint(3, 6))]
        blocks.append("\n".join(f"{marker or f'{n}.'} {item}" for n, item in enumerate(items, 1)))
    if rng.random() < 0.35:
        name, *args = (w.lower().strip("'") or "x" for w in words.some(4))
        lines = [f"def {name}({', '.join(args)}):"]
        for _ in range(rng.randint(3, 10)):
            left, call, arg = words.some(3)
            lines.append(f"    {left} = {call}({arg!r}, {rng.randint(0, 99)})")
        lines.append(f"    return {args[0] if args else 'None'}")
        blocks.append("```python\n" + "\n".join(lines) + "\n```")
    blocks.append(words.text(size(30)))
    if rng.random() < 0.3:
        blocks.append(words.text(size(20)))
    return "\n\n".join(blocks)


def generate(lengths: list[int], seed: int = 1) -> dict[int, str]:
    """One conversation per length (messages, alternating user and reply) in the history; their ids."""
    from llama_tui.engine.conversation import Conversation
    from llama_tui.engine.store import open_store

    words = Words(random.Random(seed))
    store, problem = open_store()
    assert problem is None, problem
    ids = {}
    for length in lengths:
        chat = Conversation()
        for n in range(length):
            if n % 2 == 0:
                chat.add("user", words.text(15))
            else:
                chat.add("assistant", reply_markdown(words), model_name="Gemma 3 270m", stop_reason="end")
        store.create(chat)
        ids[length] = chat.id
    assert store.flush(timeout=60)
    store.close()
    return ids


# -- watching frames -------------------------------------------------------------------

@dataclass
class Frame:
    start: float
    cpu_start: float = field(default_factory=time.thread_time)
    end: float = 0.0
    cpu: float = 0.0
    """The UI thread's CPU time in the frame (moves less than wall time with other load)."""
    layout: float = 0.0
    render: float = 0.0
    output: float = 0.0
    painted: bool = False
    checks: float = 0.0
    """Time spent in this benchmark's own checks inside the frame (taken off its cost)."""

    @property
    def ms(self) -> float:
        return (self.end - self.start - self.checks) * 1000

    @property
    def cpu_ms(self) -> float:
        return (self.cpu - self.checks) * 1000


@dataclass
class Probe:
    frames: list[Frame] = field(default_factory=list)
    current: Frame | None = None
    on_paint: list[Callable[[float], None]] = field(default_factory=list)
    """Called after each painted frame of the main screen, with the time it was painted."""
    painted: asyncio.Event = field(default_factory=asyncio.Event)
    marks: dict[str, float] = field(default_factory=dict)
    """When the steps of opening a conversation happened (the first time each, since cleared)."""

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def frames_since(self, since: float) -> list[Frame]:
        return [f for f in self.frames if f.start >= since and f.painted]


def instrument(probe: Probe, app: Any) -> Callable[[], None]:
    """Wrap the frame's parts (Textual's screen update, layout, compositor, display); returns an undo."""
    from textual._compositor import Compositor
    from textual.screen import Screen

    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_pane import ChatPane

    timer_update, refresh_layout = Screen._on_timer_update, Screen._refresh_layout
    render_update, display = Compositor.render_update, LlamaApp._display
    history_chosen, show, render_branch = LlamaApp._history_chosen, ChatPane.show_conversation, ChatPane._render_branch

    def marked_history_chosen(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.mark("history closed")
        return history_chosen(self, *args, **kwargs)

    def marked_show(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.mark("conversation loaded")
        return show(self, *args, **kwargs)

    async def marked_render_branch(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.mark("render_branch started")
        try:
            return await render_branch(self, *args, **kwargs)
        finally:
            probe.mark("render_branch done")

    def framed(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if probe.current is not None:  # a layout inside a frame
                started = time.perf_counter()
                try:
                    return method(self, *args, **kwargs)
                finally:
                    probe.current.layout += time.perf_counter() - started
            frame = probe.current = Frame(time.perf_counter())
            try:
                if kind == "layout":
                    started = time.perf_counter()
                    result = method(self, *args, **kwargs)
                    frame.layout += time.perf_counter() - started
                    return result
                return method(self, *args, **kwargs)
            finally:
                frame.end, frame.cpu = time.perf_counter(), time.thread_time() - frame.cpu_start
                probe.current = None
                if frame.painted or frame.layout:
                    probe.frames.append(frame)

        return wrapper

    def timed_render_update(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return render_update(self, *args, **kwargs)
        finally:
            if probe.current is not None:
                probe.current.render += time.perf_counter() - started

    def timed_display(self: Any, screen: Any, renderable: Any) -> None:
        from textual._compositor import CompositorUpdate

        frame = probe.current
        if renderable is None or self._batch_count or frame is None:
            display(self, screen, renderable)
            return
        started = time.perf_counter()
        if isinstance(renderable, CompositorUpdate):  # what a terminal driver would write
            renderable.render_segments(self.console)
        frame.output += time.perf_counter() - started
        display(self, screen, renderable)
        frame.painted = True
        checking = time.perf_counter()
        if screen is self.screen and screen is app.screen_stack[0]:
            for callback in list(probe.on_paint):
                callback(checking)
            probe.painted.set()
        frame.checks += time.perf_counter() - checking

    Screen._on_timer_update = framed(timer_update, "update")  # type: ignore[method-assign]
    Screen._refresh_layout = framed(refresh_layout, "layout")  # type: ignore[method-assign]
    Compositor.render_update = timed_render_update  # type: ignore[method-assign]
    LlamaApp._display = timed_display  # type: ignore[method-assign]
    LlamaApp._history_chosen = marked_history_chosen  # type: ignore[method-assign]
    ChatPane.show_conversation = marked_show  # type: ignore[method-assign]
    ChatPane._render_branch = marked_render_branch  # type: ignore[method-assign]

    def undo() -> None:
        Screen._on_timer_update, Screen._refresh_layout = timer_update, refresh_layout  # type: ignore[method-assign]
        Compositor.render_update, LlamaApp._display = render_update, display  # type: ignore[method-assign]
        LlamaApp._history_chosen, ChatPane.show_conversation = history_chosen, show  # type: ignore[method-assign]
        ChatPane._render_branch = render_branch  # type: ignore[method-assign]

    return undo


def press_now(app: Any, key: str, character: str | None = None) -> float:
    """Post a key as the terminal driver does (Pilot.press would wait for the app to go idle)."""
    from textual import events

    sent = time.perf_counter()
    app._driver.send_message(events.Key(key, character))
    return sent


async def next_paint(probe: Probe, timeout: float = 5) -> None:
    probe.painted.clear()
    await asyncio.wait_for(probe.painted.wait(), timeout)


async def settle(probe: Probe, quiet: float = 0.15, timeout: float = 10) -> None:
    """Wait until no frame has been drawn for `quiet` seconds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        last = probe.frames[-1].end if probe.frames else 0.0
        if time.perf_counter() - last >= quiet:
            return
        await asyncio.sleep(quiet / 3)


def end_on_screen(app: Any, message_id: str) -> bool:
    """Whether the frame just painted shows the conversation's last screen: the end of the
    message `message_id`, the last one, with the transcript full above it (its messages
    taller than the view, scrolled to the end), so a pane that mounts the last few messages
    first counts only once they fill the screen."""
    from llama_tui.ui.chat_pane import ChatPane

    screen = app.screen
    pane = screen.query_one(ChatPane) if screen is app.screen_stack[0] else None
    if pane is None:
        return False
    widgets = pane._message_widgets()
    if not widgets or getattr(widgets[-1], "message_id", None) != message_id:
        return False
    seen = screen._compositor.visible_widgets.get(widgets[-1])
    if seen is None:
        return False
    region, clip = seen
    transcript = pane.transcript_view
    all_mounted = not screen.query("#chat-earlier")
    full = transcript.scroll_y >= transcript.max_scroll_y and (transcript.max_scroll_y > 0 or all_mounted)
    return bool(region) and region.bottom <= clip.bottom and full


# -- one run -------------------------------------------------------------------------------

def ms_stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": benchlib.percentile(values, 50), "p95": benchlib.percentile(values, 95),
            "max": max(values) if values else None, "n": len(values)}


async def open_from_history(pilot: Any, probe: Probe, conversation_id: str, last_id: str,
                            profiler: cProfile.Profile | None, type_while_filling: int = 0) -> dict[str, Any]:
    """Enter on the conversation's row in the History screen; ms to the frame showing its end.
    With `type_while_filling`, that many letters are typed from that frame on, as the rest
    of the window is mounted."""
    from textual.widgets import DataTable

    from llama_tui.ui.history_screen import HistoryScreen

    app = pilot.app
    await pilot.press("ctrl+n")
    await benchlib.wait_until(lambda: app.query("#chat-empty"))
    await pilot.press("f7")
    await benchlib.wait_until(lambda: isinstance(app.screen, HistoryScreen) and app.screen.rows)
    screen = app.screen
    row = [r.id for r in screen.rows].index(conversation_id)
    screen.query_one(DataTable).move_cursor(row=row)
    await pilot.pause()
    await settle(probe)
    done: list[float] = []

    def check(now: float) -> None:
        if not done and end_on_screen(app, last_id):
            done.append(now)

    probe.on_paint.append(check)
    probe.marks.clear()
    if profiler is not None:
        profiler.enable()
    cpu = time.thread_time()
    sent = press_now(app, "enter", "\r")
    try:
        await benchlib.wait_until(lambda: done, timeout=60, poll=0.005)
    finally:
        if profiler is not None:
            profiler.disable()
        probe.on_paint.remove(check)
    cpu = time.thread_time() - cpu
    frame = probe.frames[-1]
    steps = {name: (at - sent) * 1000 for name, at in sorted(probe.marks.items(), key=lambda item: item[1])}
    pane = app.chat_pane
    if type_while_filling:
        return {"keys": await type_keys(pilot, probe, type_while_filling, settle_first=False),
                "mounted_when_typed": len(pane._message_widgets())}
    await benchlib.wait_until(lambda: (not getattr(pane, "_filling", False) and not app.query("#chat-earlier"))
                              or len(pane._message_widgets()) >= WINDOW, timeout=60)
    await settle(probe)
    return {"open_ms": (frame.end - sent) * 1000, "open_cpu_ms": cpu * 1000, "frames": len(probe.frames_since(sent)),
            "window_ms": (probe.frames[-1].end - sent) * 1000, "steps_ms": steps}


async def idle_frames(probe: Probe, app: Any, layout: bool, count: int = 12) -> dict[str, list[float]]:
    costs: dict[str, list[float]] = {"frames": [], "frames_cpu": []}
    for _ in range(count):
        since = time.perf_counter()
        app.screen.refresh(layout=layout)
        await next_paint(probe)
        add_frames(costs, probe.frames_since(since))
        await asyncio.sleep(0.02)
    return costs


def add_frames(into: dict[str, list[float]], frames: list[Frame]) -> None:
    into.setdefault("frames", []).extend(f.ms for f in frames)
    into.setdefault("frames_cpu", []).extend(f.cpu_ms for f in frames)


async def stream_frames(pilot: Any, probe: Probe, text: str) -> dict[str, list[float]]:
    """A new reply at the end of the transcript grows by CHUNK characters a step."""
    from llama_tui.engine.conversation import Message, new_id
    from llama_tui.ui.chat_messages import AssistantMessage

    app = pilot.app
    transcript = app.chat_pane.transcript_view
    now = time.time()
    widget = AssistantMessage(Message(new_id(), None, "assistant", "", now, now), live=True)
    await transcript.mount(widget)
    await settle(probe)
    costs: dict[str, list[float]] = {"frames": [], "frames_cpu": [], "append": [], "step_cpu": []}
    for step in range(STREAM_STEPS):
        chunk = text[step * CHUNK:(step + 1) * CHUNK]
        since, cpu = time.perf_counter(), time.thread_time()
        widget.append(chunk)
        costs["append"].append((time.perf_counter() - since) * 1000)
        await next_paint(probe)
        await asyncio.sleep(max(0.0, STEP_SECONDS - (time.perf_counter() - since)))
        costs["step_cpu"].append((time.thread_time() - cpu) * 1000)
        add_frames(costs, probe.frames_since(since))
    widget.finish()
    await widget.remove()
    await settle(probe)
    return costs


async def scroll_frames(pilot: Any, probe: Probe, pages: int) -> dict[str, Any]:
    """Page up `pages` times, then down as many: every frame, and key -> first frame moved."""
    app = pilot.app
    pane = app.chat_pane
    transcript = pane.transcript_view
    transcript.focus()
    await settle(probe)
    started = time.perf_counter()
    latencies: list[float] = []
    mounted_most = 0
    for key in ["pageup"] * pages + ["pagedown"] * pages:
        before = transcript.scroll_y
        moved: list[float] = []

        def check(now: float, before: float = before, moved: list[float] = moved) -> None:
            if not moved and transcript.scroll_y != before:
                moved.append(now)

        probe.on_paint.append(check)
        sent = press_now(app, key)
        try:
            await benchlib.wait_until(lambda: moved, timeout=0.5, poll=0.005)  # noqa: B023
        except TimeoutError:
            pass  # at an end: nothing moves
        finally:
            probe.on_paint.remove(check)
        if moved:
            latencies.append((moved[0] - sent) * 1000)
        await benchlib.wait_until(lambda: transcript.scroll_y == transcript.scroll_target_y, timeout=5)
        await settle(probe, quiet=0.05)
        mounted_most = max(mounted_most, len(pane._message_widgets()))
    costs: dict[str, Any] = {"latencies": latencies, "mounted_most": mounted_most,
                             "back_at_end": transcript.scroll_y >= transcript.max_scroll_y}
    add_frames(costs, probe.frames_since(started))
    app.chat_pane.chat_input.focus()
    await settle(probe)
    return costs


async def type_keys(pilot: Any, probe: Probe, count: int, settle_first: bool = True) -> dict[str, list[float]]:
    """Letters typed into the message box, one every KEY_EVERY seconds."""
    app = pilot.app
    chat_input = app.chat_pane.chat_input
    chat_input.focus()
    chat_input.clear()
    if settle_first:
        await settle(probe)
    costs: dict[str, list[float]] = {"handled": [], "painted": [], "frames": [], "frames_cpu": []}
    for n in range(count):
        letter = "abcdefghij"[n % 10] if n % 6 else " "
        changed: list[float] = []
        shown: list[float] = []

        def on_paint(now: float, changed: list[float] = changed, shown: list[float] = shown) -> None:
            if changed and not shown:
                shown.append(now)

        probe.on_paint.append(on_paint)
        app._bench_changed = changed  # noted by the message hook
        sent = press_now(app, "space" if letter == " " else letter, letter)
        try:
            await benchlib.wait_until(lambda: shown, timeout=5, poll=0.002)  # noqa: B023
        finally:
            probe.on_paint.remove(on_paint)
        costs["handled"].append((changed[0] - sent) * 1000)
        costs["painted"].append((shown[0] - sent) * 1000)
        add_frames(costs, probe.frames_since(sent))
        await asyncio.sleep(max(0.0, KEY_EVERY - (time.perf_counter() - sent)))
    assert len(chat_input.text) == count, repr(chat_input.text)
    chat_input.clear()
    await settle(probe)
    return costs


async def one_run(ids: dict[int, str], last_ids: dict[int, str], texts: list[str], args: argparse.Namespace,
                  profiler: cProfile.Profile | None) -> dict[str, Any]:
    from textual.widgets import TextArea

    from llama_tui.engine.config import AppConfig
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp

    def hook(message: object) -> None:
        changed = getattr(app, "_bench_changed", None)
        if isinstance(message, TextArea.Changed) and changed is not None and not changed:
            changed.append(time.perf_counter())

    app = LlamaApp(LaunchOptions(saved_config=AppConfig()))
    probe = Probe()
    undo = instrument(probe, app)
    result: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    try:
        async with app.run_test(size=APP_SIZE, message_hook=hook) as pilot:
            await benchlib.wait_until(lambda: app.store.list(limit=1))  # the SQLite history is open
            await settle(probe)
            result["keys_0"] = await type_keys(pilot, probe, args.keys)
            for length in args.lengths:
                opened = await open_from_history(pilot, probe, ids[length], last_ids[length],
                                                 profiler if length == max(args.lengths) else None)
                pane = app.chat_pane
                result[f"open_{length}"] = {**opened, "mounted": len(pane._message_widgets())}
                result[f"keys_{length}"] = await type_keys(pilot, probe, args.keys)
                result[f"repaint_{length}"] = await idle_frames(probe, app, layout=False)
                result[f"relayout_{length}"] = await idle_frames(probe, app, layout=True)
                # The same reply at every length, so that only the transcript above it differs.
                result[f"stream_{length}"] = await stream_frames(pilot, probe, texts[0])
                result[f"scroll_{length}"] = await scroll_frames(pilot, probe, args.pages)
            longest = max(args.lengths)
            result["keys_opening"] = (await open_from_history(pilot, probe, ids[longest], last_ids[longest], None,
                                                              type_while_filling=args.keys))["keys"]
    finally:
        undo()
    result["load_after"] = os.getloadavg()[0]
    return result


# -- main ----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lengths", default="10,100,500", help="messages per conversation, comma-separated")
    parser.add_argument("--pages", type=int, default=30, help="page-up presses (then as many page-downs)")
    parser.add_argument("--keys", type=int, default=40, help="letters typed per conversation")
    parser.add_argument("--profile", action="store_true", help="cProfile the opens of the longest conversation")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="make the home (the history) here and keep it")
    args = parser.parse_args()
    args.lengths = [int(n) for n in args.lengths.split(",")]
    benchlib.quiet_native_log()

    home = args.keep or Path(tempfile.mkdtemp(prefix="long-chat-"))
    if args.keep and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["LLAMA_TUI_HOME"] = str(home)
    ids = generate(args.lengths)
    from llama_tui.engine.store import open_store

    store, _ = open_store()
    last_ids = {length: store.load(chat_id).branch()[-1].id for length, chat_id in ids.items()}
    store.close()
    words = Words(random.Random(2))
    texts = [reply_markdown(words) + "\n\n" + reply_markdown(words) for _ in range(3)]
    texts = [t for t in texts if len(t) >= CHUNK * STREAM_STEPS] or [" ".join(texts) * 2]
    texts = [(t * math.ceil(CHUNK * STREAM_STEPS / len(t)))[:CHUNK * STREAM_STEPS] for t in texts]

    profiler = cProfile.Profile() if args.profile else None
    runs = []
    for number in range(args.runs):
        turn = number % len(texts)  # another reply each run
        run = asyncio.run(one_run(ids, last_ids, texts[turn:] + texts[:turn], args, profiler))
        runs.append(run)
        print(f"run {number + 1}: load {run['load_before']:.1f} -> {run['load_after']:.1f}; open ms "
              + ", ".join(f"{n}: {run[f'open_{n}']['open_ms']:.0f}" for n in args.lengths), flush=True)

    summary = summarise(runs, args.lengths)
    print()
    print_summary(summary, args.lengths)
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    path = benchlib.write_results("long_chat", {
        "settings": {**vars(args), "keep": str(args.keep) if args.keep else None, "size": APP_SIZE,
                     "chunk_chars": CHUNK, "stream_steps": STREAM_STEPS},
        "targets": {"open_ms_500": 300, "key_ms_p95": 50, "frame_ms": "flat across lengths"},
        "summary": summary,
        "runs": [{k: v for k, v in run.items()} for run in runs],
    })
    print(f"results: {path.relative_to(benchlib.ROOT)}")
    if args.keep is None:
        shutil.rmtree(home, ignore_errors=True)


def summarise(runs: list[dict[str, Any]], lengths: list[int]) -> dict[str, Any]:
    """Medians over runs of each run's figure (p50/p95 within a run, then the median of those)."""
    def over_runs(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
        return benchlib.median([pick(run) for run in runs])

    def pct(key: str, name: str, q: float) -> float | None:
        return over_runs(lambda r: benchlib.percentile(r[key][name], q))

    def most(key: str, name: str) -> float | None:
        return over_runs(lambda r: max(r[key][name], default=None))

    summary: dict[str, Any] = {}
    for length in [0, *lengths]:
        figures: dict[str, Any] = {}
        keys = f"keys_{length}"
        for what in ("handled", "painted"):
            for q in (50, 95):
                figures[f"key_{what}_p{q}"] = over_runs(lambda r, k=keys, w=what, q=q: benchlib.percentile(r[k][w], q))
        if length:
            figures["open_ms"] = over_runs(lambda r, n=length: r[f"open_{n}"]["open_ms"])
            figures["open_ms_all"] = [round(r[f"open_{length}"]["open_ms"], 1) for r in runs]
            figures["window_ms"] = over_runs(lambda r, n=length: r[f"open_{n}"].get("window_ms"))
            figures["mounted"] = runs[0][f"open_{length}"]["mounted"]
            figures["open_cpu_ms"] = over_runs(lambda r, n=length: r[f"open_{n}"]["open_cpu_ms"])
            steps = runs[0][f"open_{length}"]["steps_ms"]
            figures["open_steps_ms"] = {step: over_runs(lambda r, n=length, s=step: r[f"open_{n}"]["steps_ms"].get(s))
                                        for step in steps}
            for kind in ("repaint", "relayout"):
                figures[f"{kind}_p50"] = over_runs(
                    lambda r, k=kind, n=length: benchlib.percentile(r[f"{k}_{n}"]["frames"], 50))
                figures[f"{kind}_cpu_p50"] = over_runs(
                    lambda r, k=kind, n=length: benchlib.percentile(r[f"{k}_{n}"]["frames_cpu"], 50))
            stream = f"stream_{length}"
            figures["stream_frame_p50"] = pct(stream, "frames", 50)
            figures["stream_frame_p95"] = pct(stream, "frames", 95)
            figures["stream_frame_cpu_p50"] = pct(stream, "frames_cpu", 50)
            figures["stream_step_cpu_p50"] = pct(stream, "step_cpu", 50)
            figures["append_p50"] = pct(stream, "append", 50)
            scroll = f"scroll_{length}"
            figures["scroll_frame_p50"] = pct(scroll, "frames", 50)
            figures["scroll_frame_p95"] = pct(scroll, "frames", 95)
            figures["scroll_frame_max"] = most(scroll, "frames")
            figures["scroll_frame_cpu_p50"] = pct(scroll, "frames_cpu", 50)
            figures["scroll_frame_cpu_max"] = most(scroll, "frames_cpu")
            figures["scroll_key_p50"] = pct(scroll, "latencies", 50)
            figures["scroll_key_p95"] = pct(scroll, "latencies", 95)
            figures["scroll_mounted_most"] = runs[0][scroll]["mounted_most"]
        summary[str(length)] = figures
    summary["keys_opening"] = {f"key_{what}_p{q}": pct("keys_opening", what, q)
                               for what in ("handled", "painted") for q in (50, 95)}
    summary["load_average"] = [benchlib.median([r["load_before"] for r in runs]),
                               benchlib.median([r["load_after"] for r in runs])]
    return summary


def print_summary(summary: dict[str, Any], lengths: list[int]) -> None:
    f = benchlib.fmt
    rows = []
    for length in lengths:
        s = summary[str(length)]
        rows.append([
            length, s["mounted"], f"{f(s['open_ms'], 0)} / {f(s.get('window_ms'), 0)}",
            f(s["repaint_p50"]), f(s["relayout_p50"]),
            f"{f(s['stream_frame_p50'])} / {f(s['stream_frame_p95'])}", f(s["stream_step_cpu_p50"]),
            f"{f(s['scroll_frame_p50'])} / {f(s['scroll_frame_p95'])} / {f(s['scroll_frame_max'], 0)}",
            f"{f(s['scroll_key_p50'])} / {f(s['scroll_key_p95'])}",
            f"{f(s['key_painted_p50'])} / {f(s['key_painted_p95'])}",
        ])
    empty = summary["0"]
    rows.append(["0 (new chat)", 0, "", "", "", "", "", "", "",
                 f"{f(empty['key_painted_p50'])} / {f(empty['key_painted_p95'])}"])
    benchlib.print_table(
        ["messages", "mounted", "open / window ms", "repaint ms", "relayout ms", "stream frame p50/p95",
         "stream CPU/step", "scroll frame p50/p95/max", "page key→frame p50/p95", "typed key→frame p50/p95"],
        rows,
    )
    opening = summary["keys_opening"]
    print(f"\ntyped key→frame p50/p95 from the frame that shows the {max(lengths)} messages, while the rest of "
          f"the window is mounted: {f(opening['key_painted_p50'])} / {f(opening['key_painted_p95'])}")
    load = summary["load_average"]
    print(f"\nmedians over runs; ms. Load average (1 min) before / after a run, median: {f(load[0], 2)} / "
          f"{f(load[1], 2)}. Targets: open 500 < 300 ms; key p95 < 50 ms; frames flat across lengths.")


if __name__ == "__main__":
    main()
