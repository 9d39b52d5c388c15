"""The History screen while searching: a long title gives way to the matching line, so the
match is on screen in a 110-column terminal (it was pushed off the right edge)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from textual.widgets import DataTable

from llama_tui.engine.conversation import Conversation
from llama_tui.engine.store_memory import MemoryStore
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.history_screen import HistoryScreen
from tests.test_app import tiny_options, wait_for

TITLE = "Which languages are spoken in Switzerland, and in which of its cantons?"


def screen_text(app: LlamaApp) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


async def test_a_search_shows_the_matching_line_beside_a_shortened_title(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=(110, 24)) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        store = MemoryStore()
        conversation = Conversation()
        conversation.add("user", TITLE)
        conversation.add("assistant", "German, French, Italian and Romansh.", model_name="m")
        store.create(conversation)
        app.store = store
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: app.screen.query_one("#history-table").row_count == 1)
        await wait_for(pilot, lambda: TITLE[:40] in screen_text(app))  # no search: the title as it is
        await pilot.press(*"romansh")
        table = app.screen.query_one("#history-table", DataTable)
        await wait_for(pilot, lambda: "“romansh”" in screen_text(app), timeout=120)  # the search's own list
        assert str(table.get_row_at(0)[-1]) == "German, French, Italian and Romansh."
        # The table is drawn on a later frame than the status line: wait for the screen to show it.
        await wait_for(pilot, lambda: "Which languages are spoken…" in screen_text(app)
                       and "German, French, Italian and Romansh." in screen_text(app), timeout=120)
        assert TITLE[:40] not in screen_text(app)
        await pilot.resize_terminal(90, 24)  # narrower: the match is cut again to fit, not pushed off

        def match_cut_and_shown() -> bool:
            match = str(app.screen.query_one("#history-table", DataTable).get_row_at(0)[-1])
            return match.startswith("German, French") and match.endswith("…") and match in screen_text(app)

        await wait_for(pilot, match_cut_and_shown)


async def test_down_from_the_search_box_lands_on_the_first_conversation(tiny_model: Path) -> None:
    """↓ in the search box goes to the list's first row: Enter (or ctrl+r, ctrl+d) acts on the
    conversation highlighted, not the one below it."""
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=(110, 24)) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        store = MemoryStore()
        for text in ("oldest", "middle", "newest"):
            conversation = Conversation()
            conversation.add("user", text)
            store.create(conversation)
        app.store = store
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen)
                       and app.screen.query_one("#history-table", DataTable).row_count == 3)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: bool(app.chat_pane.conversation.messages))
        assert [m.text for m in app.chat_pane.conversation.branch()] == ["newest"]
