"""The Chat tab: one conversation (a tree of messages, one branch shown), and a message box.

The pane owns the conversation on screen and keeps it in the store as it changes: a message
is saved when it is sent, a reply when it starts, as it grows (at most `SAVE_EVERY` apart)
and when it ends. It asks the app for replies with GenerationRequested and hears back
GenerationStarted or GenerationRefused; it never reaches into the app.

Branches: regenerating a reply adds a sibling reply, editing a message adds a sibling message
(the old ones stay, ◀/▶ on the message switches between them); the current branch is what the
model sees. Long conversations: only the last `WINDOW` messages are mounted (the last
screenful first, then the rest a screenful a frame); reaching the top mounts up to `WINDOW`
more above them, keeping the reader's place and the focus. Messages sent are added at the
end; once more than two windows are mounted, sending unmounts all but the last window.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.errors import NoWidget
from textual.geometry import Size
from textual.layout import DockArrangeResult
from textual.scrollbar import ScrollBar
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Label, Static
from textual.worker import Worker

from llama_tui.engine.conversation import Conversation, Message
from llama_tui.engine.drafts import load_draft, save_draft
from llama_tui.engine.events import Finished, GenerationStats, StopReason
from llama_tui.engine.settings import SamplingSettings
from llama_tui.engine.store import ConversationStore, MemoryStore
from llama_tui.text import neutralise_controls
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_messages import AssistantMessage, MessageAction, Notice, UserMessage
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.literal import literal
from llama_tui.ui.markdown_blocks import code_blocks
from llama_tui.ui.messages import (
    ChatCleared,
    GenerationEnded,
    GenerationRefused,
    GenerationRequested,
    GenerationStarted,
    PresetChosen,
    ReplyProgressed,
    ReplyReady,
)

SAVE_EVERY = 0.5
"""Seconds between saves of a growing reply: a crash loses at most this much of it."""
WINDOW = 60
"""Messages mounted at first; scrolling to the top mounts this many more."""
FILL_SLACK_ROWS = 8
"""A conversation opens with its last screenful of messages, estimated from their text with
these rows to spare (Markdown wraps at words, and adds lines between blocks); the rest of
the window follows, a screenful a frame."""
FILL_TYPING_PAUSE = 0.3
"""Seconds after a change to the message box before more of the window is mounted."""
DRAFT = "chat"
DRAFT_SAVE_AFTER = 1.0
"""Seconds after the last change to the message box before its text is saved as a draft."""


def describe_speed(stats: GenerationStats) -> str:
    """The -v line under a reply."""
    parts = [f"{stats.generated_tokens} tokens"]
    if stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.prompt_tokens_per_second is not None:
        parts.append(f"prompt {stats.prompt_evaluated} new of {stats.prompt_tokens} "
                     f"at {stats.prompt_tokens_per_second:.0f} tok/s")
    if stats.time_to_first_token is not None:
        parts.append(f"TTFT {stats.time_to_first_token * 1000:.0f} ms")
    if stats.acceptance_rate is not None:
        parts.append(f"draft {stats.acceptance_rate:.0%} ({stats.accepted_tokens} of {stats.drafted_tokens} "
                     "drafted tokens accepted)")
    return " · ".join(parts)


def figures(stats: GenerationStats) -> dict[str, Any]:
    """The engine's figures kept with a reply in the history."""
    return {
        "generated_tokens": stats.generated_tokens,
        "tokens_per_second": stats.tokens_per_second,
        "time_to_first_token": stats.time_to_first_token,
        "prompt_tokens": stats.prompt_tokens,
        "prompt_evaluated": stats.prompt_evaluated,
        "prompt_tokens_per_second": stats.prompt_tokens_per_second,
        "drafted_tokens": stats.drafted_tokens,
        "accepted_tokens": stats.accepted_tokens,
    }


@dataclass
class _Asked:
    """A request sent to the app, not yet answered: what to undo if it is refused."""

    kind: str
    """"send" (a new user message), "edit", "regenerate" or "continue"."""
    typed: str = ""
    """For send/edit: the text as it was in the box, to put back."""
    user_id: str | None = None
    """For send/edit: the user message added for it."""
    parent_id: str | None = None
    """For regenerate: the user message the new reply answers."""
    reply_id: str | None = None
    """For continue: the reply that goes on."""


