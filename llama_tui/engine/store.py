"""The conversation history: every conversation and message, saved as it happens.

| what                                    | read by                  | written by               |
|-----------------------------------------|--------------------------|--------------------------|
| data_dir() / history.sqlite3            | `SqliteStore`, on the    | `SqliteStore`'s writer   |
|   and its -wal and -shm (SQLite's WAL)  |   caller's thread        |   thread, a commit each  |
| history.sqlite3.corrupt-YYYYmmdd-HHMMSS | nobody: a damaged file that `open_store` moved aside |

Changes are small appends and updates (a message added, a growing reply updated, a title
changed), never a conversation rewritten whole. They go to one writer thread in order, so the
UI thread never waits on the disk or on another process's lock; each is committed on its own,
so a crash (even kill -9) loses only what was not yet handed over. `flush()` waits for them.
WAL mode lets two llama-tui processes read and write the same file side by side; a write
waits up to busy_timeout for the other's lock. Schema and migrations: `store_schema`.

`open_store()` never fails: a damaged file is moved aside (never deleted) and a new one made;
a place that cannot be used (read-only, locked, disk full, a newer llama-tui's file) gives a
`MemoryStore`, which behaves the same but forgets at exit. Either way a message says so.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from llama_tui import paths
from llama_tui.engine.store_api import (
    BUSY_TIMEOUT,
    ConversationStore,
    ConversationSummary,
    CorruptStoreError,
    ProblemCallback,
    StoreError,
    describe_error,
)
from llama_tui.engine.store_memory import MemoryStore
from llama_tui.engine.store_schema import NewerSchemaError
from llama_tui.engine.store_sqlite import SqliteStore

__all__ = [
    "ConversationStore",
    "ConversationSummary",
    "MemoryStore",
    "SqliteStore",
    "StoreError",
    "default_path",
    "move_aside",
    "open_store",
]

log = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite3"


def default_path() -> Path:
    return paths.data_dir() / HISTORY_FILE


def open_store(
    path: Path | None = None, *, on_problem: ProblemCallback | None = None, busy_timeout: float = BUSY_TIMEOUT
) -> tuple[ConversationStore, str | None]:
    """The history store and, when something was not as it should be, a message to show.

    May wait up to busy_timeout for another process: call it off the UI thread.
    """
    path = default_path() if path is None else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return SqliteStore(path, on_problem=on_problem, busy_timeout=busy_timeout), None
        except CorruptStoreError as error:
            aside = move_aside(path)
            log.warning("history file %s is damaged (%s); moved to %s", path, error, aside)
            message = (
                f"The history file was damaged ({error}), so a new, empty history was started. "
                f"The old file was kept as {aside}."
            )
            return SqliteStore(path, on_problem=on_problem, busy_timeout=busy_timeout), message
    except (sqlite3.Error, OSError, NewerSchemaError, CorruptStoreError) as error:
        log.warning("history file %s cannot be used: %r", path, error)
        reason = describe_error(error, busy_timeout)
        message = (
            f"History is kept in memory only this time: {path} cannot be used ({reason}). "
            "Conversations from this run will be gone when llama-tui exits."
        )
        return MemoryStore(on_problem=on_problem), message


def move_aside(path: Path) -> Path:
    """Rename a damaged file (and its -wal and -shm, which belong with it) to
    NAME.corrupt-YYYYmmdd-HHMMSS[-N]; nothing is deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside
