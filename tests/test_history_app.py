"""Conversation history in the app, as a user meets it (issue 9): the history screen (F7),
resuming, actions on messages (regenerate, edit, continue, copy, delete), ↑ recall,
presets (F8), drafts, crash safety, a damaged or unusable history file, long
conversations, and the history/export/import commands.

Each test drives the app (Pilot, or a real process on a pty where one is needed) and checks
what the user sees or keeps: the screen, the clipboard, the history file, the config file.
No wall-clock thresholds: waits are for conditions, with generous time-outs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.containers import Horizontal
from textual.message import Message as TextualMessage
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, OptionList, TextArea

from llama_tui import cli
from llama_tui.engine.config import AppConfig, config_path, load_config
from llama_tui.engine.conversation import Conversation
from llama_tui.engine.drafts import load_draft
from llama_tui.engine.events import StopReason
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.presets import BUILT_IN
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.engine.store import (
    ConversationStore,
    SqliteStore,
    default_path,
    open_store,
)
from llama_tui.launch import LaunchOptions
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_messages import AssistantMessage, UserMessage
from llama_tui.ui.chat_pane import WINDOW
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.history_screen import HistoryScreen, RenameScreen
from llama_tui.ui.preset_screen import PresetScreen
from tests.scripted_model import ScriptedModel
from tests.terminal import LLAMA_TUI, Terminal, app_env
from tests.test_app import SIZE, reply_ended, said, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf

ROOT = Path(__file__).resolve().parent.parent


# -- helpers ------------------------------------------------------------------------------------


def persisting(model: Path | ModelRef | None, **overrides: Any) -> LaunchOptions:
    """Options of an app that keeps its history, drafts and settings (under LLAMA_TUI_HOME)."""
    overrides.setdefault("saved_config", AppConfig())
    return tiny_options(model, **overrides)


@contextmanager
def history_file() -> Iterator[ConversationStore]:
    """The history as the next run of the app sees it (the file under LLAMA_TUI_HOME)."""
    default_path().parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(default_path())
    try:
        yield store
    finally:
        assert store.flush(timeout=60)
        store.close()


def saved_chat(
    store: ConversationStore,
    *texts: str,
    model_name: str = "Tiny",
    model_ref: str = "",
    at: float | None = None,
    title: str = "",
) -> Conversation:
    """A conversation saved as the app saves it: created empty, then message by message
    (user, reply, user, reply...)."""
    conversation = Conversation(title=title)
    store.create(conversation)
    for number, text in enumerate(texts):
        if number % 2 == 0:
            message = conversation.add("user", text)
        else:
            message = conversation.add("assistant", text, model_name=model_name, model_ref=model_ref,
                                       stop_reason="end")
        store.add_message(conversation.id, message)
    if at is not None:
        conversation.updated_at = at
        store.update_conversation(conversation)
    return conversation


def stored(conversation_id: str) -> Conversation:
    with history_file() as store:
        return store.load(conversation_id)


def notes(seen: Sequence[TextualMessage]) -> list[str]:
    return [m.notification.message for m in seen if isinstance(m, Notify)]


def scripted(app: LlamaApp, *parts: str, name: str = "scripted") -> ScriptedModel:
    """Let a ScriptedModel stand in for the loaded model (the real one keeps its ref)."""
    model = ScriptedModel(list(parts), name=name)
    app.model = model  # type: ignore[assignment]
    return model


def rows(app: LlamaApp) -> list[list[str]]:
    """The history table as the user reads it: title, model, when, messages, match."""
    table = app.screen.query_one("#history-table", DataTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


def header(app: LlamaApp) -> str:
    """The chat's header line as shown: the title and preset, then how the model runs."""
    bar = app.query_one("#chat-header", Horizontal)
    return "  ".join(str(label.render()) for label in bar.query(Label))


def message_widgets(app: LlamaApp) -> list[UserMessage | AssistantMessage]:
    return list(app.query("UserMessage, AssistantMessage").results())  # type: ignore[arg-type]


def widget_text(widget: UserMessage | AssistantMessage) -> str:
    """The message's text (a reply's as shown, without leading white space)."""
    return widget.text


async def open_history(pilot: Pilot, key: str = "palette") -> HistoryScreen:
    """Open the history screen with the command palette (ctrl+p, "History"), or a key."""
    if key == "palette":
        await pilot.press("ctrl+p")
        await pilot.press(*"History")
        await wait_for(pilot, lambda: "History" in palette_options(pilot.app))
        await pilot.press("enter")
    else:
        await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen), timeout=10)
    screen = pilot.app.screen
    assert isinstance(screen, HistoryScreen)
    table = screen.query_one("#history-table", DataTable)
    await wait_for(pilot, lambda: not table.loading)
    return screen


def palette_options(app: Any) -> list[str]:
    """The commands the palette offers now (their names)."""
    try:
        options = app.screen.query_one(OptionList)
    except Exception:  # noqa: BLE001  not open yet
        return []
    return [str(options.get_option_at_index(n).prompt).split("\n")[0] for n in range(options.option_count)]


async def ready(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, LlamaApp)
    await wait_for(pilot, lambda: app.model is not None)
    await wait_for(pilot, lambda: not app.workers_in("store"))


async def focus_message(pilot: Pilot, steps_up: int = 0) -> UserMessage | AssistantMessage:
    """From the message box, shift+tab reaches the last message; ↑ goes to earlier ones."""
    app = pilot.app
    app.query_one("#chat-input", ChatInput).focus()
    await pilot.press("shift+tab")
    for _ in range(steps_up):
        await pilot.press("up")
    await pilot.pause()
    focused = app.focused
    assert isinstance(focused, (UserMessage, AssistantMessage)), focused
    return focused


def shown_when(timestamp: float) -> set[str]:
    """How the list shows a time: today as 14:02, this week as Mon 14:02, else the date."""
    local = time.localtime(timestamp)
    return {time.strftime("%H:%M", local), time.strftime("%a %H:%M", local), time.strftime("%Y-%m-%d", local)}


# -- the history screen -------------------------------------------------------------------------


async def test_history_lists_conversations_newest_first_with_title_model_date_and_count(tiny_model: Path) -> None:
    now = time.time()
    with history_file() as store:
        saved_chat(store, "How do tides work?", "The moon pulls the sea.", model_name="Oldie",
                   at=now - 40 * 86400)
        saved_chat(store, "Write a haiku about rain", "Drops on the roof", "Another one", "Puddles shine",
                   model_name="Tiny Poet", at=now - 120)
        saved_chat(store, "What is a monad?", "A monoid in the category of endofunctors.", model_name="Mathy",
                   at=now - 3 * 86400)
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_history(pilot)
        listed = rows(app)
        assert [row[0] for row in listed] == ["Write a haiku about rain", "What is a monad?", "How do tides work?"]
        assert [row[1] for row in listed] == ["Tiny Poet", "Mathy", "Oldie"]
        assert [row[3] for row in listed] == ["4", "2", "2"]
        assert listed[0][2] in shown_when(now - 120) and ":" in listed[0][2]
        assert listed[2][2] == time.strftime("%Y-%m-%d", time.localtime(now - 40 * 86400))
        assert "3 conversations" in str(app.screen.query_one("#history-status").render())


async def test_the_palette_has_a_history_entry(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "Palette question", "Palette answer")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_history(pilot, "palette")
        assert [row[0] for row in rows(app)] == ["Palette question"]


