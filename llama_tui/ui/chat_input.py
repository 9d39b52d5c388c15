"""The chat's message box: several lines, a paste arrives whole, Enter sends.

Textual's `Input` keeps only the first line of a paste, so the box is a `TextArea`:
- Enter sends; shift+enter (where the terminal tells it apart) and ctrl+j (every terminal)
  start a new line.
- A bracketed paste is inserted whole, newlines kept, control characters made visible.
- A terminal without bracketed paste sends a pasted text as typed keys, its newlines as
  Enter. So Enter waits `PASTE_GAP` before sending: if more keys follow within that time,
  no person typed them, and the Enter becomes a newline in the text. (A whole paste arrives
  in one read and is queued before that time is up, whatever the machine's load.)
- ↑ in an empty box recalls the messages sent before, ↓ goes back down.
- What is in the box is saved as a draft by the chat pane, so a quit never loses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer

from llama_tui.text import neutralise_controls
from llama_tui.ui.text_box import TextBox

PASTE_GAP = 0.03
"""Seconds after Enter in which another key means a paste, not a person (people need ~0.1 s)."""


NEWLINE_KEYS = ("shift+enter", "ctrl+j")


class ChatInput(TextBox):
    BINDINGS = [
        Binding(",".join(NEWLINE_KEYS), "newline", "New line", id="chat_input.newline",
                tooltip="Start a new line in the message", show=False),
    ]

    @dataclass
    class Submitted(Message):
        """Enter was pressed (not as part of a paste) with this text in the box."""

        chat_input: ChatInput
        text: str

        @property
        def control(self) -> ChatInput:
            """What `@on(ChatInput.Submitted, "#id")` matches against."""
            return self.chat_input

    def __init__(self, *, placeholder: str, id: str) -> None:
        super().__init__(id=id, placeholder=placeholder, soft_wrap=True, tab_behavior="focus",
                         show_line_numbers=False, highlight_cursor_line=False)
        self._pending_enter: Timer | None = None
        self.sent_messages: list[str] = []
        """Messages sent before, oldest first (↑ recalls them)."""
        self._recalled: int | None = None
        """While browsing the history with ↑/↓: the index of the message shown."""

    @property
    def value(self) -> str:
        return self.text

    def put_back(self, text: str) -> None:
        """Give `text` back to the person, before anything typed since."""
        current = self.text
        self.load_text(text if not current.strip() else f"{text}\n\n{current}")
        self.move_cursor(self.document.end)

    def remember(self, text: str) -> None:
        """A message was sent: ↑ will recall it."""
        if not self.sent_messages or self.sent_messages[-1] != text:
            self.sent_messages.append(text)
        self._recalled = None

    def _recall(self, step: int) -> bool:
        """Show the message `step` from the one shown (-1: older); whether it moved."""
        if not self.sent_messages:
            return False
        start = len(self.sent_messages) if self._recalled is None else self._recalled
        index = start + step
        if index < 0:
            return True  # the oldest: stay, and keep the key from moving the cursor
        if index >= len(self.sent_messages):
            self._recalled = None
            self.load_text("")
            return True
        self._recalled = index
        self.load_text(self.sent_messages[index])
        self.move_cursor(self.document.end if step > 0 else (0, 0))
        return True

    def action_newline(self) -> None:
        self._insert("\n")

    def _insert(self, text: str) -> None:
        self.replace(text, *self.selection)

    async def _on_key(self, event: events.Key) -> None:
        if self.read_only:
            return
        if self._pending_enter is not None:
            # A key right after Enter: the Enter was part of an unbracketed paste.
            self._cancel_pending_enter()
            self._insert("\n")
            if event.key == "ctrl+j":  # the LF of a pasted CRLF: one newline, not two
                event.stop()
                event.prevent_default()
                return
        browsing = self._recalled is not None
        row = self.cursor_location[0]
        if (event.key == "up" and (not self.text or browsing) and row == 0) or (
            event.key == "down" and browsing and row == self.document.line_count - 1
        ):
            if self._recall(-1 if event.key == "up" else 1):
                event.stop()
                event.prevent_default()
                return
        elif event.is_printable or event.key in ("backspace", "delete"):
            self._recalled = None  # edited: it is a new message now
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._pending_enter = self.set_timer(PASTE_GAP, self._submit)
        # Any other key goes on to TextBox._on_key, then TextArea's (Textual calls each class's handler in turn).

    async def _on_paste(self, event: events.Paste) -> None:
        if self.read_only:
            return
        if self._pending_enter is not None:
            self._cancel_pending_enter()
            self._insert("\n")
        event.prevent_default()
        event.stop()
        # Terminals send a pasted newline as a carriage return.
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        result = self.replace(neutralise_controls(text), *self.selection)
        self.move_cursor(result.end_location)

    def _cancel_pending_enter(self) -> None:
        if self._pending_enter is not None:
            self._pending_enter.stop()
            self._pending_enter = None

    def _submit(self) -> None:
        self._pending_enter = None
        self.post_message(self.Submitted(self, self.text))
