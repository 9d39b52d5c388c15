"""A conversation as data: a tree of messages, of which one branch is current.

Regenerating a reply or editing an earlier message adds a sibling (a new branch) and keeps
the old one; the current branch, from the root to `current_id`, is what the model sees and
what the screen shows. Nothing here knows about Textual, llama.cpp or SQLite: the chat pane
shows a Conversation, engine.store keeps it, the model backends get `prompt_messages()`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from llama_tui.text import shorten

Role = Literal["system", "user", "assistant"]

TITLE_CHARS = 60
"""A conversation's title, until renamed, is the start of its first message."""


_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*$", re.MULTILINE)
"""A Markdown code fence's line (```python): it says nothing about what the chat is about."""


def short_title(text: str) -> str:
    """The start of a message as a one-line title (TITLE_CHARS at most, then "…"), without
    code fence lines; "" for none."""
    return shorten(" ".join(_FENCE_LINE.sub(" ", text).split()), TITLE_CHARS + 1)


def new_id() -> str:
    """Ids are made here, not by the database, so a conversation works the same in memory."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ChatMessage:
    """One message as a model sees it."""

    role: Role
    content: str


@dataclass
class Message:
    id: str
    parent_id: str | None
    role: Role
    text: str
    """The answer (for a reply: without its thinking)."""
    created_at: float
    updated_at: float
    thinking: str = ""
    """A reasoning model's thinking, kept apart: shown folded, never sent back to the model."""
    model_name: str = ""
    """For replies: the model that wrote it, as shown (its metadata name)."""
    model_ref: str = ""
    """For replies: which model (ModelRef.to_text(): a file, the starter, a server model)."""
    sampling: dict[str, Any] | None = None
    """For replies: the sampling settings used (SamplingSettings as a dict)."""
    seed: int | None = None
    figures: dict[str, Any] | None = None
    """For replies: the engine's figures (tokens, tok/s, TTFT, prompt tokens...)."""
    stop_reason: str | None = None
    """For replies: StopReason.value once it ended; None while written (or if the app
    stopped while writing it)."""

    def as_chat(self) -> ChatMessage:
        return ChatMessage(self.role, self.text)


@dataclass
class Conversation:
    id: str = field(default_factory=new_id)
    title: str = ""
    """Set by the user; empty: the start of the first user message (see display_title)."""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    system_prompt: str = ""
    preset: str = ""
    """The preset chosen for this conversation (its system prompt and sampling), if any."""
    messages: dict[str, Message] = field(default_factory=dict)
    current_id: str | None = None
    """The last message of the current branch."""

    # -- reading --------------------------------------------------------------------------

    def branch(self, until: str | None = None) -> list[Message]:
        """The messages from the root to `until` (default: the current branch)."""
        chain: list[Message] = []
        message_id = self.current_id if until is None else until
        while message_id is not None:
            message = self.messages[message_id]
            chain.append(message)
            message_id = message.parent_id
        chain.reverse()
        return chain

    def children(self, parent_id: str | None) -> list[Message]:
        """Oldest first; these are the siblings shown as 1/3, 2/3, 3/3."""
        return sorted((m for m in self.messages.values() if m.parent_id == parent_id), key=lambda m: m.created_at)

    def siblings(self, message_id: str) -> tuple[int, int]:
        """(1-based position, count) of a message among its siblings."""
        message = self.messages[message_id]
        family = self.children(message.parent_id)
        return [m.id for m in family].index(message_id) + 1, len(family)

    def prompt_messages(self, system_prompt: str | None = None) -> list[ChatMessage]:
        """What the model sees: the system prompt, then the current branch (answers only,
        never thinking; an empty stopped reply left out)."""
        prompt = system_prompt if system_prompt is not None else self.system_prompt
        said = [m.as_chat() for m in self.branch() if m.role != "assistant" or m.text]
        return ([ChatMessage("system", prompt)] if prompt else []) + said

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        first = next((m.text for m in self.branch() if m.role == "user"), "")
        if not first:
            first = next((m.text for m in self.messages.values() if m.role == "user"), "")
        return short_title(first) or "New chat"

    def __len__(self) -> int:
        return len(self.messages)

    def walk(self) -> Iterator[Message]:
        """Every message, parents before children."""
        return iter(sorted(self.messages.values(), key=lambda m: (m.created_at, m.id)))

    # -- changing -------------------------------------------------------------------------

    def add(
        self, role: Role, text: str, *, parent_id: str | Literal["current"] | None = "current", **details: Any
    ) -> Message:
        """Add a message under `parent_id` (default: after the current branch) and make it current."""
        parent = self.current_id if parent_id == "current" else parent_id
        if parent is not None and parent not in self.messages:
            raise KeyError(parent)
        now = time.time()
        # Siblings are ordered by creation time: keep it increasing even within one clock tick.
        family = self.children(parent)
        if family and now <= family[-1].created_at:
            now = family[-1].created_at + 1e-6
        message = Message(new_id(), parent, role, text, now, now, **details)
        self.messages[message.id] = message
        self.current_id = message.id
        self.updated_at = now
        return message

    def update(self, message_id: str, **changes: Any) -> Message:
        message = replace(self.messages[message_id], **changes, updated_at=time.time())
        self.messages[message_id] = message
        self.updated_at = message.updated_at
        return message

    def select(self, message_id: str) -> None:
        """Make the branch through `message_id` current, down to its newest leaf."""
        leaf = self.messages[message_id]
        while children := self.children(leaf.id):
            leaf = max(children, key=lambda m: m.updated_at)
        self.current_id = leaf.id

    def select_sibling(self, message_id: str, step: int) -> str | None:
        """Move to the previous (-1) or next (+1) sibling of a message; its id, or None at an end."""
        message = self.messages[message_id]
        family = self.children(message.parent_id)
        index = [m.id for m in family].index(message_id) + step
        if not 0 <= index < len(family):
            return None
        self.select(family[index].id)
        return family[index].id

    def delete(self, message_id: str) -> list[str]:
        """Remove a message and everything after it; the ids removed. If it was on the current
        branch, the branch moves to its newest remaining sibling (another version of it), else
        to its parent."""
        doomed = [message_id]
        for doomed_id in doomed:
            doomed += [m.id for m in self.messages.values() if m.parent_id == doomed_id]
        parent = self.messages[message_id].parent_id
        on_current = self.current_id in doomed
        for doomed_id in doomed:
            del self.messages[doomed_id]
        if on_current:
            self.current_id = parent
            if siblings := self.children(parent):
                self.select(siblings[-1].id)
        self.updated_at = time.time()
        return doomed
