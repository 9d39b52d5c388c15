"""The Completion tab: a text area the model continues, from a fresh context each run.

The text is kept across restarts (engine.drafts): saved a moment after each change and when
the app ends. Replies are asked of the app with GenerationRequested, like the chat's.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static, TextArea

from llama_tui.engine.drafts import load_draft, save_draft
from llama_tui.engine.events import StopReason
from llama_tui.text import neutralise_controls
from llama_tui.ui.chat_pane import describe_speed
from llama_tui.ui.messages import (
    GenerationEnded,
    GenerationRefused,
    GenerationRequested,
    GenerationStarted,
    ReplyProgressed,
    ReplyReady,
)
from llama_tui.ui.text_box import TextBox

DRAFT = "completion"
SAVE_AFTER = 1.0
"""Seconds after the last change before the text is saved."""


class CompletionPane(Vertical):
    BINDINGS = [
        Binding("ctrl+r", "run", "Continue", id="completion.run", tooltip="Let the model continue the text"),
    ]

    def __init__(self, *, verbose: bool = False, persist: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.verbose = verbose
        self.persist = persist
        """Keep the text across restarts (off in tests that keep everything in memory)."""
        self.generating = False
        self._asked = False
        self._shown_any = False
        self._save_timer: Timer | None = None
        self._text = load_draft(DRAFT) if persist else ""
        """The text as of its last change."""

    def compose(self) -> ComposeResult:
        yield TextBox(self._text, id="completion-text", soft_wrap=True, tab_behavior="indent")
        yield Static(Content("Write the start of a text; ctrl+r lets the model continue it, "
                             "from this text alone each time."),
                     id="completion-hint")

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#completion-text", TextArea)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._text = event.text_area.text
        if not self.persist:
            return
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(SAVE_AFTER, self._save)

    def _save(self) -> None:
        self._save_timer = None
        if self.persist:
            save_draft(DRAFT, self._text)  # not from the widget: at unmount it is gone

    def on_unmount(self) -> None:
        self._save()

    def action_run(self) -> None:
        if self.generating or self._asked:
            self.notify("A continuation is being written: wait, or press Esc to stop it.", severity="warning")
            return
        area = self.text_area
        text = neutralise_controls(area.text)
        if text != area.text:
            area.load_text(text)
        self._asked = True
        # Each run starts from this text alone, like the original CLI's fresh context; the
        # part already in the KV cache is reused, which computes the same thing faster.
        self.post_message(GenerationRequested(self, text=text))

    def on_generation_refused(self, message: GenerationRefused) -> None:
        message.stop()
        self._asked = False
        self.notify(message.reason, title="Cannot continue", severity="warning", timeout=10)

    def on_generation_started(self, message: GenerationStarted) -> None:
        message.stop()
        self._asked = False
        self.generating = True
        area = self.text_area
        area.read_only = True
        area.move_cursor(area.document.end)
        self._shown_any = bool(area.text)

    async def on_reply_ready(self, message: ReplyReady) -> None:
        message.stop()
        batch = await message.buffer.drain_next_frame()
        if batch is None or not self.generating:
            return
        if batch.text:
            text = neutralise_controls(batch.text)
            if not self._shown_any:  # an empty text area: no leading space before the first word
                text = text.lstrip()
                self._shown_any = bool(text)
            area = self.text_area
            area.insert(text, area.document.end)
            area.move_cursor(area.document.end)
        state = None
        if batch.error is None and batch.finished is None:
            if batch.text or (batch.stats is not None and batch.stats.generated_tokens):
                state = "generating"
            elif batch.prompt_progress is not None:
                state = f"prompt {batch.prompt_progress.done}/{batch.prompt_progress.total}"
        self.post_message(ReplyProgressed(batch.stats, state))
        if batch.error is not None:
            self.notify(batch.error, title="Cannot continue", severity="error", timeout=10)
            self._end()
        elif batch.finished is not None:
            finished = batch.finished
            if finished.reason is StopReason.CANCELLED:
                self.notify("Stopped.", timeout=2)
            elif finished.reason is StopReason.CONTEXT_FULL:
                self.notify("The context is full.", severity="warning")
            if self.verbose:
                self.notify(describe_speed(finished.stats), title="Speed")
            self._end()

    def _end(self) -> None:
        self.generating = False
        self.text_area.read_only = False
        self.post_message(GenerationEnded())
