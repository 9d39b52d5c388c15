"""The history in this process only, for when the file cannot be used: the same behaviour as
SqliteStore, search included (matching as FTS5's unicode61 tokenizer does), lost at exit."""

from __future__ import annotations

import builtins
import copy
import logging
import threading
from collections.abc import Iterable

from llama_tui.engine import store_codec, store_search
from llama_tui.engine.conversation import Conversation, Message, short_title
from llama_tui.engine.store_api import ConversationSummary, ProblemCallback

log = logging.getLogger(__name__)


class MemoryStore:
    """The same behaviour as SqliteStore, kept in this process only (when the file cannot be
    used). Holds copies, so changing a Conversation after handing it over changes nothing here."""

    def __init__(self, *, on_problem: ProblemCallback | None = None) -> None:
        self.problems: builtins.list[str] = []
        """Always empty: nothing here can fail to be written (kept for the same interface)."""
        self._conversations: dict[str, Conversation] = {}
        self._lock = threading.Lock()  # writes come from the UI thread, reads from workers

    def create(self, conversation: Conversation) -> None:
        stored = copy.deepcopy(conversation)
        stored.messages = {m.id: m for m in store_codec.parents_first(stored)}
        with self._lock:
            self._conversations[stored.id] = stored

    def add_message(self, conversation_id: str, message: Message) -> None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None or (
                message.parent_id is not None and message.parent_id not in conversation.messages
            ):
                # SQLite refuses these too (foreign keys); a bug in the caller, not the user's.
                log.warning("history: message %s has no conversation or parent here; not kept", message.id)
                return
            conversation.messages[message.id] = copy.deepcopy(message)
            conversation.current_id = message.id
            conversation.updated_at = max(conversation.updated_at, message.updated_at)

    def update_message(self, conversation_id: str, message: Message) -> None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            old = conversation.messages.get(message.id) if conversation is not None else None
            if conversation is not None and old is not None:
                # Where it sits in the tree and when it began never change (as in SQLite).
                new = copy.deepcopy(message)
                new.parent_id, new.role, new.created_at = old.parent_id, old.role, old.created_at
                conversation.messages[message.id] = new
                conversation.updated_at = max(conversation.updated_at, message.updated_at)
                return
        self.add_message(conversation_id, message)  # as SqliteStore: a message it lacks is added

    def update_conversation(self, conversation: Conversation) -> None:
        with self._lock:
            stored = self._conversations.get(conversation.id)
            if stored is None:
                return
            stored.title, stored.system_prompt = conversation.title, conversation.system_prompt
            stored.preset, stored.current_id = conversation.preset, conversation.current_id
            stored.updated_at = conversation.updated_at

    def delete_messages(self, conversation_id: str, ids: Iterable[str]) -> None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return
            doomed = [i for i in ids if i in conversation.messages]
            for doomed_id in doomed:
                doomed += [
                    m.id for m in conversation.messages.values() if m.parent_id == doomed_id and m.id not in doomed
                ]
            for doomed_id in doomed:
                del conversation.messages[doomed_id]

    def delete_conversation(self, conversation_id: str) -> None:
        with self._lock:
            self._conversations.pop(conversation_id, None)

    def rename(self, conversation_id: str, title: str) -> None:
        with self._lock:
            if conversation_id in self._conversations:
                self._conversations[conversation_id].title = title

    def load(self, conversation_id: str) -> Conversation:
        with self._lock:
            conversation = copy.deepcopy(self._conversations[conversation_id])
        return store_codec.repaired(conversation)

    def last_id(self) -> str | None:
        with self._lock:
            newest = max(self._conversations.values(), key=lambda c: (c.updated_at, c.id), default=None)
        return None if newest is None else newest.id

    def list(self, search: str | None = None, limit: int = 500, offset: int = 0) -> builtins.list[ConversationSummary]:
        limit, offset = max(0, limit), max(0, offset)
        phrases = None if search is None or not search.strip() else store_search.search_phrases(search)
        if phrases == []:
            return []
        with self._lock:
            ordered = sorted(self._conversations.values(), key=lambda c: (c.updated_at, c.id), reverse=True)
            found = []
            for conversation in ordered:
                summary = summarize(conversation, phrases)
                if summary is not None:
                    found.append(summary)
                    if len(found) == offset + limit:
                        break
        return found[offset:]

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass


def summarize(
    conversation: Conversation, phrases: builtins.list[builtins.list[str]] | None
) -> ConversationSummary | None:
    """A conversation's list line; for a search (phrases), None unless a message matches."""
    snippet = ""
    highlights: tuple[tuple[int, int], ...] = ()
    if phrases is not None:
        matching = (m for m in conversation.messages.values() if store_search.contains_all(m.text, phrases))
        first = next(matching, None)
        if first is None:
            return None
        snippet, highlights = store_search.snippet(first.text, phrases)
    replies = [m for m in conversation.messages.values() if m.role == "assistant" and m.model_name]
    latest = max(replies, key=lambda m: m.created_at, default=None)
    return ConversationSummary(
        id=conversation.id,
        title=conversation.title or short_title(store_codec.first_user_text(conversation)) or "New chat",
        model_name=latest.model_name if latest else "",
        updated_at=conversation.updated_at,
        message_count=len(conversation.messages),
        snippet=snippet,
        highlights=highlights,
    )
