"""Routing llama.cpp's own log into Python logging, and logging into a file.

llama.cpp writes its log through a callback; the binding's default prints to stderr, which
inside the TUI would scribble over the screen. We send it to the `llama_cpp.native` logger
instead. (The binding's `verbose=False` is no answer: it redirects file descriptors 1 and 2
to /dev/null during loads, which also swallows Textual's output.)
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
from collections import deque
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

import llama_cpp

from llama_tui.text import neutralise_controls

native_logger = logging.getLogger("llama_cpp.native")

# ggml_log_level in this llama.cpp: 1 debug, 2 info, 3 warn, 4 error, 5 "continue the
# previous line". (The binding's own _logger.py still has the older numbering.)
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}


class _NativeLineBuffer:
    """llama.cpp logs in fragments; join them into whole lines before logging."""

    def __init__(self) -> None:
        self.text = ""
        self.level = logging.INFO

    def feed(self, level: int, text: str) -> None:
        if level != 5:
            self.level = _LEVELS.get(level, logging.INFO)
        self.text += text
        while "\n" in self.text:
            line, self.text = self.text.split("\n", 1)
            if line.strip():
                native_logger.log(self.level, "%s", line)
                if self.level >= logging.ERROR:
                    _recent_errors.append(line.strip())


_buffer = _NativeLineBuffer()
# The last few error lines, so a failed load can tell the user llama.cpp's own reason.
_recent_errors: deque[str] = deque(maxlen=20)


def take_native_errors() -> list[str]:
    """The error lines llama.cpp logged since the last call."""
    lines = list(_recent_errors)
    _recent_errors.clear()
    return lines


@llama_cpp.llama_log_callback
def _on_native_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    _buffer.feed(level, text.decode("utf-8", errors="replace"))


def route_native_log() -> None:
    """Send llama.cpp's (and ggml's) log to Python logging from now on."""
    # The callback object is module-level, so ctypes never frees it while C holds it.
    llama_cpp.llama_log_set(_on_native_log, ctypes.c_void_p(0))


class _PlainFormatter(logging.Formatter):
    """No raw escape sequences in the file: it quotes paths, model metadata and replies, and
    `cat` or `tail` of the log would otherwise run them in the reader's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return neutralise_controls(super().format(record))


def log_to_file(path: Path, level: int = logging.INFO) -> Path:
    """Send all logging to a rotating file (never the terminal) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if not any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(_PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(root.level, level) if root.level else level)
    return path


_crash_log: IO[str] | None = None


def log_crashes_to(path: Path) -> None:
    """On a fatal signal (SIGSEGV, SIGBUS, SIGABRT...) write the Python traceback of the thread
    it struck to the log file (faulthandler), so a crash in llama.cpp leaves a trace of where
    it was. Only that thread: reading the others' frames while they run sometimes crashed the
    handler itself, and an abort was then reported as a SIGSEGV (seen in tests/test_signals.py)."""
    global _crash_log
    _crash_log = path.open("a", encoding="utf-8")  # kept open: the handler writes to its fd
    faulthandler.enable(file=_crash_log, all_threads=False)
