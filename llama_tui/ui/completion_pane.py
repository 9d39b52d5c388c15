"""The Completion tab: a text area the model continues, from a fresh context each run."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static, TextArea

from llama_tui.engine.events import StopReason
from llama_tui.text import neutralise_controls
from llama_tui.ui.chat_pane import describe_speed
from llama_tui.ui.messages import ReplyReady

if TYPE_CHECKING:
    from llama_tui.ui.app import LlamaApp


class CompletionPane(Vertical):
    BINDINGS = [
        Binding("ctrl+r", "run", "Continue", id="completion.run", tooltip="Let the model continue the text"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.generating = False
        self._shown_any = False

    @property
    def llama_app(self) -> LlamaApp:
        """The app, typed: panes ask it to start replies and read the current settings."""
        return cast("LlamaApp", self.app)

    def compose(self) -> ComposeResult:
        yield TextArea(id="completion-text", soft_wrap=True, tab_behavior="indent")
        yield Static(Content("Write the start of a text; ctrl+r lets the model continue it, from this text alone each time."),
                     id="completion-hint")

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#completion-text", TextArea)

    def action_run(self) -> None:
        if not self.llama_app.can_generate(self):
            return
        area = self.text_area
        text = neutralise_controls(area.text)
        if text != area.text:
            area.load_text(text)
        area.read_only = True
        area.move_cursor(area.document.end)
        self.generating = True
        self._shown_any = bool(text)
        sampling = self.llama_app.options.sampling
        seed = self.llama_app.options.load.seed
        # Each run starts from this text alone, like the original CLI's fresh context; the
        # part already in the KV cache is reused, which computes the same thing faster.
        self.llama_app.start_generation(self, lambda model: model.complete(text, sampling, seed=seed))

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
        self.llama_app.show_batch(batch)
        if batch.error is not None:
            self.app.notify(batch.error, title="Cannot continue", severity="error", timeout=10)
            self._end()
        elif batch.finished is not None:
            finished = batch.finished
            if finished.reason is StopReason.CANCELLED:
                self.app.notify("Stopped.", timeout=2)
            elif finished.reason is StopReason.CONTEXT_FULL:
                self.app.notify("The context is full.", severity="warning")
            if self.llama_app.options.verbose:
                self.app.notify(describe_speed(finished.stats), title="Speed")
            self._end()

    def _end(self) -> None:
        self.generating = False
        self.text_area.read_only = False
        self.llama_app.generation_ended()
