"""UI drain: does the screen keep up with a very fast model, and do keys stay responsive?

What: the tests' random-weight tiny model decodes thousands of tokens a second, far faster
than the UI can draw, through the real app (headless, real widgets). For each reply:

  lag      time from the engine's Finished event (pushed by the decode thread) to the first
           frame painted after the reply's last text is in the Markdown widget
  key      while the reply streams, a key ("x", typed into the chat input) is sent every
           ~50 ms as the terminal driver sends keys; latency is from sending it to the message box's
           Changed message being handled, and to the first frame painted after it

Why: the ReplyBuffer hands text over once per frame, so the screen should lag the model by
at most a frame or two (target < 100 ms) and typing should feel instant (p95 < 50 ms).

Instrumentation is from outside (wrapped methods), the app itself is unchanged.

    .venv/bin/python bench/ui_drain.py [--replies 3] [--tokens 8000] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import benchlib

APP_SIZE = (120, 40)


class Probe:
    """Timestamps from wrapped app methods: frames painted, the Finished push, the reply's end."""

    def __init__(self) -> None:
        self.finished_pushed: float | None = None
        self.reply_ended: float | None = None
        self.on_screen: float | None = None
        self.key_pressed: float | None = None
        self.key_handled: float | None = None
        self.key_latencies: list[float] = []
        self.key_frame_latencies: list[float] = []

    def frame(self) -> None:
        now = time.perf_counter()
        if self.reply_ended is not None and self.on_screen is None:
            self.on_screen = now
        if self.key_handled is not None and self.key_pressed is not None:
            self.key_frame_latencies.append(now - self.key_pressed)
            self.key_pressed = self.key_handled = None

    def message(self, message: object) -> None:
        from textual.widgets import TextArea

        if isinstance(message, TextArea.Changed) and self.key_pressed is not None and self.key_handled is None:
            self.key_handled = time.perf_counter()
            self.key_latencies.append(self.key_handled - self.key_pressed)


def instrument(probe: Probe):
    """Wrap ReplyBuffer.push, AssistantMessage.end and App._display; returns an undo function."""
    from llama_tui.engine.events import Finished
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_pane import AssistantMessage
    from llama_tui.ui.reply_buffer import ReplyBuffer

    push, end, display = ReplyBuffer.push, AssistantMessage.end, LlamaApp._display

    def timed_push(self, event):
        if isinstance(event, Finished):
            probe.finished_pushed = time.perf_counter()
        return push(self, event)

    def timed_end(self, *args, **kwargs):
        probe.reply_ended = time.perf_counter()
        return end(self, *args, **kwargs)

    def timed_display(self, screen, renderable):
        if renderable is not None and not self._batch_count:
            probe.frame()
        return display(self, screen, renderable)

    ReplyBuffer.push, AssistantMessage.end, LlamaApp._display = timed_push, timed_end, timed_display

    def undo() -> None:
        ReplyBuffer.push, AssistantMessage.end, LlamaApp._display = push, end, display

    return undo


def press_now(app, key: str) -> None:
    """Post a key event the way a terminal driver does. (Pilot.press would then wait for the
    process to go idle, up to 2 s, which it never does while a model decodes.)"""
    from textual import events

    app._driver.send_message(events.Key(key, key))


