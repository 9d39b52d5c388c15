"""The history in one SQLite file (see engine.store): writes queued to one writer thread,
each committed on its own; reads on the caller's thread with a pooled connection of their own."""

from __future__ import annotations

import atexit
import builtins
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llama_tui.engine import store_codec, store_search
from llama_tui.engine.conversation import Conversation, Message
from llama_tui.engine.store_api import (
    BUSY_TIMEOUT,
    ConversationSummary,
    CorruptStoreError,
    ProblemCallback,
    StoreError,
    describe_error,
    is_busy,
    is_corrupt,
)
from llama_tui.engine.store_schema import (
    REFRESH_TITLE,
    SCHEMA_VERSION,
    NewerSchemaError,
    fts_query,
    migrate,
    schema_version,
)

log = logging.getLogger(__name__)


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # Autocommit mode: transactions are begun and committed explicitly below.
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA foreign_keys = ON")
    # In WAL mode NORMAL commits without fsync: a commit survives the app being killed, and
    # only a power cut can lose the last commits (never the file).
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def use_write_ahead_log(connection: sqlite3.Connection, busy_timeout: float) -> str:
    """Switch the file to WAL and return the journal mode it has now."""
    # Switching a new file needs an exclusive lock. When another process is opening the same
    # file at that moment, SQLite answers "database is locked" at once instead of waiting out
    # the busy timeout, so wait here (seen as 4 in 120 processes opening a new file together).
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteStore:
    """The history in one SQLite file; see the module docstring. Raises sqlite3.Error,
    CorruptStoreError or NewerSchemaError when the file cannot be used (open_store
    handles those)."""

    def __init__(
        self, path: Path, *, on_problem: ProblemCallback | None = None, busy_timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.problems: builtins.list[str] = []
        """Problems reported so far (each once), newest last."""
        self._on_problem = on_problem
        self._idle: builtins.list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()
        connection = None
        try:
            connection = connect(self.path, busy_timeout)
            self._prepare(connection, busy_timeout)
        except BaseException as error:
            if connection is not None:
                connection.close()
            if isinstance(error, sqlite3.DatabaseError) and is_corrupt(error):
                raise CorruptStoreError(str(error)) from error
            raise
        self._writer = Writer(connection, self._report)
        atexit.register(self._flush_at_exit)

    @staticmethod
    def _prepare(connection: sqlite3.Connection, busy_timeout: float) -> None:
        # Before changing anything: a newer llama-tui's file is left exactly as it is.
        version = schema_version(connection)
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"it was written by a newer llama-tui (history version {version}, "
                f"this one knows up to {SCHEMA_VERSION})"
            )
        mode = use_write_ahead_log(connection, busy_timeout)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use write-ahead logging (journal mode {mode})")
        # Reads every page: catches a truncated or damaged file now, not in the middle of a chat.
        checked = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
        if checked != ["ok"]:
            raise CorruptStoreError("; ".join(checked))
        migrate(connection)
        # A write that is rolled back: a read-only file fails here, not at the first message.
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(f"PRAGMA user_version = {schema_version(connection)}")
        finally:
            connection.execute("ROLLBACK")

    # -- writing (queued; the writer thread commits each in order) ----------------------------

    def create(self, conversation: Conversation) -> None:
        conversation_row = store_codec.conversation_row(conversation)
        message_rows = [store_codec.message_row(conversation.id, m) for m in store_codec.parents_first(conversation)]

        def write(db: sqlite3.Connection) -> None:
            db.execute(store_codec.INSERT_CONVERSATION, conversation_row)
            db.executemany(store_codec.INSERT_MESSAGE, message_rows)
            db.execute(REFRESH_TITLE, (conversation.id,))

        self._writer.put("saving a new conversation", write)

    def add_message(self, conversation_id: str, message: Message) -> None:
        row = store_codec.message_row(conversation_id, message)  # taken now: the caller may change it
        self._writer.put("saving a message", lambda db: insert_message(db, row))

    def update_message(self, conversation_id: str, message: Message) -> None:
        """Save a message as it is now (a growing reply: at least once a second). A message
        the file lacks is added, as add_message would: a write lost to a lock or a full disk
        heals with the next update. (So stop a reply before deleting it.)"""
        row = store_codec.message_row(conversation_id, message)

        def write(db: sqlite3.Connection) -> None:
            if db.execute(store_codec.UPDATE_MESSAGE, row).rowcount == 0:
                insert_message(db, row)
                return
            db.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?",
                (row["updated_at"], conversation_id),
            )
            if row["role"] == "user":  # the title may be made of it (a reply never is)
                db.execute(REFRESH_TITLE, (conversation_id,))

        self._writer.put("saving a reply", write)

    def update_conversation(self, conversation: Conversation) -> None:
        row = store_codec.conversation_row(conversation)

        def write(db: sqlite3.Connection) -> None:
            db.execute(store_codec.UPDATE_CONVERSATION, row)
            db.execute(REFRESH_TITLE, (row["id"],))  # the current branch may have moved

        self._writer.put("saving a conversation", write)

    def delete_messages(self, conversation_id: str, ids: Iterable[str]) -> None:
        wanted = builtins.list(ids)

        def write(db: sqlite3.Connection) -> None:
            marks = ",".join("?" * len(wanted))
            doomed = db.execute(
                f"""WITH RECURSIVE doomed(id, seq) AS (
                        SELECT id, seq FROM messages WHERE conversation_id = ? AND id IN ({marks})
                        UNION SELECT m.id, m.seq FROM messages m JOIN doomed ON m.parent_id = doomed.id)
                    SELECT seq FROM doomed ORDER BY seq DESC""",
                (conversation_id, *wanted),
            ).fetchall()
            delete_leaves_first(db, doomed)
            db.execute(REFRESH_TITLE, (conversation_id,))

        if wanted:
            self._writer.put("deleting messages", write)

    def delete_conversation(self, conversation_id: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            seqs = db.execute(
                "SELECT seq FROM messages WHERE conversation_id = ? ORDER BY seq DESC", (conversation_id,)
            ).fetchall()
            delete_leaves_first(db, seqs)
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

        self._writer.put("deleting a conversation", write)

    def rename(self, conversation_id: str, title: str) -> None:
        self._writer.put(
            "renaming a conversation",
            lambda db: db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)),
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every change handed over so far is committed (or failed); False if
        `timeout` seconds passed first."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Save what is queued, then close every connection. Later writes are dropped (and logged)."""
        atexit.unregister(self._flush_at_exit)
        self._writer.stop()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _flush_at_exit(self) -> None:
        # The writer is a daemon thread; without this an exit without close() would drop
        # the changes still queued.
        if not self._writer.flush(timeout=10):
            log.warning("history: changes still unsaved at exit were lost")

    def _report(self, what: str, error: BaseException) -> None:
        # Once per reason: a full disk fails every write, and one message says it.
        reason = describe_error(error, self.busy_timeout)
        if any(f": {reason} (" in said for said in self.problems):
            return
        message = (
            f"History could not be saved: {reason} (while {what}). "
            "llama-tui keeps trying with later changes; this one is not saved."
        )
        self.problems.append(message)
        if self._on_problem is not None:
            try:
                self._on_problem(message)
            except Exception:  # the app's callback must not stop the writer
                log.exception("history problem callback failed")

    # -- reading (on the caller's thread, with a connection of its own) ----------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection from the pool, inside one read transaction (a consistent snapshot)."""
        with self._idle_lock:
            connection = self._idle.pop() if self._idle else None
        try:
            if connection is None:
                connection = connect(self.path, self.busy_timeout)
                connection.execute("PRAGMA query_only = ON")  # all writes go through the writer
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("ROLLBACK")
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            reason = describe_error(error, self.busy_timeout)
            raise StoreError(f"Cannot read the history in {self.path}: {reason}.") from error
        with self._idle_lock:
            self._idle.append(connection)

    def load(self, conversation_id: str) -> Conversation:
        with self._reading() as db:
            row = db.execute(store_codec.SELECT_CONVERSATION, (conversation_id,)).fetchone()
            messages = db.execute(store_codec.SELECT_MESSAGES, (conversation_id,)).fetchall()
        if row is None:
            raise KeyError(conversation_id)
        return store_codec.conversation_from_rows(row, messages)

    def last_id(self) -> str | None:
        with self._reading() as db:
            row = db.execute("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def list(self, search: str | None = None, limit: int = 500, offset: int = 0) -> builtins.list[ConversationSummary]:
        limit, offset = max(0, limit), max(0, offset)
        if search is None or not search.strip():
            with self._reading() as db:
                rows = db.execute(store_codec.LIST_ALL, (limit, offset)).fetchall()
            return [store_codec.summary_from_row(row) for row in rows]
        query = fts_query(search)
        if query is None:
            return []
        with self._reading() as db:
            rows = db.execute(store_codec.LIST_MATCHING, (query, limit, offset)).fetchall()
        phrases = store_search.search_phrases(search)
        return [store_codec.summary_from_row(row[:-1], *store_search.snippet(row[-1], phrases)) for row in rows]


def insert_message(db: sqlite3.Connection, row: dict[str, Any]) -> None:
    conversation_id = row["conversation_id"]
    extends = db.execute(
        "SELECT current_id IS ? FROM conversations WHERE id = ?", (row["parent_id"], conversation_id)
    ).fetchone()
    db.execute(store_codec.INSERT_MESSAGE, row)
    # As Conversation.add: the new message is current, the conversation updated.
    db.execute(
        "UPDATE conversations SET current_id = ?, updated_at = max(updated_at, ?) WHERE id = ?",
        (row["id"], row["updated_at"], conversation_id),
    )
    # A reply that continues the current branch cannot change its first user message; the
    # rest (a user message, a new branch) costs one walk up the branch.
    if row["role"] == "user" or not (extends and extends[0]):
        db.execute(REFRESH_TITLE, (conversation_id,))


def delete_leaves_first(db: sqlite3.Connection, seqs: builtins.list[tuple[int]]) -> None:
    """Delete messages children first (seq descending: a child always has a larger seq).
    Deleting a parent first would cascade one level per message, and SQLite stops at 1000."""
    db.executemany("DELETE FROM messages WHERE seq = ?", seqs)


class Writer:
    """One thread that runs queued writes in order, each in its own committed transaction.
    A write that fails is rolled back, logged and reported; the next one is tried as usual."""

    Write = Callable[[sqlite3.Connection], Any]

    def __init__(self, connection: sqlite3.Connection, report: Callable[[str, BaseException], None]) -> None:
        self._connection = connection
        self._report = report
        self._queue: deque[tuple[str, Writer.Write] | None] = deque()
        self._pending = 0
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def put(self, what: str, write: Write) -> None:
        with self._changed:
            if self._stopped:
                log.warning("history: %s after the store was closed; not saved", what)
                return
            self._queue.append((what, write))
            self._pending += 1
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            self._queue.append(None)
            self._changed.notify_all()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                item = self._queue.popleft()
            if item is None:
                return
            what, write = item
            try:
                self._commit(write)
            except Exception as error:  # sqlite3.Error mostly; anything else must not stop the thread
                log.warning("history: %s failed: %r", what, error, exc_info=not isinstance(error, sqlite3.Error))
                self._report(what, error)
            finally:
                with self._changed:
                    self._pending -= 1
                    self._changed.notify_all()

    def _commit(self, write: Write) -> None:
        db = self._connection
        # IMMEDIATE takes the write lock first (waiting up to busy_timeout for another
        # process), so the transaction cannot fail later for want of it.
        db.execute("BEGIN IMMEDIATE")
        try:
            write(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