@dataclass
class _Writing:
    """The reply being written."""

    message_id: str
    widget: AssistantMessage
    prefix: str
    """For a continued reply: the text it had before."""
    typed: str = ""
    """The message it answers as it was in the box, to put back if the reply cannot start."""
    saved_at: float = 0.0


class Transcript(VerticalScroll):
    """The messages; reaching the top mounts earlier ones (see ChatPane.show_earlier), and
    while they are mounted above what is on screen, the view stays where it was."""

    def __init__(self, *children: Widget, id: str | None = None) -> None:
        super().__init__(*children, id=id)
        self._pinned: tuple[Widget, int] | None = None

    def keep_in_place(self, widget: Widget | None) -> None:
        """Keep `widget` where it is on screen while widgets are mounted above it: the view
        moves down by as much as it does (until called with None). A widget not laid out
        yet has no place to keep."""
        self._pinned = None
        if widget is not None:
            try:
                y = self.screen.find_widget(widget).virtual_region.y
            except NoWidget:
                return
            if self.scroll_y <= 0:  # the reader is on the line saying that earlier messages follow
                y = widget.styles.margin.top  # they get the message under it at the top
            self._pinned = (widget, y)

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        arrangement = super().arrange(size, optimal)
        if self._pinned is not None:
            widget, y = self._pinned
            for placement in arrangement.placements:
                if placement.widget is widget:
                    moved = placement.region.y - y
                    if moved:
                        # Set as the compositor sets an anchored view's: it reads the scroll
                        # offset after arranging, so the frame with the new widgets already
                        # shows the old place (no watchers: this is not the reader scrolling).
                        self._pinned = (widget, placement.region.y)
                        scroll_y = max(0.0, self.scroll_y + moved)
                        self.set_reactive(Widget.scroll_y, scroll_y)
                        self.set_reactive(Widget.scroll_target_y, scroll_y)
                        self.vertical_scrollbar.set_reactive(ScrollBar.position, scroll_y)
                    break
        return arrangement

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < old or (new <= 0 and self.max_scroll_y == 0):
            pane = self.parent
            if isinstance(pane, ChatPane):
                pane.show_earlier()


