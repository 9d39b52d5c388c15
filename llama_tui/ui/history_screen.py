"""The saved conversations (F7): newest first, searched as you type, opened, renamed, deleted.

Listing and searching run in a thread worker (the store's reads may wait on the disk); the
table shows the title, the model of the last reply, when it last changed, how many messages
it has, and for a search the matching line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.events import Key
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from llama_tui.engine.store import ConversationStore, ConversationSummary, StoreError
from llama_tui.formatting import counted
from llama_tui.text import shorten
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.literal import literal, literal_cell

SEARCH_AFTER = 0.15
"""Seconds of no typing before a search runs."""
SEARCH_TITLE_CHARS = 28
"""Titles are cut to this while searching, to leave the width to the matching line."""


@dataclass
class HistoryResult:
    """What happened in the history screen, for the conversation on screen to follow."""

    open_id: str | None = None
    renamed: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


@dataclass
class Listed(Message):
    search: str
    rows: list[ConversationSummary]
    error: str | None = None


def when(timestamp: float) -> str:
    """"14:02" today, "Mon 14:02" this week, else "2026-11-02"."""
    age = time.time() - timestamp
    local = time.localtime(timestamp)
    if age < 86400 and local.tm_yday == time.localtime().tm_yday:
        return time.strftime("%H:%M", local)
    if age < 6 * 86400:
        return time.strftime("%a %H:%M", local)
    return time.strftime("%Y-%m-%d", local)


class RenameScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "close", "Cancel", id="rename.cancel", tooltip="Keep the title")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.old_title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="rename-dialog") as dialog:
            dialog.border_title = "Rename the conversation"
            yield Input(self.old_title, id="rename-input")
            yield Static(Content("Enter renames · empty: the start of its first message · Esc cancels"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_close(self) -> None:
        self.dismiss(None)


class HistoryScreen(ModalScreen[HistoryResult]):
    """Dismisses with the conversation to open (if any) and what was renamed or deleted."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="history.close", tooltip="Back to the chat"),
        Binding("ctrl+r", "rename", "Rename", id="history.rename", tooltip="Rename the highlighted conversation",
                priority=True),
        Binding("ctrl+d", "delete", "Delete", id="history.delete",
                tooltip="Delete the highlighted conversation (asks first)", priority=True),
        # Not priority: in the search box Delete deletes a character; in the list it asks
        # to delete the conversation (the table has no Delete key of its own).
        Binding("delete", "delete", "Delete", id="history.delete_key", show=False,
                tooltip="Delete the highlighted conversation (asks first)"),
    ]

    def __init__(self, store: ConversationStore) -> None:
        super().__init__()
        self.store = store
        self.rows: list[ConversationSummary] = []
        self._search_timer: Timer | None = None
        self._shown: Listed | None = None
        self.result = HistoryResult()

    def compose(self) -> ComposeResult:
        with Vertical(id="history-dialog") as dialog:
            dialog.border_title = "History"
            yield Input(placeholder="Search every message (↓ to the list)", id="history-search")
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="history-status")
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.loading = True
        self._list("")
        self.query_one("#history-search", Input).focus()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _list(self, search: str) -> None:
        try:
            rows = self.store.list(search or None)
        except (StoreError, OSError) as error:
            self.post_message(Listed(search, [], f"Could not read the history: {error}"))
            return
        self.post_message(Listed(search, rows))

    def on_listed(self, message: Listed) -> None:
        if message.search != self.query_one("#history-search", Input).value.strip():
            return  # typing went on: a newer search is coming
        self.rows = message.rows
        self._shown = message
        self._fill_table(message)

    def on_resize(self) -> None:
        # The matches are cut to the table's width: cut them again once the table has its new one.
        if self._shown is not None and self._shown.search:
            self.call_after_refresh(self._refill)

    def _refill(self) -> None:
        if self._shown is not None:
            table = self.query_one(DataTable)
            row = table.cursor_row
            self._fill_table(self._shown)
            table.move_cursor(row=row)

    def _fill_table(self, message: Listed) -> None:
        table = self.query_one(DataTable)
        table.loading = False
        table.clear(columns=True)  # columns fit this list: a search's shorter titles leave room for its matches
        headers = ("Title", "Model", "When", "Messages", "Match")
        table.add_columns(*headers)
        cells = [
            # While searching, long titles give way to the matching line.
            (row.title if not message.search else shorten(row.title, SEARCH_TITLE_CHARS),
             row.model_name or "–", when(row.updated_at), str(row.message_count), " ".join(row.snippet.split()))
            for row in message.rows
        ]
        # The match takes the width the other columns leave (each is padded by one cell a side).
        columns = zip(headers[:-1], *(c[:-1] for c in cells), strict=True)
        used = sum(max(len(text) for text in column) + 2 for column in columns)
        width = table.scrollable_content_region.width  # 0 before the first layout: nothing is cut then
        room = max(12, width - used - 2) if width else None
        for title, model, changed, count, snippet in cells:
            table.add_row(literal_cell(title), literal_cell(model), changed, count,
                          literal_cell(shorten(snippet, room) if room else snippet))
        status = message.error or (
            counted(len(message.rows), "conversation")
            + (f" matching “{message.search}”" if message.search else "")
            + " · Enter opens · ctrl+r renames · ctrl+d deletes"
            if message.rows else ("Nothing matches." if message.search else "No saved conversations yet.")
        )
        self.query_one("#history-status", Static).update(literal(status))

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        search = event.value.strip()
        self._search_timer = self.set_timer(SEARCH_AFTER, lambda: self._list(search))

    @on(Input.Submitted, "#history-search")
    def _open_first(self) -> None:
        table = self.query_one(DataTable)
        if self.rows:
            self._open(self.rows[max(0, table.cursor_row)].id)

    def on_key(self, event: Key) -> None:
        if event.key == "down" and self.focused is self.query_one("#history-search"):
            # ↓ goes to the list, on its first row: the key itself must not move the cursor too.
            event.prevent_default()
            event.stop()
            self.query_one(DataTable).focus()

    @on(DataTable.RowSelected, "#history-table")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        self._open(self.rows[event.cursor_row].id)

    def _open(self, conversation_id: str) -> None:
        self.result.open_id = conversation_id
        self.dismiss(self.result)

    def _highlighted(self) -> ConversationSummary | None:
        table = self.query_one(DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_rename(self) -> None:
        row = self._highlighted()
        if row is None:
            return

        def renamed(title: str | None) -> None:
            if title is not None:
                self.store.rename(row.id, title)
                self.result.renamed[row.id] = title
                self.store.flush(timeout=5)
                self._list(self.query_one("#history-search", Input).value.strip())

        self.app.push_screen(RenameScreen(row.title), renamed)

    def action_delete(self) -> None:
        row = self._highlighted()
        if row is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.store.delete_conversation(row.id)
                self.result.deleted.add(row.id)
                self.store.flush(timeout=5)
                self._list(self.query_one("#history-search", Input).value.strip())

        self.app.push_screen(ConfirmScreen(f"Delete “{row.title}” and all its messages?", yes="Delete", no="Keep"),
                             answered)

    def action_close(self) -> None:
        self.dismiss(self.result)