async def one_reply(path, tokens: int, threads: int) -> dict:
    from llama_tui.engine.settings import LoadSettings, SamplingSettings
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_input import ChatInput
    from llama_tui.ui.messages import ReplyReady

    probe = Probe()
    drain_cpu: list[float] = []  # the UI thread's CPU clock at each drain (the hook runs on it)

    def hook(message: object) -> None:
        if isinstance(message, ReplyReady):
            drain_cpu.append(time.thread_time())
        probe.message(message)

    options = LaunchOptions.opening(
        path,
        load=LoadSettings(n_ctx=2 * tokens + 256, n_threads=threads, n_threads_batch=threads),
        sampling=SamplingSettings(max_reply_tokens=tokens),
    )
    undo = instrument(probe)
    try:
        app = LlamaApp(options)
        async with app.run_test(size=APP_SIZE, message_hook=hook) as pilot:
            await benchlib.wait_until(lambda: app.model is not None)
            await benchlib.send_chat(pilot, "Tell me a long story.")
            chat_input = app.query_one("#chat-input", ChatInput)
            while app.generating:
                probe.key_pressed, probe.key_handled = time.perf_counter(), None
                press_now(app, "x")
                await asyncio.sleep(0.05)
            await benchlib.wait_until(lambda: probe.on_screen is not None, poll=0.01)
            stats = app.last_stats
            assert stats is not None and stats.generated_tokens == tokens, stats
            assert chat_input.text.strip("x") == "", "the key presses did not reach the input"
            lag = probe.on_screen - probe.finished_pushed  # type: ignore[operator]
            # UI CPU per drain cycle, early and late in the reply: growth means the cost of a
            # drain depends on how long the reply already is.
            cycles = [b - a for a, b in itertools.pairwise(drain_cpu)]
            fifth = max(1, len(cycles) // 5)
            return {
                "tokens": stats.generated_tokens,
                "tok_s": stats.tokens_per_second,
                "lag_seconds": lag,
                "drains": len(drain_cpu),
                "ui_ms_per_drain_first_fifth": benchlib.median(cycles[:fifth]) * 1000,
                "ui_ms_per_drain_last_fifth": benchlib.median(cycles[-fifth:]) * 1000,
                "key_latencies": probe.key_latencies,
                "key_frame_latencies": probe.key_frame_latencies,
            }
    finally:
        undo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=8000, help="tokens per reply (default 8000)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads; the tiny model is fastest on 1")
    args = parser.parse_args()
    benchlib.quiet_native_log()
    path = benchlib.tiny_model()

    replies = []
    for i in range(args.replies):
        replies.append(asyncio.run(one_reply(path, args.tokens, args.threads)))
        r = replies[-1]
        print(f"reply {i + 1}: {r['tokens']} tokens at {benchlib.fmt(r['tok_s'], 0)} tok/s, "
              f"{r['drains']} drains, lag {r['lag_seconds'] * 1000:.0f} ms, {len(r['key_latencies'])} key presses; "
              f"UI CPU per drain {r['ui_ms_per_drain_first_fifth']:.1f} ms early, "
              f"{r['ui_ms_per_drain_last_fifth']:.1f} ms late in the reply")

    keys = [x * 1000 for r in replies for x in r["key_latencies"]]
    key_frames = [x * 1000 for r in replies for x in r["key_frame_latencies"]]
    summary = {
        "tok_s": benchlib.median([r["tok_s"] for r in replies]),
        "lag_ms_median": benchlib.median([r["lag_seconds"] * 1000 for r in replies]),
        "lag_ms_max": max(r["lag_seconds"] * 1000 for r in replies),
        "key_presses": len(keys),
        "key_ms_p50": benchlib.percentile(keys, 50),
        "key_ms_p95": benchlib.percentile(keys, 95),
        "key_to_frame_ms_p50": benchlib.percentile(key_frames, 50),
        "key_to_frame_ms_p95": benchlib.percentile(key_frames, 95),
        "ui_ms_per_drain_first_fifth": benchlib.median([r["ui_ms_per_drain_first_fifth"] for r in replies]),
        "ui_ms_per_drain_last_fifth": benchlib.median([r["ui_ms_per_drain_last_fifth"] for r in replies]),
    }
    print()
    benchlib.print_table(
        ["measure", "median / p50", "max / p95", "target"],
        [
            ["lag: Finished → last text on screen (ms)", benchlib.fmt(summary["lag_ms_median"], 0),
             benchlib.fmt(summary["lag_ms_max"], 0), "< 100"],
            [f"key → handled, {len(keys)} presses (ms)", benchlib.fmt(summary["key_ms_p50"]),
             benchlib.fmt(summary["key_ms_p95"]), "p95 < 50"],
            ["key → next frame (ms)", benchlib.fmt(summary["key_to_frame_ms_p50"]),
             benchlib.fmt(summary["key_to_frame_ms_p95"]), ""],
            ["UI CPU per drain, first / last fifth of the reply (ms)",
             benchlib.fmt(summary["ui_ms_per_drain_first_fifth"]), benchlib.fmt(summary["ui_ms_per_drain_last_fifth"]),
             ""],
        ],
    )
    lag_ok = summary["lag_ms_max"] < 100
    key_ok = summary["key_ms_p95"] is not None and summary["key_ms_p95"] < 50
    print(f"\nlag target {'met' if lag_ok else 'NOT met'}; key p95 target {'met' if key_ok else 'NOT met'}; "
          f"tiny model at {benchlib.fmt(summary['tok_s'], 0)} tok/s through the app")
    for r in replies:
        r["key_latencies"] = [round(x, 5) for x in r["key_latencies"]]
        r["key_frame_latencies"] = [round(x, 5) for x in r["key_frame_latencies"]]
    out = benchlib.write_results("ui_drain", {
        "settings": vars(args), "summary": summary, "targets_met": {"lag": lag_ok, "key_p95": key_ok},
        "replies": replies,
    })
    print(f"results: {out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
