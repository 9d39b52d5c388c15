"""The Log tab: everything llama.cpp and the app logged, which never goes to the terminal."""

from __future__ import annotations

import logging
import threading
from typing import Any

from textual.app import App
from textual.widgets import Log

from llama_tui.text import neutralise_controls
from llama_tui.ui.messages import LogLinesReady


class LogPane(Log):
    def __init__(self, **kwargs: Any) -> None:  # the widget's own: id, classes...
        super().__init__(max_lines=5000, highlight=False, **kwargs)


class _ShortFormatter(logging.Formatter):
    """"12:03:04 llama.cpp: text": the screen is narrow, so the level shows only when it matters."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        source = "llama.cpp" if record.name == "llama_cpp.native" else record.name.removeprefix("llama_tui.")
        level = f"{record.levelname} " if record.levelno >= logging.WARNING else ""
        return f"{self.formatTime(record, self.datefmt)} {level}{source}: {record.getMessage()}"


class PostToAppHandler(logging.Handler):
    """Hand log records to the app in batches, without blocking the logging thread.

    llama.cpp logs ~150 lines per model load. A message and a Log write for each made the UI
    lay out the screen once per line while the load thread waited for the GIL, so lines are
    collected here and the app is woken only when the collection stops being empty.
    """

    def __init__(self, app: App, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.app = app
        self.setFormatter(_ShortFormatter())
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = neutralise_controls(self.format(record))
            with self._pending_lock:
                was_empty = not self._pending
                self._pending.append(line)
            if was_empty:
                self.app.post_message(LogLinesReady())
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def take_lines(self) -> list[str]:
        """Everything logged since the last call (UI side)."""
        with self._pending_lock:
            lines, self._pending = self._pending, []
        return lines
