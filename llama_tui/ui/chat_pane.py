"""The Chat tab: a transcript of turns and an input line; replies stream in as Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static

from llama_tui.engine.events import Finished, GenerationStats, StopReason
from llama_tui.engine.model import ChatMessage
from llama_tui.text import neutralise_controls
from llama_tui.ui.markdown_view import MarkdownView
from llama_tui.ui.messages import ReplyReady

if TYPE_CHECKING:
    from llama_tui.ui.app import LlamaApp


def describe_speed(stats: GenerationStats) -> str:
    """The -v line under a reply."""
    parts = [f"{stats.generated_tokens} tokens"]
    if stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.prompt_tokens_per_second is not None:
        parts.append(f"prompt {stats.prompt_evaluated} new of {stats.prompt_tokens} at {stats.prompt_tokens_per_second:.0f} tok/s")
    if stats.time_to_first_token is not None:
        parts.append(f"TTFT {stats.time_to_first_token * 1000:.0f} ms")
    return " · ".join(parts)


class UserMessage(Static):
    """What the user typed, shown literally (Content is never parsed as markup)."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(text), classes="turn user-turn")


class Notice(Static):
    """A line in the transcript about the chat itself: dropped turns, errors."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__(Content(text), classes="notice error" if error else "notice")


class AssistantMessage(MarkdownView):
    """A reply: Markdown streamed in batches, and a footer line once it ends. One widget, so
    each update lays out and paints one widget rather than a container and its children."""

    def __init__(self) -> None:
        super().__init__(classes="turn assistant-turn")
        self.raw_text = ""
        """The reply exactly as the model wrote it; it goes back into the next prompt."""
        self._shown_any = False

    def visible_part(self, text: str) -> str:
        """Drop the leading whitespace models put before a reply, and control bytes."""
        if not self._shown_any:
            text = text.lstrip()
            self._shown_any = bool(text)
        return neutralise_controls(text)

    def end(self, reason: StopReason, speed: str | None) -> None:
        parts = []
        if reason is StopReason.CANCELLED:
            parts.append("⏹ stopped")
        elif reason is StopReason.CONTEXT_FULL:
            parts.append("⚠ the context is full: start a new chat (ctrl+n) or load with a larger --max-token")
        elif reason is StopReason.LENGTH:
            parts.append("reached the max reply length")
        if speed:
            parts.append(speed)
        if not self._shown_any and reason is not StopReason.CANCELLED:
            parts.insert(0, "(the model replied with nothing)")
        self.set_footer(" · ".join(parts))
        self.finish()
        self.add_class("ended")


class ChatPane(Vertical):
    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new", tooltip="Clear the conversation and start again"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.conversation: list[ChatMessage] = []
        self._reply: AssistantMessage | None = None

    @property
    def llama_app(self) -> LlamaApp:
        """The app, typed: panes ask it to start replies and read the current settings."""
        return cast("LlamaApp", self.app)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="transcript"):
            yield self._empty_hint()
        yield Input(placeholder="Message the model · Enter to send · Esc to stop", id="chat-input")

    @staticmethod
    def _empty_hint() -> Static:
        return Static(Content(
            "Type a message below and press Enter; the reply streams in here.\n"
            "Esc stops a reply · ctrl+n starts over · ctrl+o opens another model · F6 settings · ctrl+p all commands"
        ), id="chat-empty")

    def on_mount(self) -> None:
        self.query_one("#transcript", VerticalScroll).anchor()

    @property
    def generating(self) -> bool:
        return self._reply is not None

    @on(Input.Submitted, "#chat-input")
    async def send(self, event: Input.Submitted) -> None:
        text = neutralise_controls(event.value).strip()
        if not text:
            return
        if not self.llama_app.can_generate(self):
            return
        event.input.clear()
        self.conversation.append(ChatMessage("user", text))
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.query("#chat-empty").remove()
        self._reply = AssistantMessage()
        await transcript.mount_all([UserMessage(text), self._reply])
        messages = list(self.conversation)
        system_prompt = self.llama_app.options.system_prompt
        if system_prompt:
            messages.insert(0, ChatMessage("system", system_prompt))
        sampling = self.llama_app.options.sampling
        seed = self.llama_app.options.load.seed
        self.llama_app.start_generation(self, lambda model: model.chat(messages, sampling, seed=seed))

    async def on_reply_ready(self, message: ReplyReady) -> None:
        message.stop()
        batch = await message.buffer.drain_next_frame()
        reply = self._reply
        if batch is None or reply is None:
            return
        if batch.dropped_messages:
            await self._add_notice(
                f"The {batch.dropped_messages} oldest messages no longer fit the context and were left out of this reply."
            )
        if batch.text:
            reply.raw_text += batch.text
            reply.append(reply.visible_part(batch.text))
        self.llama_app.show_batch(batch)
        if batch.error is not None:
            await self._fail(batch.error)
        elif batch.finished is not None:
            await self._finish(batch.finished)

    async def _finish(self, finished: Finished) -> None:
        reply = self._reply
        assert reply is not None
        # A stopped reply stays in the conversation as far as it got: the user saw it.
        self.conversation.append(ChatMessage("assistant", reply.raw_text))
        verbose = self.llama_app.options.verbose
        reply.end(finished.reason, describe_speed(finished.stats) if verbose else None)
        self._reply = None
        self.llama_app.generation_ended()

    async def _fail(self, error: str) -> None:
        """The reply failed. If it never started, take the message back so nothing typed is lost."""
        reply = self._reply
        assert reply is not None
        if reply.raw_text:
            self.conversation.append(ChatMessage("assistant", reply.raw_text))
            reply.end(StopReason.CANCELLED, None)
            await self._add_notice(error, error=True)
            self._reply = None
            self.llama_app.generation_ended()
            return
        user_text = self.conversation.pop().content
        previous = reply.previous_sibling
        await reply.remove()
        if isinstance(previous, UserMessage):
            await previous.remove()
        prompt_input = self.query_one("#chat-input", Input)
        if not prompt_input.value:
            prompt_input.value = user_text
        await self._add_notice(error, error=True)
        self._reply = None
        self.llama_app.generation_ended()

    async def _add_notice(self, text: str, *, error: bool = False) -> None:
        transcript = self.query_one("#transcript", VerticalScroll)
        notice = Notice(text, error=error)
        if self._reply is not None and self._reply.parent is transcript:
            await transcript.mount(notice, before=self._reply)
        else:
            await transcript.mount(notice)

    async def action_new_chat(self) -> None:
        if self.generating:
            self.app.notify("Stop the reply first (Esc).", severity="warning")
            return
        self.conversation.clear()
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.remove_children()
        await transcript.mount(self._empty_hint())
        self.query_one("#chat-input", Input).focus()
