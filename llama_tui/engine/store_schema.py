"""The history database's schema, its migrations, and safe full-text queries.

Each migration is the SQL that takes a file from version N to N+1; PRAGMA user_version says
which version a file has (0: new, empty). Steps are never edited once released: a file made
by an older llama-tui is brought up to date by running the steps it lacks, in order, each in
one transaction (so a crash mid-migration leaves the file at the version before).

    version 1   conversations, messages (a tree by parent_id), an index for listing
    version 2   messages_fts: an FTS5 index over message text, kept up to date by triggers,
                and an index from a message's seq to its conversation, for search
    version 3   conversations.title_source: the text the list makes a title of, kept by the writer
"""

from __future__ import annotations

import re
import sqlite3

SCHEMA_V1 = """
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,           -- conversation.new_id(): made in Python
    title         TEXT NOT NULL DEFAULT '',   -- set by the user; '' shows the first message
    created_at    REAL NOT NULL,              -- seconds since the epoch
    updated_at    REAL NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    preset        TEXT NOT NULL DEFAULT '',
    current_id    TEXT                        -- the last message of the current branch
);
CREATE INDEX conversations_by_update ON conversations (updated_at DESC, id);

CREATE TABLE messages (
    -- An explicit INTEGER PRIMARY KEY: a stable rowid for the full-text index (VACUUM may
    -- renumber an implicit one), and insertion order (a child always comes after its parent).
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id       TEXT REFERENCES messages (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text            TEXT NOT NULL DEFAULT '',
    thinking        TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    model_name      TEXT NOT NULL DEFAULT '',
    model_ref       TEXT NOT NULL DEFAULT '',
    sampling        TEXT,                     -- JSON object or NULL
    seed            INTEGER,
    figures         TEXT,                     -- JSON object or NULL
    stop_reason     TEXT
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, role, created_at);
CREATE INDEX messages_by_parent ON messages (parent_id);  -- for the cascade on delete
"""

SCHEMA_V2 = """
-- External content: the text lives once, in messages; the index holds only tokens.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');  -- index the rows already there
-- From a hit (a seq) to its conversation without reading the message row.
CREATE INDEX messages_conversation_by_seq ON messages (seq, conversation_id);
"""

TITLE_SOURCE = """coalesce(
    nullif((WITH RECURSIVE up (id, parent_id, role, depth) AS (
                SELECT id, parent_id, role, 0 FROM messages WHERE id = conversations.current_id
                UNION ALL SELECT m.id, m.parent_id, m.role, up.depth + 1 FROM messages m JOIN up ON m.id = up.parent_id)
            SELECT substr(m.text, 1, 1000) FROM up JOIN messages m ON m.id = up.id
            WHERE up.role = 'user' ORDER BY up.depth DESC LIMIT 1), ''),
    (SELECT substr(text, 1, 1000) FROM messages WHERE conversation_id = conversations.id AND role = 'user'
        ORDER BY seq LIMIT 1),
    '')"""
"""What the history list makes a conversation's title of, as Conversation.display_title
does: the first user message of the current branch, else the first user message saved (the
first 1000 characters: a title needs TITLE_CHARS after white space is collapsed)."""

SCHEMA_V3 = f"""
-- Computing the title source while listing cost 33 ms of a 34 ms list of 500 conversations
-- (a walk up each current branch); the writer keeps it up to date instead (REFRESH_TITLE).
ALTER TABLE conversations ADD COLUMN title_source TEXT NOT NULL DEFAULT '';
UPDATE conversations SET title_source = {TITLE_SOURCE};
"""

REFRESH_TITLE = f"UPDATE conversations SET title_source = {TITLE_SOURCE} WHERE id = ?"
"""Run by the writer after each change that can move the current branch or change its text."""

MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3)
"""MIGRATIONS[n] takes a file from version n to n + 1."""

SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchemaError(Exception):
    """The file was written by a newer llama-tui; this one must not change it."""


def schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection) -> None:
    """Bring the file up to SCHEMA_VERSION, one step per transaction.

    The connection must be in autocommit mode (isolation_level=None). BEGIN IMMEDIATE takes
    the write lock before the version is read again, so two processes opening a new file at
    once do not both run a step.
    """
    if schema_version(connection) == SCHEMA_VERSION:
        return
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(connection)
            if version > SCHEMA_VERSION:
                raise NewerSchemaError(f"a newer llama-tui changed it meanwhile (history version {version})")
            if version == SCHEMA_VERSION:
                connection.execute("COMMIT")
                return
            # executescript() would commit first; run the statements one by one instead.
            for statement in _statements(MIGRATIONS[version]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (a trigger body has ';' inside)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    assert not current.strip(), "an incomplete statement in a migration"
    return statements


# -- full-text queries ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]")
"""A character the unicode61 tokenizer keeps (letters and digits); the rest separate tokens."""


def fts_query(search: str) -> str | None:
    """A person's search text as an FTS5 query that cannot be a syntax error.

    Each whitespace-separated chunk becomes a quoted phrase (so AND, OR, NOT, NEAR, *, ^, :
    and parentheses are plain text; "don't" is the phrase don t), all chunks must appear in
    one message, and the last one also matches as a prefix, for searching while typing.
    None when nothing searchable is left (only punctuation, or empty).
    """
    chunks = [chunk for chunk in search.split() if _WORD.search(chunk)]
    if not chunks:
        return None
    phrases = ['"' + chunk.replace('"', '""') + '"' for chunk in chunks]
    phrases[-1] += "*"
    return " ".join(phrases)
