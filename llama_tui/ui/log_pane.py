"""The Log tab: everything llama.cpp and the app logged, which never goes to the terminal."""

from __future__ import annotations

import logging

from textual.app import App
from textual.widgets import Log

from llama_tui.text import neutralise_controls
from llama_tui.ui.messages import LogLine


class LogPane(Log):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=5000, highlight=False, **kwargs)  # type: ignore[arg-type]


class _ShortFormatter(logging.Formatter):
    """"12:03:04 llama.cpp: text": the screen is narrow, so the level shows only when it matters."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        source = "llama.cpp" if record.name == "llama_cpp.native" else record.name.removeprefix("llama_tui.")
        level = f"{record.levelname} " if record.levelno >= logging.WARNING else ""
        return f"{self.formatTime(record, self.datefmt)} {level}{source}: {record.getMessage()}"


class PostToAppHandler(logging.Handler):
    """Forward log records to the app as messages: post_message never blocks the logging thread."""

    def __init__(self, app: App, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.app = app
        self.setFormatter(_ShortFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.app.post_message(LogLine(neutralise_controls(self.format(record))))
        except Exception:  # logging must never raise into the caller
            self.handleError(record)
