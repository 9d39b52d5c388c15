"""Messages the UI posts to itself. Small, named for what happened."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from llama_tui.engine.model import LoadedModel
from llama_tui.ui.reply_buffer import ReplyBuffer


@dataclass
class ReplyReady(Message):
    """The decode thread has put something in `buffer` since the UI last drained it."""

    buffer: ReplyBuffer


@dataclass
class LoadStateChanged(Message):
    """The load worker moved on ("checking" the file, "loading" it)."""

    state: str


@dataclass
class ModelLoaded(Message):
    model: LoadedModel
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
