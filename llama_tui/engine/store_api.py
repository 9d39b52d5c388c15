"""The history store's interface, shared by SqliteStore and MemoryStore (engine.store
explains the whole; this module only keeps the pieces both implementations need)."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from llama_tui.engine.conversation import Conversation, Message

BUSY_TIMEOUT = 5.0
"""Seconds a write (or opening) waits for another process's lock before it fails."""

ProblemCallback = Callable[[str], object]
"""Called with a message for a person when saving fails (from the writer thread)."""


@dataclass(frozen=True)
class ConversationSummary:
    """One line of the history list."""

    id: str
    title: str
    """The title to show: the user's, else the start of the first user message."""
    model_name: str
    """The model of the latest reply ("" before the first reply)."""
    updated_at: float
    message_count: int
    """Every message, on all branches (as len(Conversation))."""
    snippet: str = ""
    """For a search: a few words of the first matching message."""
    highlights: tuple[tuple[int, int], ...] = ()
    """For a search: (start, end) of each match within `snippet`."""


class StoreError(Exception):
    """The history could not be read; the text says why, for a person."""


class ConversationStore(Protocol):
    """What the app keeps conversations in. Writes never raise for a storage failure: they
    are reported through the store's problem callback instead (SqliteStore writes later)."""

    problems: builtins.list[str]
    """What went wrong while saving, each reason once, for a person (also sent to the callback)."""

    def create(self, conversation: Conversation) -> None: ...
    def add_message(self, conversation_id: str, message: Message) -> None: ...
    def update_message(self, conversation_id: str, message: Message) -> None: ...
    def update_conversation(self, conversation: Conversation) -> None: ...
    def delete_messages(self, conversation_id: str, ids: Iterable[str]) -> None: ...
    def delete_conversation(self, conversation_id: str) -> None: ...
    def rename(self, conversation_id: str, title: str) -> None: ...
    def load(self, conversation_id: str) -> Conversation: ...
    def last_id(self) -> str | None: ...
    def list(
        self, search: str | None = None, limit: int = 500, offset: int = 0
    ) -> builtins.list[ConversationSummary]: ...
    def flush(self, timeout: float | None = None) -> bool: ...
    def close(self) -> None: ...


class CorruptStoreError(Exception):
    """The file is not a SQLite database, or a damaged one."""


def is_corrupt(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(error)
    return "file is not a database" in text or "malformed" in text


def is_busy(error: BaseException) -> bool:
    """Another connection holds the lock SQLite needed."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) == sqlite3.SQLITE_BUSY


def describe_error(error: BaseException, busy_timeout: float = BUSY_TIMEOUT) -> str:
    """Why a file cannot be used, for a person."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "the disk is full"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return "the file or its folder is read-only or cannot be opened"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return f"another program kept it locked for more than {busy_timeout:g} s"
    if name.startswith("SQLITE_IOERR"):
        return f"a disk error: {text}"
    return text