async def test_f7_in_the_message_box_opens_the_history(tiny_model: Path) -> None:
    """The message box has the focus when the app starts and after every message."""
    with history_file() as store:
        saved_chat(store, "Key question", "Key answer")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert isinstance(app.focused, ChatInput)
        await pilot.press(*"draft")
        await pilot.press("f7")
        await pilot.pause(0.5)
        assert isinstance(app.screen, HistoryScreen)


async def test_f7_on_a_message_opens_the_history(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        scripted(app, "Answer")
        await send_chat(pilot, "Question")
        await wait_for(pilot, lambda: reply_ended(app))
        await focus_message(pilot)
        screen = await open_history(pilot, "f7")
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        assert rows(app)[0][:2] == ["Question", "scripted"]


async def test_typing_in_the_history_searches_every_message_and_shows_the_matching_line(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "How do tides work?", "The moon pulls the sea twice a day, mostly.")
        saved_chat(store, "Write a haiku about rain", "Drops on the roof")
        saved_chat(store, "Another chat", "Nothing about the satellite here")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_history(pilot)
        await pilot.press(*"moon pull")
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        (row,) = rows(app)
        assert row[0] == "How do tides work?"  # the title, while the match is in the reply
        assert row[4] == "The moon pulls the sea twice a day, mostly."
        assert "matching “moon pull”" in str(screen.query_one("#history-status").render())
        await pilot.press(*" zebra")
        await wait_for(pilot, lambda: str(screen.query_one("#history-status").render()) == "Nothing matches.")
        assert rows(app) == []


async def test_enter_opens_a_conversation_and_the_next_message_continues_it(tiny_model: Path) -> None:
    with history_file() as store:
        chosen = saved_chat(store, "My name is Ada.", "Hello Ada!", at=time.time() - 100)
        saved_chat(store, "Unrelated", "Indeed")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_history(pilot)
        await pilot.press(*"Ada")
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert [widget_text(w) for w in message_widgets(app)] == ["My name is Ada.", "Hello Ada!"]
        assert "My name is Ada." in header(app)
        model = scripted(app, "You told me: Ada.")
        await send_chat(pilot, "What is my name?")
        await wait_for(pilot, lambda: reply_ended(app))
        assert [(m.role, m.content) for m in model.asked[-1]] == [
            ("user", "My name is Ada."), ("assistant", "Hello Ada!"), ("user", "What is my name?")]
        assert app.chat_pane.conversation.id == chosen.id
    again = stored(chosen.id)
    assert [m.text for m in again.branch()] == [
        "My name is Ada.", "Hello Ada!", "What is my name?", "You told me: Ada."]
    with history_file() as store:
        assert len(store.list()) == 2  # continued, not copied


async def test_the_tiny_model_is_given_the_opened_conversation(tiny_model: Path) -> None:
    """The same with the real tiny model: what it holds in its context is the opened chat."""
    with history_file() as store:
        chosen = saved_chat(store, "first question here", "first answer here")
    app = LlamaApp(persisting(tiny_model, sampling=SamplingSettings(max_reply_tokens=4)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_history(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        await send_chat(pilot, "second")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.model is not None
        # A reply of 4 tokens to a prompt holding the whole conversation (the template adds more).
        prompt = app.last_stats.prompt_tokens if app.last_stats else 0
        alone = app.model.count_tokens("first question here first answer here second")
        assert alone is not None and prompt > alone
    assert [m.text for m in stored(chosen.id).branch()][:3] == ["first question here", "first answer here", "second"]


async def open_conversation(pilot: Pilot, search: str) -> None:
    """History, a search that finds one conversation, Enter: it is on screen."""
    app = pilot.app
    assert isinstance(app, LlamaApp)
    screen = await open_history(pilot)
    await pilot.press(*search)
    await wait_for(pilot, lambda: len(screen.rows) == 1)
    wanted = screen.rows[0].id
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.chat_pane.conversation.id == wanted and bool(message_widgets(app)))


async def highlight(pilot: Pilot, screen: HistoryScreen, title: str) -> None:
    """↓ from the search box to the list, then ↓ to the row with this title."""
    await pilot.press("down")
    table = screen.query_one("#history-table", DataTable)
    assert screen.focused is table
    while screen.rows[table.cursor_row].title != title:
        assert table.cursor_row < len(screen.rows) - 1, f"no row {title!r}"
        await pilot.press("down")


async def test_the_title_is_the_start_of_the_first_message_until_renamed(tiny_model: Path) -> None:
    first = "Please help me plan a three day trip to Rome with two children who love ancient history and pizza"
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert header(app).startswith("New chat")
        scripted(app, "Day one: the Colosseum.")
        await send_chat(pilot, first)
        await wait_for(pilot, lambda: reply_ended(app))
        start = first[:60] + "…"
        assert header(app).startswith(start)
        scripted(app, "Day two: Ostia Antica.")
        await send_chat(pilot, "And the second day?")  # later messages do not change it
        await wait_for(pilot, lambda: reply_ended(app))
        assert header(app).startswith(start)
        screen = await open_history(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        assert rows(app)[0][0] == start and rows(app)[0][3] == "4"

        await highlight(pilot, screen, start)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen))
        assert app.screen.query_one(Input).value == start
        await pilot.press("ctrl+a", "ctrl+k", *"Rome with kids", "enter")
        await wait_for(pilot, lambda: app.screen is screen and rows(app) and rows(app)[0][0] == "Rome with kids")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        assert header(app).startswith("Rome with kids")  # the conversation on screen follows

        scripted(app, "Day three: the Vatican.")
        await send_chat(pilot, "And the third?")
        await wait_for(pilot, lambda: reply_ended(app))
        assert header(app).startswith("Rome with kids")
        conversation_id = app.chat_pane.conversation.id
    with history_file() as store:
        assert [s.title for s in store.list()] == ["Rome with kids"]
        assert store.load(conversation_id).title == "Rome with kids"


async def test_renaming_to_nothing_brings_back_the_first_message(tiny_model: Path) -> None:
    with history_file() as store:
        chat = saved_chat(store, "What is the tallest mountain?", "Everest.", title="Mountains")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_conversation(pilot, "tallest")
        assert header(app).startswith("Mountains")
        screen = await open_history(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        await highlight(pilot, screen, "Mountains")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press("ctrl+a", "ctrl+k", "enter")
        await wait_for(pilot, lambda: app.screen is screen and rows(app)[0][0] == "What is the tallest mountain?")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        assert header(app).startswith("What is the tallest mountain?")
    assert stored(chat.id).title == ""


async def test_escape_in_the_rename_dialog_keeps_the_title(tiny_model: Path) -> None:
    with history_file() as store:
        chat = saved_chat(store, "Keep my title", "Sure.", title="Precious")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_history(pilot)
        await highlight(pilot, screen, "Precious")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press(*" and more", "escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert rows(app)[0][0] == "Precious"
    assert stored(chat.id).title == "Precious"


async def test_delete_in_the_history_asks_first(tiny_model: Path) -> None:
    now = time.time()
    with history_file() as store:
        keep = saved_chat(store, "Keep this one", "Kept.", at=now - 10)
        doomed = saved_chat(store, "Delete this one", "Gone soon.", "More", "Even more", at=now - 20)
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_history(pilot)
        await highlight(pilot, screen, "Delete this one")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete this one" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: app.screen is screen)
        assert [row[0] for row in rows(app)] == ["Keep this one", "Delete this one"]
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and len(rows(app)) == 1)
        assert [row[0] for row in rows(app)] == ["Keep this one"]
        assert str(screen.query_one("#history-status").render()).startswith("1 conversation ·")
    with history_file() as store:
        assert [s.id for s in store.list()] == [keep.id]
        with pytest.raises(KeyError):
            store.load(doomed.id)
        assert store.list("Gone") == []


async def test_the_delete_key_in_the_search_box_deletes_a_character(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "A conversation", "A reply")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_history(pilot)
        await pilot.press(*"replyx", "left", "delete")
        await pilot.pause(0.3)
        assert app.screen is screen
        assert screen.query_one("#history-search", Input).value == "reply"


async def test_deleting_the_conversation_on_screen_says_it_is_no_longer_saved(tiny_model: Path) -> None:
    seen: list[TextualMessage] = []
    with history_file() as store:
        saved_chat(store, "A secret plan", "Noted.")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await ready(pilot)
        await open_conversation(pilot, "secret")
        screen = await open_history(pilot)
        await highlight(pilot, screen, "A secret plan")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and rows(app) == [])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        assert any("deleted from the history" in note and "no longer saved" in note for note in notes(seen))
        # What was on screen stays on screen.
        assert [widget_text(w) for w in message_widgets(app)] == ["A secret plan", "Noted."]
    with history_file() as store:
        assert store.list() == []


async def test_a_deleted_conversation_does_not_come_back_with_the_next_message(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "A secret plan", "Noted.")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_conversation(pilot, "secret")
        screen = await open_history(pilot)
        await highlight(pilot, screen, "A secret plan")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and rows(app) == [])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        assert "not saved" in header(app)
        scripted(app, "Fine.")
        await send_chat(pilot, "one more thing")
        await wait_for(pilot, lambda: reply_ended(app))
        assert said(app) == [("user", "A secret plan"), ("assistant", "Noted."),
                             ("user", "one more thing"), ("assistant", "Fine.")]  # it goes on, on screen
        assert "not saved" in header(app)
    with history_file() as store:
        texts = [m.text for s in store.list() for m in store.load(s.id).branch()]
        assert store.list() == []  # what follows is not saved either: the conversation is gone
    assert "A secret plan" not in texts


# -- starting: a new chat, the last one, or the one named -----------------------------------------


def options_as_cli(*argv: str) -> LaunchOptions:
    """The options `llama-tui ARGV` starts the app with (the settings file under LLAMA_TUI_HOME)."""
    args = cli.build_parser().parse_args(list(argv))
    saved, warnings = load_config()
    model, open_picker = cli.choose_model(args, saved)
    return cli.options_from_args(args, model, saved, open_picker=open_picker, config_warnings=warnings)


async def test_starting_with_no_conversation_named_opens_a_new_chat(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "An old conversation", "Still here.")
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert message_widgets(app) == []
        assert header(app).startswith("New chat")
        assert app.query_one("#chat-empty")
        scripted(app, "Hello.")
        await send_chat(pilot, "A new conversation")
        await wait_for(pilot, lambda: reply_ended(app))
        assert said(app) == [("user", "A new conversation"), ("assistant", "Hello.")]
    with history_file() as store:
        assert [s.title for s in store.list()] == ["A new conversation", "An old conversation"]


async def test_the_resume_last_setting_in_the_config_file_resumes_the_last_conversation(tiny_model: Path) -> None:
    now = time.time()
    with history_file() as store:
        saved_chat(store, "Older conversation", "Old reply.", at=now - 100)
        last = saved_chat(store, "The last conversation", "Last reply.", at=now - 10)
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("[chat]\nresume_last = true\n")
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert [widget_text(w) for w in message_widgets(app)] == ["The last conversation", "Last reply."]
        assert header(app).startswith("The last conversation")
        model = scripted(app, "Continued.")
        await send_chat(pilot, "go on")
        await wait_for(pilot, lambda: reply_ended(app))
        assert [m.content for m in model.asked[-1]] == ["The last conversation", "Last reply.", "go on"]
    assert [m.text for m in stored(last.id).branch()] == ["The last conversation", "Last reply.", "go on", "Continued."]


async def test_the_resume_last_setting_from_the_settings_panel_applies_at_the_next_start(tiny_model: Path) -> None:
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        scripted(app, "Noted, Ada.")
        await send_chat(pilot, "Remember: my name is Ada.")
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.press("f6")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen")
        switch = app.screen.query_one("#settings-resume_last")
        switch.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(switch, "value", None) is True)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ != "SettingsScreen")
    assert load_config()[0].settings.chat.resume_last is True
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert said(app) == [("user", "Remember: my name is Ada."), ("assistant", "Noted, Ada.")]


