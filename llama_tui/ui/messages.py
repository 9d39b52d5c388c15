"""Messages of the UI, small and named for what happened.

Attributes go down, messages go up: the app sets things on its panes and calls their methods;
a pane never reaches up into the app, it posts one of these and the app answers, by posting
back to the pane that asked (`requester`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.message import Message
from textual.widget import Widget

from llama_tui.engine.backend import ModelBackend
from llama_tui.engine.conversation import ChatMessage, Conversation
from llama_tui.engine.events import GenerationStats
from llama_tui.engine.settings import SamplingSettings
from llama_tui.engine.store import ConversationStore
from llama_tui.ui.reply_buffer import ReplyBuffer

# -- a pane asks, the app answers ------------------------------------------------------------


@dataclass
class GenerationRequested(Message):
    """A pane wants a reply (chat) or a continuation (text). The app fills in the live
    settings (and the conversation's preset), starts it, and answers `requester` with
    GenerationStarted or GenerationRefused."""

    requester: Widget
    chat: Sequence[ChatMessage] | None = None
    """The conversation, without the system prompt (the app adds the one in effect)."""
    text: str | None = None
    """For a completion: the text to continue."""
    preset: str = ""
    """The conversation's preset: its system prompt and sampling apply."""
    system_prompt: str = ""
    """The system prompt the conversation was held with so far (used when it has no preset)."""
    prefill: str = ""
    """Continue this unfinished reply rather than start a new one."""
    another: int = 0
    """For a regenerated reply: how many replies to the same message came before. The seed is
    moved on by that much, so a regeneration is a new sample (and still reproducible)."""


@dataclass
class GenerationStarted(Message):
    """The reply is under way: ReplyReady messages follow from `buffer`."""

    buffer: ReplyBuffer
    model_name: str
    model_ref: str
    sampling: SamplingSettings
    system_prompt: str


@dataclass
class GenerationRefused(Message):
    """No reply could be started; `reason` says why, for the user."""

    reason: str


@dataclass
class ReplyProgressed(Message):
    """A pane drained its reply: the status bar shows these figures and state."""

    stats: GenerationStats | None
    state: str | None
    """"generating", "prompt 12/80", or None when unchanged."""


class GenerationEnded(Message):
    """The pane's reply ended (done, stopped or failed): the app is free for the next one."""


class ChatCleared(Message):
    """A new chat began: the context can be emptied."""


@dataclass
class PresetChosen(Message):
    """The conversation now uses this preset ("" for none): the app remembers it for the model."""

    name: str


@dataclass
class StoreOpened(Message):
    """The history store is ready (the SQLite file, or memory with `problem` saying why)."""

    store: ConversationStore
    problem: str | None
    conversation: Conversation | None
    """The conversation to resume, if one was asked for (--resume, or the resume_last setting)."""


@dataclass
class StoreProblem(Message):
    """The store could not save something; `text` says what, for the user (said once per kind)."""

    text: str


# -- from the app's own workers ----------------------------------------------------------------


@dataclass
class ReplyReady(Message):
    """The decode thread has put something in `buffer` since the UI last drained it."""

    buffer: ReplyBuffer


@dataclass
class LoadStateChanged(Message):
    """The load worker moved on ("checking" the file, "loading" it, "connecting")."""

    state: str


@dataclass
class ModelLoaded(Message):
    model: ModelBackend
    seconds: float


@dataclass
class ModelLoadFailed(Message):
    reason: str


@dataclass
class DownloadStateChanged(Message):
    """A Hugging Face download started (active) or ended, however it ended."""

    active: bool


class LogLinesReady(Message):
    """Log lines are waiting in the app's PostToAppHandler."""
