"""Conversations and messages to and from rows of the history database (store_schema), and
the small tree helpers both stores share so they behave the same."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from llama_tui.engine.conversation import Conversation, Message, short_title

if TYPE_CHECKING:
    from llama_tui.engine.store import ConversationSummary

log = logging.getLogger(__name__)

INSERT_CONVERSATION = """
INSERT INTO conversations (id, title, created_at, updated_at, system_prompt, preset, current_id)
VALUES (:id, :title, :created_at, :updated_at, :system_prompt, :preset, :current_id)
"""
UPDATE_CONVERSATION = """
UPDATE conversations SET title = :title, updated_at = :updated_at, system_prompt = :system_prompt,
    preset = :preset, current_id = :current_id
WHERE id = :id
"""
INSERT_MESSAGE = """
INSERT INTO messages (id, conversation_id, parent_id, role, text, thinking, created_at, updated_at,
    model_name, model_ref, sampling, seed, figures, stop_reason)
VALUES (:id, :conversation_id, :parent_id, :role, :text, :thinking, :created_at, :updated_at,
    :model_name, :model_ref, :sampling, :seed, :figures, :stop_reason)
"""
UPDATE_MESSAGE = """
UPDATE messages SET text = :text, thinking = :thinking, updated_at = :updated_at,
    model_name = :model_name, model_ref = :model_ref, sampling = :sampling, seed = :seed,
    figures = :figures, stop_reason = :stop_reason
WHERE id = :id AND conversation_id = :conversation_id
"""
SELECT_CONVERSATION = """
SELECT id, title, created_at, updated_at, system_prompt, preset, current_id FROM conversations WHERE id = ?
"""
SELECT_MESSAGES = """
SELECT id, parent_id, role, text, created_at, updated_at, thinking, model_name, model_ref,
    sampling, seed, figures, stop_reason
FROM messages WHERE conversation_id = ? ORDER BY seq
"""

# The list's columns for conversation c (title_source: see store_schema.TITLE_SOURCE).
_SUMMARY_COLUMNS = """
c.id, c.title, c.updated_at,
(SELECT count(*) FROM messages WHERE conversation_id = c.id),
(SELECT model_name FROM messages WHERE conversation_id = c.id AND role = 'assistant' AND model_name != ''
    ORDER BY created_at DESC LIMIT 1),
c.title_source
"""
# The page is chosen first: SQLite would otherwise compute the columns above for every row
# it skips or sorts.
LIST_ALL = f"""
WITH page AS MATERIALIZED (
    SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?)
SELECT {_SUMMARY_COLUMNS}
FROM page JOIN conversations c ON c.id = page.id ORDER BY c.updated_at DESC, c.id DESC
"""
# Conversations with a matching message, newest first, each with the text of its first
# matching message (for the snippet). The (seq, conversation_id) index turns a hit into its
# conversation without reading the message row: a common word has tens of thousands of hits.
LIST_MATCHING = f"""
WITH hits AS MATERIALIZED (
    SELECT m.conversation_id AS conversation_id, min(m.seq) AS seq
    FROM messages_fts JOIN messages AS m INDEXED BY messages_conversation_by_seq ON m.seq = messages_fts.rowid
    WHERE messages_fts MATCH ?
    GROUP BY m.conversation_id),
page AS MATERIALIZED (
    SELECT c.id AS id, hits.seq AS seq FROM hits JOIN conversations c ON c.id = hits.conversation_id
    ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?)
SELECT {_SUMMARY_COLUMNS}, (SELECT text FROM messages WHERE seq = page.seq)
FROM page JOIN conversations c ON c.id = page.id ORDER BY c.updated_at DESC, c.id DESC
"""


def to_json(value: dict[str, Any] | None) -> str | None:
    # default=str: a figure of an odd type is saved as text rather than failing the write.
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def from_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        log.warning("history: an unreadable JSON value was ignored: %.80r", text)
        return None
    return value if isinstance(value, dict) else None


def conversation_row(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "system_prompt": conversation.system_prompt,
        "preset": conversation.preset,
        "current_id": conversation.current_id,
    }


def message_row(conversation_id: str, message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": conversation_id,
        "parent_id": message.parent_id,
        "role": message.role,
        "created_at": message.created_at,
        **message_update_row(conversation_id, message),
    }


def message_update_row(conversation_id: str, message: Message) -> dict[str, Any]:
    """What can change in a message once saved (a reply grows, then gets its figures)."""
    return {
        "id": message.id,
        "conversation_id": conversation_id,
        "text": message.text,
        "thinking": message.thinking,
        "updated_at": message.updated_at,
        "model_name": message.model_name,
        "model_ref": message.model_ref,
        "sampling": to_json(message.sampling),
        "seed": message.seed,
        "figures": to_json(message.figures),
        "stop_reason": message.stop_reason,
    }


def conversation_from_rows(row: sqlite3.Row | tuple[Any, ...], messages: list[Any]) -> Conversation:
    conversation_id, title, created_at, updated_at, system_prompt, preset, current_id = row
    conversation = Conversation(
        id=conversation_id,
        title=title,
        created_at=created_at,
        updated_at=updated_at,
        system_prompt=system_prompt,
        preset=preset,
        current_id=current_id,
    )
    for values in messages:
        message_id, parent_id, role, text, m_created, m_updated, thinking = values[:7]
        model_name, model_ref, sampling, seed, figures, stop_reason = values[7:]
        conversation.messages[message_id] = Message(
            message_id, parent_id, role, text, m_created, m_updated,
            thinking=thinking, model_name=model_name, model_ref=model_ref, sampling=from_json(sampling),
            seed=seed, figures=from_json(figures), stop_reason=stop_reason,
        )
    return repaired(conversation)


def summary_from_row(
    row: tuple[Any, ...], snippet: str = "", highlights: tuple[tuple[int, int], ...] = ()
) -> ConversationSummary:
    from llama_tui.engine.store import ConversationSummary

    conversation_id, title, updated_at, count, model_name, first_user = row
    return ConversationSummary(
        id=conversation_id,
        title=title or short_title(first_user or "") or "New chat",
        model_name=model_name or "",
        updated_at=updated_at,
        message_count=count,
        snippet=snippet,
        highlights=highlights,
    )


# -- the tree -------------------------------------------------------------------------------


def parents_first(conversation: Conversation) -> list[Message]:
    """Every message, each after its parent (the order they can be inserted in), otherwise
    in the conversation's own order."""
    placed: set[str | None] = {None}
    ordered: list[Message] = []
    waiting = list(conversation.messages.values())
    while waiting:
        ready = [m for m in waiting if m.parent_id in placed]
        if not ready:  # a parent that is not in the conversation: keep them, let the store refuse
            ready = waiting
        ordered += ready
        placed.update(m.id for m in ready)
        waiting = [m for m in waiting if m.id not in placed]
    return ordered


def repaired(conversation: Conversation) -> Conversation:
    """A current branch that exists: after messages were deleted (or a crash between deleting
    and saving the new current message) it moves to the newest leaf of the last root."""
    if conversation.current_id in conversation.messages:
        return conversation
    conversation.current_id = None
    roots = conversation.children(None)
    if roots:
        conversation.select(roots[-1].id)
    return conversation


def first_user_text(conversation: Conversation) -> str:
    """What the list makes a title of, as its SQL does (a missing current message: no branch)."""
    branch = conversation.branch() if conversation.current_id in conversation.messages else []
    first = next((m.text for m in branch if m.role == "user"), "")
    return first or next((m.text for m in conversation.messages.values() if m.role == "user"), "")