@pytest.fixture
def other_model(tmp_path: Path) -> Path:
    """A second tiny model with a name of its own, to tell which one is open."""
    return write_tiny_llama_gguf(tmp_path / "other.gguf", name="other-tiny")


async def test_resume_id_opens_the_conversation_with_its_model(tiny_model: Path, other_model: Path) -> None:
    with history_file() as store:
        chat = saved_chat(store, "Asked the other model", "Answered by it.", model_name="other-tiny",
                          model_ref=ModelRef.file(other_model).to_text(), at=time.time() - 50)
        saved_chat(store, "A later conversation", "Later.", model_name="tiny-test-llama")
    # No model named: the last model (tiny) would open; the conversation's own model replaces it.
    app = LlamaApp(persisting(tiny_model, resume=chat.id, model_named=False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "other-tiny")
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert said(app) == [("user", "Asked the other model"), ("assistant", "Answered by it.")]
        assert app.chat_pane.conversation.id == chat.id


async def test_resume_with_a_model_named_keeps_that_model(tiny_model: Path, other_model: Path) -> None:
    with history_file() as store:
        chat = saved_chat(store, "Asked the other model", "Answered by it.", model_name="other-tiny",
                          model_ref=ModelRef.file(other_model).to_text())
    app = LlamaApp(options_as_cli("--resume", "last", "local", str(tiny_model)))
    assert app.options.model_named and app.options.resume == "last"
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        await pilot.pause(0.5)
        assert app.model is not None and app.model.name == "tiny-test-llama"
        assert not app.workers_in("model")
        assert app.chat_pane.conversation.id == chat.id


async def test_resume_of_an_unknown_id_says_so_and_opens_a_new_chat(tiny_model: Path) -> None:
    seen: list[TextualMessage] = []
    with history_file() as store:
        saved_chat(store, "Something", "Else")
    app = LlamaApp(persisting(tiny_model, resume="0123456789abcdef"))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: any("0123456789abcdef" in note for note in notes(seen)))
        assert any("There is no saved conversation 0123456789abcdef" in note for note in notes(seen))
        assert message_widgets(app) == []


def test_resume_may_come_after_the_model_command(tiny_model: Path) -> None:
    args = cli.build_parser().parse_args(["local", str(tiny_model), "--resume", "last"])
    assert args.resume == "last"


def test_resume_last_on_the_command_line_opens_the_last_conversation_with_its_model(
    tiny_model: Path, other_model: Path, tmp_path: Path
) -> None:
    """`llama-tui --resume last` as a person types it: no model named, so the model of the
    conversation's last reply opens (not the last model used)."""
    env = app_env(tmp_path)
    home = Path(env["LLAMA_TUI_HOME"])
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(f"last_model = {json.dumps(str(tiny_model))}\n")
    store, problem = open_store(home / "data" / "history.sqlite3")
    assert problem is None
    saved_chat(store, "What did the other model say?", "It said hello from the other side.",
               model_name="other-tiny", model_ref=ModelRef.file(other_model).to_text())
    assert store.flush(timeout=60)
    store.close()
    with Terminal([*LLAMA_TUI, "--resume", "last"], env=env) as term:
        term.wait_for("It said hello from the other side.", timeout=120)
        term.wait_for(re.compile(r"other-tiny .* idle "), timeout=120)
        assert "What did the other model say?" in term.text()
        term.press("ctrl+q")
        assert term.wait() == 0


