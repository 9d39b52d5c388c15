"""Long conversations in the chat pane: only the last WINDOW messages are mounted at first;
scrolling up (or ↑ through the messages) mounts earlier ones before them, keeping the widgets
already shown, the reader's place and the focus; sending keeps the messages shown.

Tests assert what is mounted and where, never how long it takes (bench/long_chat.py times it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from llama_tui.engine.config import AppConfig
from llama_tui.engine.conversation import Conversation
from llama_tui.launch import LaunchOptions
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_messages import AssistantMessage, UserMessage
from llama_tui.ui.chat_pane import WINDOW
from tests.scripted_model import ScriptedModel
from tests.test_app import SIZE, tiny_options, wait_for
from tests.test_history_app import chat_turns, earlier_notice, history_file, message_widgets, ready, stored

# -- helpers (the others are tests/test_history_app.py's) ------------------------------------------


def persisting(model: Path, **overrides: Any) -> LaunchOptions:
    """Options of an app that keeps its history (under LLAMA_TUI_HOME)."""
    overrides.setdefault("saved_config", AppConfig())
    return tiny_options(model, **overrides)


def long_chat(messages: int = 500) -> Conversation:
    """A conversation saved as the app saves it: "question 0", "answer 1", "question 2"..."""
    with history_file() as store:
        conversation = Conversation()
        store.create(conversation)
        for n in range(messages):
            if n % 2 == 0:
                message = conversation.add("user", f"question {n}")
            else:
                message = conversation.add("assistant", f"answer {n}", model_name="Tiny", stop_reason="end")
            store.add_message(conversation.id, message)
        return conversation


@contextlib.asynccontextmanager
async def resumed(model: Path, messages: int) -> AsyncIterator[tuple[LlamaApp, Pilot, Conversation]]:
    """The app resuming a saved conversation of `messages` messages (long_chat), once its last
    WINDOW of messages is mounted."""
    chat = long_chat(messages)
    app = LlamaApp(persisting(model, resume=chat.id))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == WINDOW)
        yield app, pilot, chat


def scripted(app: LlamaApp, *parts: str) -> ScriptedModel:
    """Let a ScriptedModel stand in for the loaded model."""
    model = ScriptedModel(list(parts), name="scripted")
    app.model = model  # type: ignore[assignment]
    return model


def widget_text(widget: Any) -> str:
    return str(widget.text)


def top_in_view(app: LlamaApp) -> str:
    """The text of the first message at least partly in view in the transcript."""
    transcript = app.chat_pane.transcript_view
    for widget in message_widgets(app):
        if widget.region.bottom > transcript.region.y:
            return widget_text(widget)
    return ""


async def focus_message(pilot: Pilot) -> UserMessage | AssistantMessage:
    """From the message box, shift+tab reaches the last message."""
    app = pilot.app
    app.query_one("#chat-input", ChatInput).focus()
    await pilot.press("shift+tab")
    await pilot.pause()
    focused = app.focused
    assert isinstance(focused, (UserMessage, AssistantMessage)), focused
    return focused


# -- the window ----------------------------------------------------------------------------------------


async def test_a_long_conversation_mounts_its_last_messages_and_more_on_scrolling_up(tiny_model: Path) -> None:
    async with resumed(tiny_model, 500) as (app, pilot, _chat):
        await pilot.pause()
        assert [widget_text(w) for w in message_widgets(app)][-1] == "answer 499"
        assert widget_text(message_widgets(app)[0]) == f"question {500 - WINDOW}"
        assert earlier_notice(app) == f"⋯ {500 - WINDOW} earlier messages: scroll up to see them"
        transcript = app.chat_pane.transcript_view
        assert transcript.scroll_y == transcript.max_scroll_y > 0  # the last screen is shown

        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2 * WINDOW)
        await pilot.pause()
        assert widget_text(message_widgets(app)[0]) == f"question {500 - 2 * WINDOW}"
        assert earlier_notice(app) == f"⋯ {500 - 2 * WINDOW} earlier messages: scroll up to see them"

        # Scrolling down a little and up again, as a wheel does, mounts the next ones.
        transcript.scroll_to(y=5, animate=False)
        await pilot.pause()
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 3 * WINDOW)


async def test_sending_in_a_long_conversation_keeps_the_messages_shown_and_the_app_running(tiny_model: Path) -> None:
    async with resumed(tiny_model, 500) as (app, pilot, chat):
        model = scripted(app)
        for turn in range(3):
            last_shown = message_widgets(app)[-1]
            await chat_turns(pilot, model, (f"question {500 + 2 * turn}", f"answer {501 + 2 * turn}"))
            assert last_shown in message_widgets(app)  # still mounted: only the new ones were added
        assert len(model.asked[-1]) == 505  # the whole conversation, not only what is mounted
        assert widget_text(message_widgets(app)[-1]) == "answer 505"
    assert len(stored(chat.id).branch()) == 506


async def test_scrolling_up_a_long_conversation_keeps_the_readers_place(tiny_model: Path) -> None:
    async with resumed(tiny_model, 500) as (app, pilot, _chat):
        await pilot.pause()
        first = message_widgets(app)[0]
        transcript = app.chat_pane.transcript_view
        transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2 * WINDOW)
        await pilot.pause()
        assert first in message_widgets(app)  # kept, not made again
        assert top_in_view(app) == f"question {500 - WINDOW}"  # what was at the top is still there


async def test_up_through_the_messages_mounts_earlier_ones(tiny_model: Path) -> None:
    async with resumed(tiny_model, 200) as (app, pilot, _chat):
        await focus_message(pilot)
        for _ in range(WINDOW):
            await pilot.press("up")
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2 * WINDOW)


async def test_up_through_the_messages_keeps_the_focus_on_a_message(tiny_model: Path) -> None:
    async with resumed(tiny_model, 200) as (app, pilot, _chat):
        await focus_message(pilot)
        for _ in range(WINDOW + 10):
            await pilot.press("up")
            await pilot.pause()
            assert isinstance(app.focused, (UserMessage, AssistantMessage)), app.focused
        # Each ↑ moved up one message, but for those pressed while the earlier ones were not
        # mounted yet (none, when the view reached the top and mounted them first).
        assert widget_text(app.focused) in (f"answer {200 - WINDOW - 11}", f"question {200 - WINDOW - 10}",
                                            f"answer {200 - WINDOW - 9}")


async def test_a_long_conversation_opens_with_its_last_screenful_then_the_rest_of_the_window_in_order(
        tiny_model: Path, monkeypatch: Any) -> None:
    """Only what fills the screen is made before the first frame; the rest of the window is
    mounted above it afterwards, and ends up the same as if it had all been mounted at once."""
    from llama_tui.ui.chat_pane import ChatPane

    first_render: list[int] = []
    render_branch = ChatPane._render_branch

    async def counted(self: ChatPane, **kwargs: Any) -> None:
        await render_branch(self, **kwargs)
        first_render.append(len(self._message_widgets()))

    monkeypatch.setattr(ChatPane, "_render_branch", counted)
    async with resumed(tiny_model, 500) as (app, pilot, _chat):
        await pilot.pause()
        assert 2 <= first_render[0] < WINDOW
        assert [widget_text(w) for w in message_widgets(app)] == [
            f"question {n}" if n % 2 == 0 else f"answer {n}" for n in range(500 - WINDOW, 500)]
        assert earlier_notice(app) == f"⋯ {500 - WINDOW} earlier messages: scroll up to see them"
        transcript = app.chat_pane.transcript_view
        assert transcript.scroll_y == transcript.max_scroll_y > 0


async def test_sending_after_scrolling_far_up_unmounts_all_but_the_last_window(tiny_model: Path) -> None:
    """A layout costs as much as there are widgets mounted: once more than two windows are,
    the next message sent leaves only the last window of them (and what follows)."""
    async with resumed(tiny_model, 300) as (app, pilot, _chat):
        transcript = app.chat_pane.transcript_view
        for windows in (2, 3):
            await pilot.pause()
            transcript.scroll_to(y=5, animate=False)
            await pilot.pause()
            transcript.scroll_home(animate=False)
            await wait_for(pilot, lambda windows=windows: len(message_widgets(app)) == windows * WINDOW)
        model = scripted(app)
        await chat_turns(pilot, model, ("question 300", "answer 301"))
        await pilot.pause()
        texts = [widget_text(w) for w in message_widgets(app)]
        assert texts[0] == f"answer {301 - WINDOW}" and texts[-2:] == ["question 300", "answer 301"]
        assert len(texts) == WINDOW + 1
        assert earlier_notice(app) == f"⋯ {301 - WINDOW} earlier messages: scroll up to see them"
        assert transcript.scroll_y == transcript.max_scroll_y
        assert len(model.asked[-1]) == 301  # the model still gets the whole conversation