class ChatPane(Vertical):
    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new", tooltip="Start a new conversation (this one is kept)"),
        Binding("f8", "choose_preset", "Preset", id="chat.preset",
                tooltip="The system prompt and sampling preset of this conversation"),
        # Only while a message is being edited (see check_action); else Esc stops a reply.
        Binding("escape", "give_up_edit", "Give up the edit", id="chat.give_up_edit",
                tooltip="Leave the message as it was; the box gets back what it held before"),
    ]

    def __init__(self, *, verbose: bool = False, persist: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.verbose = verbose
        self.persist = persist
        """Keep the message box's text across restarts (off in tests that keep everything in memory)."""
        self.conversation = Conversation()
        self.store: ConversationStore = MemoryStore()
        """Set by the app once the history file is open (set_store)."""
        self.presets: dict[str, Any] = {}
        """Set by the app: the presets that can be chosen (F8)."""
        self._asked: _Asked | None = None
        self._writing: _Writing | None = None
        self._starting: str | None = None
        """The reply whose widget is being made as it starts (shown as live, not as cut short)."""
        self._editing: str | None = None
        """While a message is being edited: its id (the new version becomes its sibling)."""
        self._before_edit = ""
        """What the message box held when the edit began, given back if the edit is given up."""
        self._shown_from = 0
        """Where in the branch (system prompt left out) the mounted messages start, once the
        window is filled: only the last WINDOW at first, WINDOW more each time the reader
        reaches the top. Messages sent and replies are mounted after the others; once more
        than 2 * WINDOW are, a message sent unmounts all but the last WINDOW."""
        self._rendering = asyncio.Lock()
        """One change of the mounted messages at a time."""
        self._filler: Worker[None] | None = None
        """The worker mounting the messages before the first one mounted (`_fill`)."""
        self._typed_at = 0.0
        """When the message box last changed: mounting earlier messages waits while the user types."""
        self._code_copied: tuple[str, int] | None = None
        self._draft = ""
        """The message box's text as of its last change."""
        self._draft_timer: Timer | None = None
        self._in_store: str | None = None
        """The id of the shown conversation once the store holds it (its first reply, or loaded
        from it): until then there is nothing to update there."""
        self._dropped: str | None = None
        """A conversation deleted from the history while on screen: it stays on screen, and
        nothing of it is saved again (not even when it goes on)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-header"):
            yield Label(id="chat-title")
            yield Label(id="chat-model")
        with Transcript(id="transcript"):
            yield self._empty_hint()
        yield ChatInput(placeholder="Message the model · Enter sends · ctrl+j new line · Esc stops", id="chat-input")

    @staticmethod
    def _empty_hint() -> Static:
        return Static(Content(
            "Type a message below and press Enter; the reply streams in here.\n"
            "Esc stops a reply · ctrl+n starts over · F7 history · F8 preset · ctrl+o another model · "
            "F6 settings · ctrl+p all commands · shift+tab reaches the messages"
        ), id="chat-empty")

    def on_mount(self) -> None:
        self.query_one("#transcript", VerticalScroll).anchor()
        draft = load_draft(DRAFT) if self.persist else ""
        if draft:
            self.chat_input.load_text(draft)
            self.chat_input.move_cursor(self.chat_input.document.end)
        self._show_header()

    @on(ChatInput.Changed, "#chat-input")
    def _box_changed(self, event: ChatInput.Changed) -> None:
        """What is in the box is saved a moment after it changes, and when the app ends."""
        self._draft = event.text_area.text
        self._typed_at = time.monotonic()
        if self._draft_timer is not None:
            self._draft_timer.stop()
        if self.persist:
            self._draft_timer = self.set_timer(DRAFT_SAVE_AFTER, self._save_draft)

    def _save_draft(self) -> None:
        self._draft_timer = None
        if self.persist:
            save_draft(DRAFT, self._draft)

    def on_unmount(self) -> None:
        self._save_draft()  # the box is gone by now: its last text was kept in _draft

    @property
    def chat_input(self) -> ChatInput:
        return self.query_one("#chat-input", ChatInput)

    @property
    def transcript_view(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def generating(self) -> bool:
        return self._writing is not None or self._asked is not None

    # -- set by the app ------------------------------------------------------------------

    def set_store(self, store: ConversationStore) -> None:
        """The history file is open: what was said before it was goes into it too."""
        self.store = store
        self._in_store = None
        if self.conversation.messages:
            store.create(self.conversation)
            self._in_store = self.conversation.id

    def show_conversation(self, conversation: Conversation) -> None:
        """Show a saved conversation; the next message continues it."""
        if self.generating:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        self.conversation = conversation
        self._in_store = conversation.id
        self._shown_from = max(0, len(self._shown_branch()) - WINDOW)
        self._editing = None
        self.refresh_bindings()
        self.chat_input.sent_messages = [m.text for m in conversation.branch() if m.role == "user"]
        self.post_message(ChatCleared())  # what the model holds is another conversation's
        self.run_worker(self._render_branch(scroll_to_end=True), exclusive=True, group="transcript")
        self._show_header()

    def history_changed(self, renamed: dict[str, str], deleted: set[str]) -> None:
        """The history screen renamed or deleted conversations: follow, if this is one of them."""
        shown = self.conversation.id
        if shown in deleted:
            self._in_store = None  # it is gone from the store; what is on screen stays, unsaved
            self._dropped = shown
            self.notify("The conversation on screen was deleted from the history: it is no longer saved.",
                        severity="warning")
        elif shown in renamed:
            self.conversation.title = renamed[shown]
        self._show_header()

    def system_prompt_changed(self) -> None:
        """The settings' system prompt was changed (F6): a conversation without a preset takes
        it from its next reply, rather than going on with the one it was held with."""
        if self.conversation.preset not in self.presets:  # (a preset's own prompt still applies)
            self.conversation.system_prompt = ""

    def suggest_preset(self, name: str) -> None:
        """The preset this model was last used with: taken by a conversation without one yet."""
        if not self.conversation.messages and not self.conversation.preset and name in self.presets:
            self.conversation.preset = name
            self._show_header()

    # -- the transcript --------------------------------------------------------------------

    def _message_widgets(self) -> list[UserMessage | AssistantMessage]:
        return [w for w in self.transcript_view.children if isinstance(w, (UserMessage, AssistantMessage))]

    def _widget_for(self, message: Message) -> Widget:
        versions = self.conversation.siblings(message.id)
        if message.role == "user":
            return UserMessage(message, versions)
        speed = ""
        if self.verbose and message.figures:
            speed = describe_speed(GenerationStats(**{k: message.figures[k] for k in
                                                      ("generated_tokens", "prompt_tokens", "prompt_evaluated",
                                                       "drafted_tokens", "accepted_tokens")
                                                      if k in message.figures}))
        live = message.id in (self._starting, self._writing.message_id if self._writing else None)
        return AssistantMessage(message, versions, speed=speed, live=live)

    def _shown_branch(self) -> list[Message]:
        return [m for m in self.conversation.branch() if m.role != "system"]

    def _screenful_from(self, branch: list[Message], end: int) -> int:
        """Where messages ending at `end` start to fill the transcript's height (estimated
        from their text: a message is measured only once mounted); at least two of them."""
        transcript = self.transcript_view
        height = transcript.size.height or self.app.size.height
        width = max(20, (transcript.size.width or self.app.size.width) - 16)  # margins, borders, padding
        rows = 0
        start = end
        while start > 0 and (rows < height + FILL_SLACK_ROWS or end - start < 2):
            start -= 1
            text = branch[start].text
            rows += 2 + sum(max(1, -(-len(line) // width)) for line in text.split("\n"))  # margin, footer
        return start

    async def _render_branch(self, *, scroll_to_end: bool = False) -> None:
        """Make the transcript show the current branch from `_shown_from` on, keeping the
        widgets of messages already shown. With none kept (another conversation), only the
        last screenful is mounted here, and the rest after it is drawn (`_fill`)."""
        async with self._rendering:
            transcript = self.transcript_view
            branch = self._shown_branch()
            if self._shown_from >= len(branch):
                self._shown_from = max(0, len(branch) - WINDOW)
            position = {message.id: n for n, message in enumerate(branch)}
            shown = self._message_widgets()
            first = position.get(shown[0].message_id, -1) if shown else -1
            keep = 0
            if first >= self._shown_from:
                while (keep < len(shown) and first + keep < len(branch)
                       and shown[keep].message_id == branch[first + keep].id):
                    keep += 1
            if keep == 0 or keep < len(shown):
                # Something in the kept part changed (another branch, another conversation):
                # notices belong to what is gone.
                await transcript.query(Notice).remove()
            await transcript.query("#chat-empty").remove()
            for widget in shown[keep:]:
                await widget.remove()
            if keep == 0:  # another conversation: its last screenful now, the rest once that is drawn
                transcript.keep_in_place(None)
                first = max(self._shown_from, self._screenful_from(branch, len(branch)))
            for widget, message in zip(shown[:keep], branch[first:], strict=False):
                widget.show_versions(self.conversation.siblings(message.id))
            new = [self._widget_for(message) for message in branch[first + keep:]]
            if new:
                await transcript.mount_all(new)
            if keep and scroll_to_end and len(branch) - first > 2 * WINDOW:
                first = await self._unmount_before(len(branch) - WINDOW)
            await self._show_hidden(first)
            if not branch:
                await transcript.mount(self._empty_hint())
            if scroll_to_end:
                transcript.scroll_end(animate=False)
        if first > self._shown_from:
            self._start_fill()

    async def _unmount_before(self, start: int) -> int:
        """Unmount the messages (and notices) before the branch's message `start`, as the
        conversation goes on at the end, so that what is mounted stays about one window: each
        layout costs as much as there are widgets mounted. Returns `start`."""
        transcript = self.transcript_view
        keep_from = self._shown_branch()[start].id
        gone: list[Widget] = []
        for child in transcript.children:
            if getattr(child, "message_id", None) == keep_from:
                break
            if child.id != "chat-earlier":
                gone.append(child)
        transcript.keep_in_place(None)
        await transcript.remove_children(gone)
        self._shown_from = start
        return start

    async def _show_hidden(self, hidden: int) -> None:
        """The line above the messages that says how many earlier ones are not mounted."""
        transcript = self.transcript_view
        found = transcript.query("#chat-earlier")
        if not hidden:
            await found.remove()
            return
        text = literal(f"⋯ {hidden} earlier messages: scroll up to see them")
        if found:
            found.first(Static).update(text)
        else:
            await transcript.mount(Static(text, id="chat-earlier", classes="notice"), before=0)

    def show_earlier(self) -> None:
        """The reader reached the top: mount up to WINDOW more messages above."""
        if self._filling:
            return  # it will be filled as far as `_shown_from` says
        first = self._first_shown()
        if first <= 0:
            return  # none mounted, or all of them
        if first <= self._shown_from:
            self._shown_from = max(0, first - WINDOW)
        self._start_fill()

    def _first_shown(self) -> int:
        """Where the first message mounted is in the branch (-1: none is)."""
        shown = self._message_widgets()
        if shown:
            for n, message in enumerate(self._shown_branch()):
                if message.id == shown[0].message_id:
                    return n
        return -1

    @property
    def _filling(self) -> bool:
        filler = self._filler
        return filler is not None and not filler.is_cancelled and not filler.is_finished

    def _start_fill(self) -> None:
        if not self._filling:
            self._filler = self.run_worker(self._fill(), group="transcript", exit_on_error=False)

    async def _fill(self) -> None:
        """Mount the messages from `_shown_from` up to the first one mounted, a screenful at a
        time, each drawn before the next is made, keeping the reader's place."""
        while True:
            await self.wait_for_refresh()  # the last ones are laid out and drawn; keys got in
            while (wait := self._typed_at + FILL_TYPING_PAUSE - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # a key would wait for a screenful to be laid out
            async with self._rendering:
                transcript = self.transcript_view
                shown = self._message_widgets()
                branch = self._shown_branch()
                first = self._first_shown()
                if first <= self._shown_from:
                    transcript.keep_in_place(None)  # the last ones were laid out at the place kept
                    return
                start = max(self._shown_from, self._screenful_from(branch, first))
                transcript.keep_in_place(shown[0])
                await transcript.mount_all([self._widget_for(m) for m in branch[start:first]], before=shown[0])
                await self._show_hidden(start)

    async def _add_notice(self, text: str, *, error: bool = False, before: Widget | None = None) -> None:
        transcript = self.transcript_view
        notice = Notice(text, error=error)
        if before is not None and before.parent is transcript:
            await transcript.mount(notice, before=before)
        else:
            await transcript.mount(notice)

    def _show_header(self) -> None:
        parts = [self.conversation.display_title]
        parts.append(f"preset: {self.conversation.preset}" if self.conversation.preset else "no preset (F8)")
        if self.conversation.id == self._dropped:
            parts.append("not saved (deleted from the history)")
        self.query_one("#chat-title", Label).update(literal(" · ".join(parts)))

    def show_model(self, description: str) -> None:
        """How the model runs, for the header: its chat template and why, or its server."""
        label = self.query_one("#chat-model", Label)
        label.update(literal(description))
        label.tooltip = literal(description)

    # -- sending -----------------------------------------------------------------------------

    @on(ChatInput.Submitted, "#chat-input")
    async def send(self, event: ChatInput.Submitted) -> None:
        # Blank lines around the message go; the first line's indentation (code) stays.
        text = re.sub(r"\A(?:[ \t]*\n)+", "", neutralise_controls(event.text)).rstrip()
        if not text:
            return
        if self.generating:
            self.notify("A reply is still being written: wait, or press Esc to stop it.", severity="warning")
            return
        editing, self._editing = self._editing, None
        self.refresh_bindings()  # Esc no longer gives up an edit
        if editing is not None and editing in self.conversation.messages:  # (it may have been deleted since)
            parent = self.conversation.messages[editing].parent_id
            message = self.conversation.add("user", text, parent_id=parent)
            kind = "edit"
        else:
            message = self.conversation.add("user", text)
            kind = "send"
        event.chat_input.clear()
        self.chat_input.remember(text)
        await self._render_branch(scroll_to_end=True)
        await self._request(_Asked(kind, typed=event.text, user_id=message.id))

    async def _request(self, asked: _Asked, prefill: str = "") -> None:
        """Ask the app for a reply to the current branch (up to a regenerated reply's parent)."""
        self._asked = asked
        until = asked.parent_id or asked.user_id
        if asked.reply_id is not None:  # continue: everything before the reply
            until = self.conversation.messages[asked.reply_id].parent_id
        chat = [m.as_chat() for m in self.conversation.branch(until) if m.role != "assistant" or m.text]
        another = len(self.conversation.children(asked.parent_id)) if asked.kind == "regenerate" else 0
        self.post_message(GenerationRequested(self, chat=chat, preset=self.conversation.preset,
                                              system_prompt=self.conversation.system_prompt, prefill=prefill,
                                              another=another))

    async def on_generation_refused(self, message: GenerationRefused) -> None:
        message.stop()
        asked, self._asked = self._asked, None
        if asked is None:
            return
        if asked.user_id is not None:  # the message was not sent after all: back in the box
            self.conversation.delete(asked.user_id)
            await self._render_branch(scroll_to_end=True)
            self.chat_input.put_back(asked.typed)
        self.notify(message.reason, severity="warning")

    async def on_generation_started(self, started: GenerationStarted) -> None:
        started.stop()
        asked, self._asked = self._asked, None
        if asked is None:
            return
        conversation = self.conversation
        if asked.kind == "continue":
            assert asked.reply_id is not None
            reply = conversation.messages[asked.reply_id]
            conversation.select(reply.id)
            widget = self._reply_widget(reply.id)
            prefix = reply.text
            if widget is None:
                await self._render_branch(scroll_to_end=True)
                widget = self._reply_widget(reply.id)
            assert widget is not None
            widget.continuing()
            conversation.update(reply.id, stop_reason=None)
        else:
            parent = asked.parent_id or asked.user_id
            reply = conversation.add(
                "assistant", "", parent_id=parent, model_name=started.model_name, model_ref=started.model_ref,
                sampling=_as_dict(started.sampling), seed=started.sampling.seed,
            )
            prefix = ""
            self._starting = reply.id
            try:
                await self._render_branch(scroll_to_end=True)
            finally:
                self._starting = None
            widget = self._reply_widget(reply.id)
            assert widget is not None
            if asked.kind == "regenerate":
                # r was pressed on the old reply, whose widget is gone: the new one takes the
                # focus, so ← compares with the old one right away.
                widget.focus()
        self._writing = _Writing(reply.id, widget, prefix, typed=asked.typed, saved_at=time.monotonic())
        # The conversation keeps the system prompt it is held with (saved below, exported with
        # it, and used again when it is reopened).
        conversation.system_prompt = started.system_prompt
        if conversation.id == self._dropped:
            pass  # deleted from the history: the user was told it is no longer saved
        elif self._in_store != conversation.id:
            self.store.create(conversation)
            self._in_store = conversation.id
        else:
            if asked.user_id is not None:
                self.store.add_message(conversation.id, conversation.messages[asked.user_id])
            if asked.kind != "continue":
                self.store.add_message(conversation.id, conversation.messages[reply.id])
            self.store.update_conversation(conversation)
        self._show_header()

    def _stored(self) -> bool:
        """Whether the store holds the shown conversation, to be kept up to date there."""
        return self._in_store == self.conversation.id

    def _reply_widget(self, message_id: str) -> AssistantMessage | None:
        for widget in self._message_widgets():
            if isinstance(widget, AssistantMessage) and widget.message_id == message_id:
                return widget
        return None

    # -- a reply streams in ------------------------------------------------------------------

    async def on_reply_ready(self, message: ReplyReady) -> None:
        message.stop()
        batch = await message.buffer.drain_next_frame()
        writing = self._writing
        if batch is None or writing is None:
            return
        widget = writing.widget
        for notice in batch.notices:
            await self._add_notice(notice, before=widget)
        if batch.dropped_messages:
            await self._add_notice(
                f"The {batch.dropped_messages} oldest messages no longer fit the context "
                "and were left out of this reply.",
                before=widget,
            )
        if batch.thinking:
            reply = self.conversation.messages[writing.message_id]
            self.conversation.update(writing.message_id, thinking=reply.thinking + batch.thinking)
            stats = batch.thinking_stats
            widget.think(batch.thinking, stats.generated_tokens if stats else 0, _seconds(stats))
        if batch.text:
            widget.thinking_done()
            widget.append(widget.visible_part(batch.text))
            reply = self.conversation.messages[writing.message_id]
            self.conversation.update(writing.message_id, text=reply.text + batch.text)
            # Saved as it grows: a crash loses at most SAVE_EVERY of it.
            if self._stored() and time.monotonic() - writing.saved_at >= SAVE_EVERY:
                writing.saved_at = time.monotonic()
                self.store.update_message(self.conversation.id, self.conversation.messages[writing.message_id])
        state = None
        if batch.error is None and batch.finished is None:
            if batch.thinking and not batch.text and not widget.thought:
                state = "thinking"
            elif batch.text or (batch.stats is not None and batch.stats.generated_tokens):
                state = "generating"
            elif batch.prompt_progress is not None:
                state = f"prompt {batch.prompt_progress.done}/{batch.prompt_progress.total}"
        self.post_message(ReplyProgressed(batch.stats, state))
        if batch.error is not None:
            await self._fail(batch.error)
        elif batch.finished is not None:
            await self._finish(batch.finished)

    async def _finish(self, finished: Finished) -> None:
        writing, self._writing = self._writing, None
        assert writing is not None
        # A stopped reply stays in the conversation as far as it got: the user saw it.
        widget = writing.widget
        widget.thinking_done()
        kept = figures(finished.stats)
        if widget.thinking:
            kept.update(thinking_tokens=widget.thinking_tokens, thinking_seconds=widget.thinking_seconds)
        reply = self.conversation.update(writing.message_id, stop_reason=finished.reason.value, figures=kept)
        if self._stored():
            self.store.update_message(self.conversation.id, reply)
        widget.end(finished.reason, describe_speed(finished.stats) if self.verbose else None)
        self.post_message(GenerationEnded())

    async def _fail(self, error: str) -> None:
        """The reply failed. If it never started, take the message back so nothing typed is lost."""
        writing, self._writing = self._writing, None
        assert writing is not None
        reply = self.conversation.messages[writing.message_id]
        if reply.text != writing.prefix or writing.prefix:  # it said something: that stays, marked
            reply = self.conversation.update(reply.id, stop_reason=StopReason.CANCELLED.value)
            if self._stored():
                self.store.update_message(self.conversation.id, reply)
            writing.widget.end(StopReason.CANCELLED, None)
            await self._add_notice(error, error=True)
            self.post_message(GenerationEnded())
            return
        user = self.conversation.messages.get(reply.parent_id or "")
        removed = self.conversation.delete(reply.id)
        typed = None
        if user is not None and user.role == "user" and not self.conversation.children(user.id):
            typed = writing.typed or user.text  # the message got no reply at all: back in the box, as typed
            removed += self.conversation.delete(user.id)
        if self._stored():
            self.store.delete_messages(self.conversation.id, removed)
            self.store.update_conversation(self.conversation)
        await self._render_branch(scroll_to_end=True)
        self._show_header()  # a first message taken back takes the title with it
        if typed is not None:
            self.chat_input.put_back(typed)
        await self._add_notice(error, error=True)
        self.post_message(GenerationEnded())

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of the chat so far, the reply being written included."""
        said: list[tuple[str, str]] = [(m.role, m.text) for m in self.conversation.branch()]
        if self._writing is not None:
            said[-1] = (said[-1][0], said[-1][1] + " [cut short]")
        return said

    # -- actions on messages -------------------------------------------------------------------

    async def on_message_action(self, event: MessageAction) -> None:
        event.stop()
        message = self.conversation.messages.get(event.message_id)
        if message is None:
            return
        action = event.action
        if action in ("up", "down"):
            self._move_focus(event.message_id, -1 if action == "up" else 1)
        elif action == "leave":
            if self.generating:
                await self.run_action("app.stop_generation")
            else:
                self.chat_input.focus()
        elif action == "copy":
            self.app.copy_to_clipboard(message.text)
            self.notify("Copied the message to the clipboard.", timeout=2)
        elif action == "copy_code":
            self._copy_code(message)
        elif action in ("previous", "next"):
            await self._switch_version(message, -1 if action == "previous" else 1)
        elif self.generating:
            self.notify("A reply is being written: wait, or press Esc to stop it.", severity="warning")
        elif action == "regenerate":
            await self._request(_Asked("regenerate", parent_id=message.parent_id))
        elif action == "continue":
            await self._request(_Asked("continue", reply_id=message.id), prefill=message.text)
        elif action == "edit":
            if self._editing is None:
                self._before_edit = self.chat_input.text
            self._editing = message.id
            self.chat_input.load_text(message.text)
            self.chat_input.move_cursor(self.chat_input.document.end)
            self.chat_input.focus()
            self.refresh_bindings()
            self.notify("Editing: Enter sends it as a new version (the old one stays, ◀/▶ on it); Esc gives up.",
                        timeout=5)
        elif action == "delete":
            self.app.push_screen(
                ConfirmScreen("Delete this message and everything after it in this branch?", yes="Delete", no="Keep"),
                lambda yes: self._delete(message.id) if yes else None,
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "give_up_edit":
            return self._editing is not None and not self.generating  # else Esc stops the reply
        return True

    def action_give_up_edit(self) -> None:
        """Esc while editing: the message stays as it was, and the next one is a new message."""
        self._editing = None
        self.chat_input.load_text(self._before_edit)
        self.chat_input.move_cursor(self.chat_input.document.end)
        self._before_edit = ""
        self.refresh_bindings()
        self.notify("Edit given up: the message stays as it was.", timeout=3)

    def _move_focus(self, message_id: str, step: int) -> None:
        widgets = self._message_widgets()
        ids = [getattr(widget, "message_id", None) for widget in widgets]
        index = ids.index(message_id) + step if message_id in ids else -1
        if 0 <= index < len(widgets):
            widgets[index].focus()
            widgets[index].scroll_visible()
        elif index >= len(widgets):
            self.chat_input.focus()
        else:
            self.show_earlier()

    def _copy_code(self, message: Message) -> None:
        blocks = code_blocks(message.text)
        if not blocks:
            self.notify("This message has no code block.", timeout=3)
            return
        # The last block first (most often the answer); pressed again, the one before.
        previous = self._code_copied
        index = previous[1] - 1 if previous and previous[0] == message.id else len(blocks) - 1
        index %= len(blocks)
        self._code_copied = (message.id, index)
        self.app.copy_to_clipboard(blocks[index])
        self.notify(f"Copied code block {index + 1} of {len(blocks)}.", timeout=2)

    async def _switch_version(self, message: Message, step: int) -> None:
        if self.generating:
            self.notify("A reply is being written: wait, or press Esc to stop it.", severity="warning")
            return
        chosen = self.conversation.select_sibling(message.id, step)
        if chosen is None:
            return
        if self._stored():
            self.store.update_conversation(self.conversation)
        await self._render_branch()
        self._show_header()  # the title is the start of the first message shown
        for widget in self._message_widgets():
            if getattr(widget, "message_id", None) == chosen:
                widget.focus()
                widget.scroll_visible()

    def _delete(self, message_id: str) -> None:
        removed = self.conversation.delete(message_id)
        if self._stored():
            self.store.delete_messages(self.conversation.id, removed)
            self.store.update_conversation(self.conversation)
        self.run_worker(self._render_branch(), exclusive=True, group="transcript")
        self.chat_input.focus()
        self._show_header()

    # -- presets and new chats -------------------------------------------------------------------

    def action_choose_preset(self) -> None:
        from llama_tui.ui.preset_screen import PresetScreen

        self.app.push_screen(PresetScreen(self.presets, self.conversation.preset), self._preset_chosen)

    def _preset_chosen(self, name: str | None) -> None:
        if name is None:
            return
        self.conversation.preset = name
        self.conversation.system_prompt = ""  # the preset's, or the settings', from the next reply
        if self._stored():
            self.store.update_conversation(self.conversation)
        self._show_header()
        self.post_message(PresetChosen(name))
        self.notify(f"Preset {name}: from the next reply." if name else "No preset: the settings apply as they are.",
                    timeout=3)

    async def action_new_chat(self) -> None:
        if self.generating:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        preset = self.conversation.preset
        self.conversation = Conversation(preset=preset)
        self._in_store = None
        self._editing = None
        self.refresh_bindings()
        self._shown_from = 0
        self.post_message(ChatCleared())
        await self._render_branch()
        self._show_header()
        self.chat_input.focus()


def _seconds(stats: GenerationStats | None) -> float:
    """How long the reply has been written, as of these figures."""
    if stats is None:
        return 0.0
    return (stats.time_to_first_token or 0.0) + stats.decode_seconds


def _as_dict(sampling: SamplingSettings) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(sampling)
