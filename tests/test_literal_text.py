"""Text from files, paths and models is shown literally: never markup, no escapes or bidi tricks."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.widgets import DataTable, Log, Static

from llama_tui.engine.logs import log_to_file
from llama_tui.engine.settings import LoadSettings
from llama_tui.text import neutralise_controls
from llama_tui.ui.app import LlamaApp
from tests.test_app import SIZE, label_text, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf

HOSTILE_NAME = "[bold]Evil[/] [link=https://x.example]model[/link] \x1b[31mred\u202egpj.exe"
SHOWN_NAME = "[bold]Evil[/] [link=https://x.example]model[/link] red\ufffdgpj.exe"


def test_neutralising_keeps_text_and_removes_escapes_and_bidi_controls() -> None:
    assert neutralise_controls(HOSTILE_NAME) == SHOWN_NAME
    assert neutralise_controls("a\u2066b\u2069c\tok\n") == "a\ufffdb\ufffdc\tok\n"
    assert neutralise_controls("שלום \u200f world") == "שלום \u200f world"  # marks in real text stay


async def test_markup_in_a_model_name_and_file_name_is_shown_literally(tmp_path: Path) -> None:
    model = write_tiny_llama_gguf(tmp_path / "x[Q4]\u202e.gguf", name=HOSTILE_NAME)
    seen: list[Message] = []
    app = LlamaApp(tiny_options(model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.pause()
        notes = [m.notification for m in seen if isinstance(m, Notify)]
        loaded = [n for n in notes if " ready in " in n.message]
        assert loaded and loaded[0].message.startswith(SHOWN_NAME + " ready in")
        assert not loaded[0].markup
        assert label_text(app, "status-model") == SHOWN_NAME
        log_lines = app.query_one(Log).lines
        assert any("x[Q4]\ufffd.gguf" in line for line in log_lines)
        assert not any("\x1b" in line or "\u202e" in line for line in log_lines)

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelPickerScreen"
                       and not app.screen.query_one("#model-table", DataTable).loading
                       and app.screen.query_one("#model-table", DataTable).row_count > 0)
        table = app.screen.query_one("#model-table", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0][0] == "● " + SHOWN_NAME  # the current model, first
        details = str(app.screen.query_one("#model-details", Static).render())
        assert details.startswith(str(tmp_path / "x[Q4]\ufffd.gguf"))


async def test_a_name_override_is_the_name_shown(tiny_model: Path) -> None:
    load = LoadSettings(n_ctx=512, n_threads=1, n_threads_batch=1, overrides={"general.name": "Renamed [v2]"})
    app = LlamaApp(tiny_options(tiny_model, load=load))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.pause()
        assert label_text(app, "status-model") == "Renamed [v2]"


async def test_an_error_message_quoting_a_path_with_markup_is_literal(tmp_path: Path, tiny_model: Path) -> None:
    """A path the loader refuses is quoted in the error; the brackets must survive."""
    bad = tmp_path / "[bold red]not a model.gguf"
    bad.write_text("not a gguf")
    seen: list[Message] = []
    app = LlamaApp(tiny_options(bad))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any(isinstance(m, Notify) and m.notification.severity == "error" for m in seen))
        error = next(m.notification for m in seen if isinstance(m, Notify) and m.notification.severity == "error")
        assert "[bold red]not a model.gguf" in error.message


def test_the_log_file_gets_no_escape_sequences(tmp_path: Path) -> None:
    path = log_to_file(tmp_path / "log" / "llama-tui.log")
    logger = logging.getLogger("llama_tui.test_literal")
    logger.warning("model name: %s", HOSTILE_NAME)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    assert SHOWN_NAME in text
    assert "\x1b" not in text and "\u202e" not in text
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "baseFilename", None) == str(path)]:
        root.removeHandler(handler)
        handler.close()
    shutil.rmtree(tmp_path / "log")


async def test_a_dialog_quoting_a_model_name_with_markup_shows_it_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: text from outside is shown literally in "dialogs" too: the reload question
    quotes the model's name."""
    from textual.widgets import Input

    from llama_tui.ui.confirm_screen import ConfirmScreen
    from llama_tui.ui.settings_screen import SettingsScreen

    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "home"))
    model = write_tiny_llama_gguf(tmp_path / "hostile.gguf", name=HOSTILE_NAME)
    app = LlamaApp(tiny_options(model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        field = app.screen.query_one("#settings-n_ctx", Input)
        field.value = "1024"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        shown = app.screen.query_one("#confirm-question", Static).render()
        assert str(shown).startswith(f"Reload {SHOWN_NAME} now")
        assert not getattr(shown, "spans", None)  # no style and no link from the name


async def test_a_hub_file_name_with_markup_is_listed_literally(
    tmp_path: Path, tiny_model: Path, hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: text from outside is shown literally in "tables": here a Hugging Face file name."""
    from textual.widgets import Input, TabbedContent

    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    hub.add_repo("acme/Odd-GGUF", {"[bold]odd[/bold] \x1b[31mname-Q8_0.gguf": b"GGUF" + bytes(10)})
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelPickerScreen")
        app.screen.query_one("#picker-tabs", TabbedContent).active = "picker-hub"
        search = app.screen.query_one("#hub-query", Input)
        search.value = "odd"
        search.focus()
        await pilot.press("enter")
        repos = app.screen.query_one("#hub-repos", DataTable)
        await wait_for(pilot, lambda: repos.row_count > 0)
        await pilot.press("enter")
        files = app.screen.query_one("#hub-files", DataTable)
        await wait_for(pilot, lambda: files.row_count > 0)
        cell = files.get_row_at(0)[0]
        assert str(cell) == "[bold]odd[/bold] name-Q8_0.gguf"
        assert not getattr(cell, "spans", None)