# -- actions on a message -------------------------------------------------------------------------


def shown(widget: UserMessage | AssistantMessage) -> str:
    """What a message widget shows: the text, and under it the footer (versions, stop reason)."""
    if isinstance(widget, AssistantMessage):
        return widget.text + "\n" + widget.footer_text
    return str(widget.render())


async def chat_turns(pilot: Pilot, model: ScriptedModel, *turns: tuple[str, str]) -> None:
    """Send each message and let the scripted model give each reply."""
    app = pilot.app
    assert isinstance(app, LlamaApp)
    for asked, answer in turns:
        model.parts = [answer]
        await send_chat(pilot, asked)
        await wait_for(pilot, lambda answer=answer: not app.is_running  # type: ignore[misc]
                       or (reply_ended(app) and said(app)[-1] == ("assistant", answer)))
        assert app.is_running, "the app ended"


async def test_regenerate_makes_a_sibling_reply_and_left_right_switch_between_them(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Name a colour", "Red."))
        reply = await focus_message(pilot)
        assert isinstance(reply, AssistantMessage) and reply.text == "Red."
        model.parts = ["Blue."]
        await pilot.press("r")
        await wait_for(pilot, lambda: reply_ended(app) and said(app)[-1] == ("assistant", "Blue."))
        assert [m.content for m in model.asked[-1]] == ["Name a colour"]  # the old reply is not in the prompt
        (_, shown_reply) = message_widgets(app)
        assert "Blue." in shown(shown_reply) and "2/2" in shown(shown_reply)
        conversation = app.chat_pane.conversation
        user = conversation.branch()[0]
        assert [m.text for m in conversation.children(user.id)] == ["Red.", "Blue."]

        shown_reply.focus()
        await pilot.press("left")
        await wait_for(pilot, lambda: said(app)[-1] == ("assistant", "Red."))
        await pilot.pause()
        (_, shown_reply) = message_widgets(app)
        assert shown(shown_reply).startswith("Red.") and "1/2" in shown(shown_reply)
        assert isinstance(app.focused, AssistantMessage)  # still on the reply: → goes back
        await pilot.press("right")
        await wait_for(pilot, lambda: said(app)[-1] == ("assistant", "Blue."))
        await pilot.pause()
        (_, shown_reply) = message_widgets(app)
        assert "2/2" in shown(shown_reply)
        conversation_id = conversation.id
    saved = stored(conversation_id)
    assert [m.text for m in saved.branch()] == ["Name a colour", "Blue."]
    assert sorted(m.text for m in saved.messages.values()) == ["Blue.", "Name a colour", "Red."]


async def test_after_regenerating_the_focus_is_on_the_new_reply(tiny_model: Path) -> None:
    """So that ← can be pressed right away to compare with the old one."""
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Name a colour", "Red."))
        await focus_message(pilot)
        model.parts = ["Blue."]
        await pilot.press("r")
        await wait_for(pilot, lambda: reply_ended(app) and said(app)[-1] == ("assistant", "Blue."))
        await pilot.pause()
        focused = app.focused
        assert isinstance(focused, AssistantMessage) and focused.text == "Blue."


async def test_regenerate_on_the_tiny_model(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model, sampling=SamplingSettings(max_reply_tokens=8)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send_chat(pilot, "hello")
        await wait_for(pilot, lambda: reply_ended(app))
        first = app.chat_pane.conversation.current_id
        await focus_message(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.chat_pane.conversation.current_id != first)
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause()
        assert app.last_stats is not None and app.last_stats.generated_tokens == 8
        conversation = app.chat_pane.conversation
        replies = conversation.children(conversation.branch()[0].id)
        assert len(replies) == 2 and all(r.text and r.stop_reason == "length" for r in replies)
        assert "2/2" in shown(message_widgets(app)[-1])


async def test_edit_sends_a_new_version_and_keeps_the_old_branch(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("What is 2+2?", "4."), ("And 3+3?", "6."))
        first = await focus_message(pilot, steps_up=3)
        assert isinstance(first, UserMessage) and first.text == "What is 2+2?"
        await pilot.press("e")
        chat_input = app.query_one("#chat-input", ChatInput)
        assert app.focused is chat_input and chat_input.text == "What is 2+2?"
        model.parts = ["5, in Orwell."]
        await pilot.press("backspace", "backspace", *"3?", "enter")
        await wait_for(pilot, lambda: reply_ended(app) and said(app)[-1] == ("assistant", "5, in Orwell."))
        assert said(app) == [("user", "What is 2+3?"), ("assistant", "5, in Orwell.")]
        assert [m.content for m in model.asked[-1]] == ["What is 2+3?"]
        edited = message_widgets(app)[0]
        assert "What is 2+3?" in shown(edited) and "2/2" in shown(edited)

        edited.focus()
        await pilot.press("left")  # the old version, with everything that followed it
        await wait_for(pilot, lambda: len(message_widgets(app)) == 4)
        assert said(app) == [("user", "What is 2+2?"), ("assistant", "4."), ("user", "And 3+3?"), ("assistant", "6.")]
        assert "1/2" in shown(message_widgets(app)[0])
        conversation_id = app.chat_pane.conversation.id
    saved = stored(conversation_id)
    assert len(saved.messages) == 6
    assert [m.text for m in saved.branch()] == ["What is 2+2?", "4.", "And 3+3?", "6."]


async def test_the_version_chosen_is_the_one_the_conversation_opens_on(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Name a colour", "Red."))
        await focus_message(pilot)
        model.parts = ["Blue."]
        await pilot.press("r")
        await wait_for(pilot, lambda: reply_ended(app) and said(app)[-1] == ("assistant", "Blue."))
        message_widgets(app)[-1].focus()
        await pilot.press("left")
        await wait_for(pilot, lambda: said(app)[-1] == ("assistant", "Red."))
    # The model named: the replies' own model is the scripted stand-in, which cannot be opened.
    app = LlamaApp(persisting(tiny_model, resume="last", model_named=True))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert said(app) == [("user", "Name a colour"), ("assistant", "Red.")]
        assert "1/2" in shown(message_widgets(app)[-1])


async def test_the_header_follows_the_version_of_the_first_message(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Tell me about cats", "Cats purr."))
        await focus_message(pilot, steps_up=1)
        await pilot.press("e")
        app.query_one("#chat-input", ChatInput).load_text("Tell me about dogs")
        model.parts = ["Dogs bark."]
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app) and said(app)[-1] == ("assistant", "Dogs bark."))
        assert header(app).startswith("Tell me about dogs")
        message_widgets(app)[0].focus()
        await pilot.press("left")
        await wait_for(pilot, lambda: said(app)[-1] == ("assistant", "Cats purr."))
        await pilot.pause()
        assert header(app).startswith("Tell me about cats")


async def test_an_edit_given_up_with_escape_does_not_branch_the_next_message(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("What is 2+2?", "4."), ("And 3+3?", "6."))
        chat_input = app.query_one("#chat-input", ChatInput)
        await pilot.press(*"half typed")
        await focus_message(pilot, steps_up=3)
        await pilot.press("e")
        await wait_for(pilot, lambda: chat_input.text == "What is 2+2?")
        await pilot.press("escape")  # changed my mind
        await wait_for(pilot, lambda: chat_input.text == "half typed")  # what the box held comes back
        assert app.focused is chat_input
        chat_input.clear()
        await chat_turns(pilot, model, ("And 4+4?", "8."))
        assert said(app) == [("user", "What is 2+2?"), ("assistant", "4."), ("user", "And 3+3?"), ("assistant", "6."),
                             ("user", "And 4+4?"), ("assistant", "8.")]


async def test_continue_extends_a_stopped_reply_in_the_same_message(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model, load=LoadSettings(n_ctx=16384, n_threads=1, n_threads_batch=1),
                              sampling=SamplingSettings()))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send_chat(pilot, "tell me everything")
        await wait_for(pilot, lambda: app.query(AssistantMessage) and app.query_one(AssistantMessage).text)
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.query_one(AssistantMessage)
        assert "stopped (c continues)" in reply.footer_text
        before = said(app)[-1][1]
        reply_id = app.chat_pane.conversation.current_id
        assert await focus_message(pilot) is reply
        await pilot.press("c")
        await wait_for(pilot, lambda: app.generating and len(said(app)[-1][1]) > len(before))
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause()
        conversation = app.chat_pane.conversation
        assert len(conversation.messages) == 2 and conversation.current_id == reply_id
        after = said(app)[-1][1]
        assert after.startswith(before) and len(after) > len(before)
        assert len(app.query(AssistantMessage)) == 1
        assert app.query_one(AssistantMessage).text == after.lstrip()
        assert "stopped" in app.query_one(AssistantMessage).footer_text
        conversation_id = conversation.id
    saved = stored(conversation_id)
    assert [(m.role, m.text, m.stop_reason) for m in saved.branch()] == [
        ("user", "tell me everything", None), ("assistant", after, StopReason.CANCELLED.value)]


async def test_continue_goes_on_after_the_length_limit(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model, sampling=SamplingSettings(max_reply_tokens=6)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send_chat(pilot, "tell me everything")
        await wait_for(pilot, lambda: reply_ended(app))
        assert "reached the max reply length (c continues)" in app.query_one(AssistantMessage).footer_text
        before = said(app)[-1][1]
        await focus_message(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: len(said(app)[-1][1]) > len(before) and reply_ended(app))
        after = said(app)[-1][1]
        assert after.startswith(before)
        assert len(app.chat_pane.conversation.messages) == 2
        assert app.last_stats is not None and app.last_stats.generated_tokens == 6


async def test_copy_puts_the_message_in_the_clipboard(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Say something *bold*", "Here is **bold** text\nover two lines."))
        await focus_message(pilot)
        await pilot.press("y")
        assert app.clipboard == "Here is **bold** text\nover two lines."  # the Markdown as written
        await pilot.press("up", "y")
        assert app.clipboard == "Say something *bold*"


CODE_REPLY = """Two ways:

```python
print("one")
```

or in the shell:

```sh
echo two
```

Done."""


async def test_copy_code_copies_the_last_block_then_the_one_before(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Print something", CODE_REPLY))
        await focus_message(pilot)
        await pilot.press("b")
        assert app.clipboard == "echo two\n"
        await pilot.press("b")
        assert app.clipboard == 'print("one")\n'
        await pilot.press("b")  # and round again
        assert app.clipboard == "echo two\n"


async def test_delete_asks_then_removes_the_message_and_what_follows(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("First", "One."), ("Second", "Two."), ("Third", "Three."))
        second = await focus_message(pilot, steps_up=3)
        assert isinstance(second, UserMessage) and second.text == "Second"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert len(message_widgets(app)) == 6
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        assert [widget_text(w) for w in message_widgets(app)] == ["First", "One."]
        assert said(app) == [("user", "First"), ("assistant", "One.")]
        assert isinstance(app.focused, ChatInput)
        # The next message follows what is left.
        await chat_turns(pilot, model, ("Fourth", "Four."))
        assert [m.content for m in model.asked[-1]] == ["First", "One.", "Fourth"]
        conversation_id = app.chat_pane.conversation.id
    saved = stored(conversation_id)
    assert [m.text for m in saved.branch()] == ["First", "One.", "Fourth", "Four."]
    assert len(saved.messages) == 4
    with history_file() as store:
        assert store.list("Second") == [] and store.list("Three") == []


async def test_up_in_an_empty_box_recalls_earlier_messages_and_down_goes_back(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("first message", "ok"), ("second message", "ok"))
        box = app.query_one("#chat-input", ChatInput)
        assert box.text == "" and app.focused is box
        await pilot.press("up")
        assert box.text == "second message"
        await pilot.press("up")
        assert box.text == "first message"
        await pilot.press("up")  # the oldest stays
        assert box.text == "first message"
        await pilot.press("down")
        assert box.text == "second message"
        await pilot.press("down")
        assert box.text == ""
        # Recalled, then sent again.
        await pilot.press("up", "up")
        model.parts = ["again"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app) and len(said(app)) == 6)
        assert said(app)[-2] == ("user", "first message")


async def test_up_recalls_the_messages_of_an_opened_conversation(tiny_model: Path) -> None:
    with history_file() as store:
        saved_chat(store, "an old question", "an old answer", "a later question", "a later answer")
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_conversation(pilot, "old")
        box = app.query_one("#chat-input", ChatInput)
        box.focus()
        await pilot.press("up")
        assert box.text == "a later question"
        await pilot.press("up")
        assert box.text == "an old question"


# -- presets ------------------------------------------------------------------------------------------


async def choose_preset(pilot: Pilot, name: str) -> None:
    """F8, ↓ to the preset, Enter."""
    app = pilot.app
    await pilot.press("f8")
    await wait_for(pilot, lambda: isinstance(app.screen, PresetScreen))
    options = app.screen.query_one(OptionList)
    wanted = "\0" if name == "" else name
    for _ in range(options.option_count + 1):
        highlighted = options.highlighted
        if highlighted is not None and options.get_option_at_index(highlighted).id == wanted:
            break
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, PresetScreen))


async def test_a_preset_sets_the_next_replys_system_prompt_and_sampling_and_is_remembered_for_the_model(
    tiny_model: Path,
) -> None:
    code = BUILT_IN["Code"]
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "no preset (F8)" in header(app)
        await choose_preset(pilot, "Code")
        assert "preset: Code" in header(app)
        model = scripted(app)
        await chat_turns(pilot, model, ("Reverse a list in Python", "xs[::-1]"))
        assert model.asked[-1][0].role == "system" and model.asked[-1][0].content == code.system_prompt
        reply = app.chat_pane.conversation.branch()[-1]
        assert reply.sampling is not None
        assert reply.sampling["temperature"] == 0.2 and reply.sampling["top_p"] == 0.9
        first_id = app.chat_pane.conversation.id
        await pilot.press("ctrl+n")  # a new chat goes on with the same preset
        await pilot.pause()
        assert "preset: Code" in header(app)
    assert load_config()[0].model_presets == {ModelRef.file(tiny_model).to_text(): "Code"}
    assert "[model_presets]" in config_path().read_text()
    first = stored(first_id)
    assert first.preset == "Code"
    assert first.branch()[-1].sampling["temperature"] == 0.2  # type: ignore[index]

    # The next time this model opens, a new chat is offered the same preset.
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: "preset: Code" in header(app))
        model = scripted(app)
        await chat_turns(pilot, model, ("Sort a list", "sorted(xs)"))
        assert model.asked[-1][0].content == code.system_prompt


