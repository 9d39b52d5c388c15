"""Text typed but not sent, kept across restarts: the chat's message box, the Completion tab.

| what                          | read by         | written by                       |
|-------------------------------|-----------------|----------------------------------|
| data_dir() / drafts / NAME.txt | `load_draft`   | `save_draft` (atomic, private)   |

A quit, a crash or a closed terminal never loses a half-written message: the boxes save here a
moment after each change and when the app ends.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from llama_tui import paths

log = logging.getLogger(__name__)

MAX_DRAFT_BYTES = 16 * 1024 * 1024
"""A draft larger than this is not read back (a stray huge paste must not slow every start)."""


def _draft_path(name: str) -> Path:
    return paths.data_dir() / "drafts" / f"{name}.txt"


def load_draft(name: str) -> str:
    """The saved text, or "" (nothing saved, unreadable, too large)."""
    path = _draft_path(name)
    try:
        if path.stat().st_size > MAX_DRAFT_BYTES:
            log.warning("draft %s is larger than %d bytes: not read back", path, MAX_DRAFT_BYTES)
            return ""
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as error:
        log.warning("cannot read the draft %s: %s", path, error)
        return ""


def save_draft(name: str, text: str) -> bool:
    """Save `text` (an empty text removes the file); whether it worked. Never raises."""
    path = _draft_path(name)
    try:
        if not text:
            path.unlink(missing_ok=True)
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:  # mkstemp: mode 0600
                file.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        log.warning("cannot save the draft %s: %s", path, error)
        return False
    return True
