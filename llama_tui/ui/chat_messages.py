"""The widgets of a chat transcript: the user's messages, the model's replies, notices.

A message widget shows one `engine.conversation.Message` and can take the focus (shift+tab
from the message box, then ↑/↓), which offers its keys in the footer: regenerate, edit,
continue, copy, switch between the versions of a message (2/3), delete. A key does not act
by itself: it posts `MessageAction` and the chat pane, which owns the conversation, acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from textual.binding import Binding
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widgets import Static

from llama_tui.engine.conversation import Message
from llama_tui.engine.events import StopReason
from llama_tui.formatting import counted
from llama_tui.text import neutralise_controls
from llama_tui.ui.literal import literal
from llama_tui.ui.markdown_view import MarkdownView

Action = Literal[
    "regenerate", "edit", "continue", "copy", "copy_code", "previous", "next", "delete", "up", "down", "leave"
]

_COMMON = [
    Binding("up", "act('up')", "Earlier", show=False, id="message.up", tooltip="The message before"),
    Binding("down", "act('down')", "Later", show=False, id="message.down", tooltip="The message after"),
    Binding("left", "act('previous')", "◀ Version", id="message.previous",
            tooltip="The previous version of this message (an earlier edit or regeneration)"),
    Binding("right", "act('next')", "Version ▶", id="message.next", tooltip="The next version of this message"),
    Binding("y", "act('copy')", "Copy", id="message.copy", tooltip="Copy this message to the clipboard"),
    Binding("d,delete", "act('delete')", "Delete", id="message.delete",
            tooltip="Delete this message and everything after it in this branch"),
    Binding("escape", "act('leave')", "Back", id="message.leave", tooltip="Back to the message box"),
]


@dataclass
class MessageAction(TextualMessage):
    """A key pressed on a message; the chat pane acts on it."""

    message_id: str
    action: Action


def versions_label(position: int, count: int) -> str:
    return f"◀ {position}/{count} ▶" if count > 1 else ""


class _Focusable:
    """What the message widgets share: the message they show, and keys that post actions."""

    can_focus = True
    message_id: str

    def action_act(self, action: Action) -> None:
        self.post_message(MessageAction(self.message_id, action))  # type: ignore[attr-defined]  # mixed into Widgets only


class UserMessage(_Focusable, Static):
    """What the user wrote, shown literally."""

    BINDINGS = [*_COMMON, Binding("e", "act('edit')", "Edit", id="message.edit",
                                  tooltip="Edit this message and send it again (a new branch; the old one stays)")]

    def __init__(self, message: Message, versions: tuple[int, int] = (1, 1)) -> None:
        super().__init__(classes="turn user-turn")
        self.message_id = message.id
        self.text = message.text
        self.versions = versions
        self._show()

    def show_versions(self, versions: tuple[int, int]) -> None:
        if versions != self.versions:
            self.versions = versions
            self._show()

    def _show(self) -> None:
        label = versions_label(*self.versions)
        content = literal(self.text)
        if label:
            content = Content.assemble(content, "\n", (label, "dim"))
        self.update(content)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return _check(action, parameters, self.versions)


class AssistantMessage(_Focusable, MarkdownView):
    """A reply: Markdown streamed in batches, and a footer line once it ends. One widget, so
    each update lays out and paints one widget rather than a container and its children."""

    BINDINGS = [
        *_COMMON,
        Binding("r", "act('regenerate')", "Regenerate", id="message.regenerate",
                tooltip="Write this reply again (a new version; this one stays)"),
        Binding("c", "act('continue')", "Continue", id="message.continue",
                tooltip="Let the model go on from where this reply stopped"),
        Binding("b", "act('copy_code')", "Copy code", id="message.copy_code",
                tooltip="Copy a code block of this reply (again: the one before)"),
        Binding("t", "toggle_thinking", "Thinking", id="message.thinking",
                tooltip="Show or hide what the model thought before answering"),
    ]
    LIVE_LINES = 8
    """While the model thinks, its last lines show; once it answers, one folded line."""

    def __init__(self, message: Message | None = None, versions: tuple[int, int] = (1, 1), *, speed: str = "",
                 live: bool = False) -> None:
        """`live`: the reply is being written now (its end comes through `end`)."""
        super().__init__(classes="turn assistant-turn")
        self.message_id = message.id if message is not None else ""
        self.versions = versions
        self.reason: StopReason | None = None
        self._speed = speed
        self._shown_any = False
        self.thinking = ""
        self.thinking_tokens = 0
        self.thinking_seconds = 0.0
        self.thought = False
        """The thinking has ended (the answer began): it shows folded."""
        self.unfolded = False
        if message is not None:
            if message.thinking:
                figures = message.figures or {}
                self.thinking = neutralise_controls(message.thinking)
                self.thinking_tokens = int(figures.get("thinking_tokens") or 0)
                self.thinking_seconds = float(figures.get("thinking_seconds") or 0.0)
                self.thought = True
                self._show_thinking()
            self.append(self.visible_part(message.text))
            if message.stop_reason is not None:
                self.end(StopReason(message.stop_reason), speed)
            elif not live:  # written before the app stopped: what was saved of it
                self._set_footer("cut short: llama-tui stopped while writing it (c continues)")
                self.add_class("ended")

    def think(self, text: str, tokens: int, seconds: float) -> None:
        """More thinking: shown live, dimmed, with its running count of tokens and seconds."""
        self.thinking += neutralise_controls(text)
        self.thinking_tokens, self.thinking_seconds = tokens, seconds
        self._show_thinking()

    def thinking_done(self) -> None:
        """The answer begins: the thinking folds to one line (t or a click unfolds it)."""
        if self.thinking and not self.thought:
            self.thought = True
            self._show_thinking()

    def action_toggle_thinking(self) -> None:
        if self.thought:
            self.unfolded = not self.unfolded
            self._show_thinking()

    def on_click(self, event: Any) -> None:
        header_lines = len(self.header_text.splitlines()) if self.header_text else 0
        if self.thought and event.y < header_lines:
            self.action_toggle_thinking()

    def _show_thinking(self) -> None:
        if not self.thinking:
            self.set_header("")
            return
        tokens = counted(self.thinking_tokens, "token")
        figures = f"{tokens} · {self.thinking_seconds:.0f} s"
        if not self.thought:
            lines = self.thinking.strip().splitlines()[-self.LIVE_LINES:]
            self.set_header("\n".join([f"💭 Thinking · {figures}", *lines]))
        elif self.unfolded:
            spent = f"{self.thinking_seconds:.0f} s · {tokens}"
            self.set_header(f"▾ Thought for {spent} (t hides it)\n" + self.thinking.strip())
        else:
            self.set_header(f"▸ Thought for {self.thinking_seconds:.0f} s · {tokens} (t shows it)")

    def visible_part(self, text: str) -> str:
        """Drop the leading whitespace models put before a reply, and control bytes."""
        if not self._shown_any:
            text = text.lstrip()
            self._shown_any = bool(text)
        return neutralise_controls(text)

    def show_versions(self, versions: tuple[int, int]) -> None:
        if versions != self.versions:
            self.versions = versions
            self._set_footer(self._footer_base)

    _footer_base = ""

    def _set_footer(self, text: str) -> None:
        self._footer_base = text
        label = versions_label(*self.versions)
        self.set_footer(" · ".join(part for part in (text, label) if part))

    def end(self, reason: StopReason, speed: str | None) -> None:
        self.reason = reason
        parts = []
        if reason is StopReason.CANCELLED:
            parts.append("⏹ stopped (c continues)")
        elif reason is StopReason.CONTEXT_FULL:
            parts.append("⚠ the context is full: start a new chat (ctrl+n) or load with a larger --max-token")
        elif reason is StopReason.LENGTH:
            parts.append("reached the max reply length (c continues)")
        if speed:
            parts.append(speed)
        if not self._shown_any and reason is not StopReason.CANCELLED:
            parts.insert(0, "(the model replied with nothing)")
        self._set_footer(" · ".join(parts))
        self.finish()
        self.add_class("ended")

    def continuing(self) -> None:
        """The reply goes on: the footer waits for the new end."""
        self.remove_class("ended")
        self._set_footer("")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_thinking":
            return self.thought
        if action == "act" and parameters and parameters[0] == "continue":
            return self.has_class("ended") and self.reason in (StopReason.CANCELLED, StopReason.LENGTH, None)
        return _check(action, parameters, self.versions)


def _check(action: str, parameters: tuple[Any, ...], versions: tuple[int, int]) -> bool | None:
    """Offer ◀/▶ only where there is another version that way."""
    if action == "act" and parameters and parameters[0] in ("previous", "next"):
        position, count = versions
        return position > 1 if parameters[0] == "previous" else position < count
    return True


class Notice(Static):
    """A line in the transcript about the chat itself: dropped turns, errors."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__(literal(text), classes="notice error" if error else "notice")