async def test_presets_come_from_the_config_file_and_no_preset_uses_the_settings(tiny_model: Path) -> None:
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(
        '[chat]\nsystem_prompt = "You are terse."\n'
        '[sampling]\ntemperature = 0.7\n'
        '[presets.Pirate]\nsystem_prompt = "Talk like a pirate."\ntemperature = 1.3\n'
    )
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetScreen))
        options = app.screen.query_one(OptionList)
        assert [options.get_option_at_index(n).id for n in range(options.option_count)] == ["\0", "Pirate"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PresetScreen))
        model = scripted(app)
        await chat_turns(pilot, model, ("Hello", "Hi."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "You are terse.")
        assert app.chat_pane.conversation.branch()[-1].sampling["temperature"] == 0.7  # type: ignore[index]
        await choose_preset(pilot, "Pirate")
        await chat_turns(pilot, model, ("Hello again", "Arr."))
        assert model.asked[-1][0].content == "Talk like a pirate."
        assert app.chat_pane.conversation.branch()[-1].sampling["temperature"] == 1.3  # type: ignore[index]
        await choose_preset(pilot, "")  # back to none
        assert "no preset (F8)" in header(app)
        await chat_turns(pilot, model, ("And now?", "Plain."))
        assert model.asked[-1][0].content == "You are terse."


async def test_an_imported_conversation_keeps_its_system_prompt(tiny_model: Path, tmp_path: Path) -> None:
    exported = tmp_path / "pirate.json"
    exported.write_text(json.dumps([
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "Where is the treasure?"},
        {"role": "assistant", "content": "Arr, buried it be."},
    ]))
    assert cli.main(["import", str(exported)]) == 0
    app = LlamaApp(persisting(tiny_model, resume="last"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        model = scripted(app)
        await chat_turns(pilot, model, ("Dig where?", "Under the palm, arr."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "Talk like a pirate.")


async def test_the_export_of_a_chat_shows_the_system_prompt_it_was_held_with(tiny_model: Path, capsys: Any) -> None:
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await choose_preset(pilot, "Concise")
        model = scripted(app)
        await chat_turns(pilot, model, ("Capital of France?", "Paris."))
        assert model.asked[-1][0].content == BUILT_IN["Concise"].system_prompt
    capsys.readouterr()
    assert cli.main(["export", "last", "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["messages"][0] == {"role": "system", "content": BUILT_IN["Concise"].system_prompt}


async def test_a_reopened_conversation_goes_on_with_the_system_prompt_it_was_held_with(tiny_model: Path) -> None:
    """The settings' system prompt changed in the file between two runs: the conversation
    resumed keeps its own; a new chat takes the new one."""
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text('[chat]\nsystem_prompt = "You are terse."\n')
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Hello", "Hi."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "You are terse.")
        first_id = app.chat_pane.conversation.id
    assert stored(first_id).system_prompt == "You are terse."
    config_path().write_text('[chat]\nsystem_prompt = "You are chatty."\n')
    app = LlamaApp(options_as_cli("local", str(tiny_model), "--resume", "last"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        model = scripted(app)
        await chat_turns(pilot, model, ("Still there?", "Yes."))
        assert [(m.role, m.content) for m in model.asked[-1]] == [
            ("system", "You are terse."), ("user", "Hello"), ("assistant", "Hi."), ("user", "Still there?")]
        await pilot.press("ctrl+n")
        await chat_turns(pilot, model, ("A new chat", "Hello again."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "You are chatty.")


async def test_a_system_prompt_changed_in_the_settings_applies_to_the_chat_on_screen(tiny_model: Path) -> None:
    """The settings panel says a change applies to the next reply: so it does, in the chat
    on screen too (which was held with the old prompt until then)."""
    from llama_tui.ui.settings_screen import SettingsScreen

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text('[chat]\nsystem_prompt = "You are terse."\n')
    app = LlamaApp(options_as_cli("local", str(tiny_model)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        model = scripted(app)
        await chat_turns(pilot, model, ("Hello", "Hi."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "You are terse.")
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#settings-system_prompt", TextArea).text = "Be brief."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await chat_turns(pilot, model, ("And now?", "Brief."))
        assert (model.asked[-1][0].role, model.asked[-1][0].content) == ("system", "Be brief.")
        conversation_id = app.chat_pane.conversation.id
    assert stored(conversation_id).system_prompt == "Be brief."


# -- drafts -------------------------------------------------------------------------------------------


async def test_text_left_in_the_message_box_and_the_completion_tab_is_there_after_a_restart(tiny_model: Path) -> None:
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"half a thought")
        await pilot.press("ctrl+j", *"and a second line")
        await pilot.press("f3")
        completion = app.query_one("#completion-text", TextArea)
        assert app.focused is completion
        await pilot.press(*"Once upon a time")
        await pilot.press("ctrl+q")  # at once: no time for the timed save
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        assert app.query_one("#chat-input", ChatInput).text == "half a thought\nand a second line"
        assert app.query_one("#completion-text", TextArea).text == "Once upon a time"
        await ready(pilot)
        # Sent, it is no longer a draft.
        scripted(app, "Noted.")
        app.query_one("#chat-input", ChatInput).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app))
        assert said(app)[0] == ("user", "half a thought\nand a second line")
    assert load_draft("chat") == ""
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        assert app.query_one("#chat-input", ChatInput).text == ""
        assert app.query_one("#completion-text", TextArea).text == "Once upon a time"


async def test_a_draft_is_saved_while_the_app_runs(tiny_model: Path) -> None:
    """A crash would skip the save at exit: the box is saved a moment after each change."""
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"not lost")
        await wait_for(pilot, lambda: load_draft("chat") == "not lost", timeout=30)


# -- crash safety, a damaged or unusable history --------------------------------------------------------


def reply_saved(path: Path) -> str:
    """The text of the latest reply in the history file, as another process reads it now."""
    import sqlite3

    if not path.exists():
        return ""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        row = db.execute("SELECT text FROM messages WHERE role = 'assistant' ORDER BY seq DESC LIMIT 1").fetchone()
    db.close()
    return row[0] if row else ""


def test_kill_9_in_the_middle_of_a_reply_keeps_the_chat_and_what_was_saved_of_the_reply(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app in a real process (under its guardian), a reply that goes on and on (the tiny
    model never ends a turn, no reply limit), killed with SIGKILL while the reply streams."""
    env = app_env(tmp_path)
    home = Path(env["LLAMA_TUI_HOME"])
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text("[load]\nn_ctx = 16384\nn_threads = 1\nn_threads_batch = 1\n")
    history = home / "data" / "history.sqlite3"
    with Terminal([*LLAMA_TUI, "local", str(tiny_model)], env=env) as term:
        term.wait_for(" idle ", timeout=120)
        term.type("Tell me a very long story")
        term.press("enter")
        term.wait_for(" generating ", timeout=120)
        # Saved while it grows: wait until another process can read part of it, and then a longer part.
        deadline = time.monotonic() + 120
        while len(seen := reply_saved(history)) < 20:
            assert time.monotonic() < deadline, term.text()
            time.sleep(0.1)
        while len(reply_saved(history)) <= len(seen):
            assert time.monotonic() < deadline, term.text()
            time.sleep(0.1)
        seen = reply_saved(history)
        assert term.poll() is None and " generating " in term.text()
        (app_process, *_) = term.descendants()
        os.kill(app_process, signal.SIGKILL)
        term.wait(timeout=60)

    monkeypatch.setenv("LLAMA_TUI_HOME", str(home))
    store, problem = open_store()
    try:
        assert problem is None
        (summary,) = store.list()
        assert summary.title == "Tell me a very long story" and summary.message_count == 2
        chat = store.load(summary.id)
    finally:
        store.close()
    user, reply = chat.branch()
    assert (user.role, user.text) == ("user", "Tell me a very long story")
    assert reply.role == "assistant" and reply.stop_reason is None
    assert reply.model_name == "tiny-test-llama"
    assert reply.text.startswith(seen)  # nothing that had been saved was lost

    # The next run shows it as cut short, to be continued.
    with Terminal([*LLAMA_TUI, "--resume", "last", "local", str(tiny_model)], env=env) as term:
        term.wait_for("cut short: llama-tui stopped while writing it (c continues)", timeout=120)
        assert "Tell me a very long story" in term.text()
        term.press("ctrl+q")
        assert term.wait() == 0


GARBAGE = b"This is not a database at all.\n" * 200 + bytes(range(256))


async def test_a_damaged_history_file_is_kept_aside_and_the_app_works(tiny_model: Path) -> None:
    seen: list[TextualMessage] = []
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GARBAGE)
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await ready(pilot)
        (aside,) = path.parent.glob("history.sqlite3.corrupt-*")
        await wait_for(pilot, lambda: any(str(aside) in note for note in notes(seen)))
        (note,) = [note for note in notes(seen) if str(aside) in note]
        assert "damaged" in note and "kept" in note
        assert aside.read_bytes() == GARBAGE  # byte for byte
        model = scripted(app)
        await chat_turns(pilot, model, ("Still working?", "Yes."))
        screen = await open_history(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 1)
        assert rows(app)[0][0] == "Still working?"
    with history_file() as store:
        assert [s.title for s in store.list()] == ["Still working?"]
    assert aside.read_bytes() == GARBAGE


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    yield home
    home.chmod(0o755)


def test_a_history_in_an_unwritable_place_is_kept_in_memory_and_the_chat_works(
    read_only_home: Path, tiny_model: Path
) -> None:
    from tests.test_read_only_home import CAPSH, as_plain_user

    if CAPSH is None:
        pytest.skip("capsh (libcap2-bin) is needed to drop root's override")
    argv = [*LLAMA_TUI, "--max-reply-tokens", "5", "local", str(tiny_model)]
    with Terminal(as_plain_user(argv), env=app_env(read_only_home)) as term:
        term.wait_for(lambda: "memory only" in flat(term.text()), timeout=120)
        assert "History is kept in memory only this time" in flat(term.text())
        term.wait_for(" idle ", timeout=120)
        term.type("Is anything saved?")
        term.press("enter")
        term.wait_for(re.compile(r" idle .* TTFT \d+ ms"), timeout=120)
        # The history of this run is there, in memory.
        term.write(b"\x10")  # ctrl+p: the command palette
        term.type("History")
        term.wait_for("Saved conversations", timeout=30)
        term.press("enter")
        term.wait_for("1 conversation ·", timeout=30)
        assert "Is anything saved?" in term.text()
        term.press("escape")
        term.press("ctrl+q")
        assert term.wait() == 0
        assert "Traceback" not in term.output_text()
    assert list(read_only_home.iterdir()) == []


def flat(screen: str) -> str:
    """Screen text with a notification's wrapped lines joined (its borders dropped)."""
    return " ".join(line.strip(" ▌▐│┃▎▊█") for line in screen.splitlines() if line.strip())


# -- long conversations -----------------------------------------------------------------------------------


def long_chat(messages: int = 500) -> Conversation:
    with history_file() as store:
        texts = [f"question {n}" if n % 2 == 0 else f"answer {n}" for n in range(messages)]
        return saved_chat(store, *texts)


def earlier_notice(app: LlamaApp) -> str:
    found = app.query("#chat-earlier")
    return str(found.first().render()) if found else ""


async def test_a_long_conversation_opens_from_the_history_with_its_last_messages(tiny_model: Path) -> None:
    long_chat(500)
    app = LlamaApp(persisting(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_conversation(pilot, "question")
        # The window is mounted a screenful at a time; the notice above it follows once it is whole.
        await wait_for(pilot, lambda: len(message_widgets(app)) == WINDOW
                       and earlier_notice(app).startswith(f"⋯ {500 - WINDOW} earlier messages"))
        assert widget_text(message_widgets(app)[-1]) == "answer 499"


# -- the history, export and import commands --------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`llama-tui ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def three_chats() -> list[Conversation]:
    now = time.time()
    with history_file() as store:
        return [
            saved_chat(store, "Oldest chat about tides", "The moon pulls.", model_name="Tidal", at=now - 300),
            saved_chat(store, "Middle chat", "A reply mentioning zebras.", "More?", "Zebras again.",
                       model_name="Zoo Model", at=now - 200),
            saved_chat(store, "Newest chat", "Newest reply.", model_name="Fresh", at=now - 100, title="Renamed newest"),
        ]


LINE = re.compile(r"^(?P<id>[0-9a-f]{32})  (?P<when>\d{4}-\d\d-\d\d \d\d:\d\d)  "
                  r"(?P<model>.+?)  (?P<count>\d+)  (?P<title>.+)$")


def test_history_prints_one_line_per_conversation_newest_first(capsys: pytest.CaptureFixture[str]) -> None:
    oldest, middle, newest = three_chats()
    code, out, err = run_cli(capsys, "history")
    assert code == 0 and err == ""
    lines = [LINE.match(line) for line in out.splitlines()]
    assert all(lines), out
    assert [(m["id"], m["model"], m["count"], m["title"]) for m in lines if m] == [
        (newest.id, "Fresh", "2", "Renamed newest"),
        (middle.id, "Zoo Model", "4", "Middle chat"),
        (oldest.id, "Tidal", "2", "Oldest chat about tides"),
    ]
    first = lines[0]
    assert first is not None
    assert first["when"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(stored(newest.id).updated_at))


def test_history_search_lists_only_matches_with_the_matching_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, middle, _ = three_chats()
    code, out, err = run_cli(capsys, "history", "--search", "zebra")
    assert code == 0
    head, *snippets = out.splitlines()
    match = LINE.match(head)
    assert match and match["id"] == middle.id and match["title"] == "Middle chat"
    assert snippets == ["    A reply mentioning zebras."]
    code, out, err = run_cli(capsys, "history", "--search", "nothing-like-this")
    assert (code, out, err) == (0, "", "No conversation matches.\n")


def test_history_of_an_empty_store_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "history") == (0, "", "No saved conversations yet.\n")


def test_export_markdown_and_json_to_a_file_and_to_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, middle, _ = three_chats()
    markdown = tmp_path / "chat.md"
    code, out, err = run_cli(capsys, "export", middle.id, "--format", "md", "-o", str(markdown))
    assert code == 0 and out == ""
    assert str(markdown) in err
    text = markdown.read_text()
    assert text.startswith("# Middle chat\n")
    assert "- **Model:** Zoo Model" in text
    assert text.index("## User\n\nMiddle chat") < text.index("## Assistant\n\nA reply mentioning zebras.") \
        < text.index("## User\n\nMore?") < text.index("## Assistant\n\nZebras again.")

    code, out, _ = run_cli(capsys, "export", "last", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["messages"] == [{"role": "user", "content": "Newest chat"},
                                {"role": "assistant", "content": "Newest reply."}]
    assert data["llama_tui"]["title"] == "Renamed newest"
    assert data["llama_tui"]["messages"][1]["model_name"] == "Fresh"

    code, out, _ = run_cli(capsys, "export", "last")  # Markdown by default
    assert code == 0 and out.startswith("# Renamed newest\n")


def test_import_takes_our_json_and_a_plain_openai_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plain = tmp_path / "openai.json"
    plain.write_text(json.dumps([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi from OpenAI"},
        {"role": "assistant", "content": "Hello."},
    ]))
    code, out, err = run_cli(capsys, "import", str(plain))
    assert code == 0
    imported_id = out.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", imported_id)
    assert f"--resume {imported_id}" in err
    chat = stored(imported_id)
    assert chat.system_prompt == "Be brief."
    assert [(m.role, m.text) for m in chat.branch()] == [("user", "Hi from OpenAI"), ("assistant", "Hello.")]

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"messages": [{"role": "user", "content": "Wrapped question"}]}))
    code, out, _ = run_cli(capsys, "import", str(wrapped))
    assert code == 0
    code, out, _ = run_cli(capsys, "history")
    titles = [match["title"] for line in out.splitlines() if (match := LINE.match(line))]
    assert sorted(titles) == ["Hi from OpenAI", "Wrapped question"]


def test_export_then_import_gives_the_same_conversation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with history_file() as store:
        chat = saved_chat(store, "Round trip question", "Round trip **answer**\n\n```py\nx = 1\n```",
                          "Thanks — ünïcödé too", "De rien.", model_name="Tripper",
                          model_ref="server:http://h/v1#m", title="Round trip")
        # A reply with everything a reply keeps.
        last = chat.update(chat.current_id, sampling={"temperature": 0.3, "top_p": 0.9}, seed=7,
                           figures={"generated_tokens": 3, "tokens_per_second": 12.5}, thinking="hmm")
        store.update_message(chat.id, last)
    first = tmp_path / "first.json"
    assert run_cli(capsys, "export", chat.id, "--format", "json", "-o", str(first))[0] == 0
    code, out, _ = run_cli(capsys, "import", str(first))
    assert code == 0
    copy_id = out.strip()
    assert copy_id != chat.id
    second = tmp_path / "second.json"
    assert run_cli(capsys, "export", copy_id, "--format", "json", "-o", str(second))[0] == 0
    assert json.loads(second.read_text()) == json.loads(first.read_text())
    original, copied = stored(chat.id), stored(copy_id)
    fields = ("role", "text", "thinking", "model_name", "model_ref", "sampling", "seed", "figures", "stop_reason")
    assert [[getattr(m, f) for f in fields] for m in copied.branch()] == \
        [[getattr(m, f) for f in fields] for m in original.branch()]
    assert copied.title == "Round trip"
    md_first = run_cli(capsys, "export", chat.id)[1]
    md_copy = run_cli(capsys, "export", copy_id)[1]
    assert md_copy == md_first


async def test_an_imported_conversation_opens_in_the_app_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    plain = tmp_path / "openai.json"
    plain.write_text(json.dumps([{"role": "user", "content": "Imported hello"},
                                 {"role": "assistant", "content": "Imported reply"}]))
    code, out, _ = run_cli(capsys, "import", str(plain))
    assert code == 0
    imported_id = out.strip()
    app = LlamaApp(persisting(tiny_model, resume=imported_id))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(message_widgets(app)) == 2)
        model = scripted(app)
        await chat_turns(pilot, model, ("And then?", "Then more."))
        assert [m.content for m in model.asked[-1] if m.role != "system"] == [
            "Imported hello", "Imported reply", "And then?"]
    assert [m.text for m in stored(imported_id).branch()] == [
        "Imported hello", "Imported reply", "And then?", "Then more."]


@pytest.mark.parametrize("argv, says", [
    (["export", "0123456789abcdef0123456789abcdef"], "there is no conversation 0123456789abcdef0123456789abcdef"),
    (["export", "last"], "there are no saved conversations to export"),
    (["import", "missing.json"], "cannot read missing.json"),
])
def test_command_errors_are_one_line_on_stderr_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and err.startswith("llama-tui: ") and says in err, err


@pytest.mark.parametrize("content, says", [
    ('{"messages": [', "is not JSON"),
    ("\xff\xfe garbage", "is not JSON"),
    ('{"messages": "hello"}', "cannot import"),
    ('[{"role": "tool", "content": "x"}]', "role 'tool' cannot be imported"),
    ('{"text": "no messages"}', 'expected "messages"'),
])
def test_a_bad_file_to_import_is_one_line_on_stderr_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, says: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    code, out, err = run_cli(capsys, "import", str(bad))
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and says in err, err
    with history_file() as store:
        assert store.list() == []


def test_the_commands_as_a_user_runs_them(tmp_path: Path) -> None:
    """`python -m llama_tui history|export|import` in a real process: exit codes and streams."""
    env = {**os.environ, "LLAMA_TUI_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*LLAMA_TUI, *argv], env=env, capture_output=True, text=True, timeout=120, check=False)

    source = tmp_path / "in.json"
    source.write_text(json.dumps([{"role": "user", "content": "From a file"},
                                  {"role": "assistant", "content": "Yes."}]))
    imported = run("import", str(source))
    assert imported.returncode == 0, imported.stderr
    listed = run("history")
    assert listed.returncode == 0 and listed.stdout.count("\n") == 1
    assert LINE.match(listed.stdout.strip())["title"] == "From a file"  # type: ignore[index]
    exported = run("export", imported.stdout.strip(), "--format", "json")
    assert json.loads(exported.stdout)["messages"][0] == {"role": "user", "content": "From a file"}
    unknown = run("export", "feedfacefeedfacefeedfacefeedface")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = run("import", str(bad))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "is not JSON" in refused.stderr


# -- the starter model ------------------------------------------------------------------------------------


async def test_with_the_starter_a_chat_is_kept_regenerated_and_continued(starter_model: Path) -> None:
    """One pass over the real chat model: a reply, a regenerated one (2/2), continued after the
    length limit, and all of it in the history under the model's name."""
    options = persisting(None, load=LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1),
                         sampling=SamplingSettings(max_reply_tokens=8))
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send_chat(pilot, "Write a long essay on the history of France.")
        await wait_for(pilot, lambda: reply_ended(app), timeout=120)
        first = app.chat_pane.conversation.current_id
        await focus_message(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.chat_pane.conversation.current_id != first and reply_ended(app), timeout=120)
        await pilot.pause()
        reply = message_widgets(app)[-1]
        assert "2/2" in shown(reply)
        assert "reached the max reply length (c continues)" in shown(reply)  # 8 tokens of an essay
        before = said(app)[-1][1]
        reply.focus()
        await pilot.press("c")
        await wait_for(pilot, lambda: len(said(app)[-1][1]) > len(before) and reply_ended(app), timeout=120)
        assert said(app)[-1][1].startswith(before)
        assert len(app.chat_pane.conversation.messages) == 3
        model_name = app.model.name if app.model else ""
        conversation_id = app.chat_pane.conversation.id
        final = said(app)[-1][1]
    with history_file() as store:
        (summary,) = store.list()
        assert summary.model_name == model_name and "Gemma" in model_name
        assert summary.title == "Write a long essay on the history of France." and summary.message_count == 3
        user, reply_saved_ = store.load(conversation_id).branch()
        assert user.role == "user" and (reply_saved_.role, reply_saved_.text) == ("assistant", final)
