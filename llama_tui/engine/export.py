"""A conversation's current branch as Markdown (to read) or JSON (to keep or move), and
conversations imported from JSON: ours, or any OpenAI-style list of messages.

    {
      "messages": [                          OpenAI chat messages, usable as they are
        {"role": "system", "content": "..."},        (the system prompt, if any)
        {"role": "user", "content": "..."},
        {"role": "assistant", "content": "..."}
      ],
      "llama_tui": {                         what only llama-tui knows
        "format": 1, "title": "...", "created_at": 1767225600.0, "updated_at": ...,
        "system_prompt": "...", "preset": "...",
        "messages": [                        one per entry of "messages", in the same order
          {"system_prompt": true},
          {"created_at": ..., "updated_at": ...},
          {"created_at": ..., "model_name": "...", "model_ref": "...", "sampling": {...},
           "seed": 1, "figures": {...}, "stop_reason": "end", "thinking": "..."}
        ]
      }
    }

Only the current branch is exported: other branches (older regenerations) stay in the app.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from llama_tui.engine.conversation import Conversation, Message, Role

FORMAT = 1
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}

# Per-message details, with the JSON types each must have on import.
_DETAILS: dict[str, tuple[type, ...]] = {
    "created_at": (int, float),
    "updated_at": (int, float),
    "model_name": (str,),
    "model_ref": (str,),
    "sampling": (dict,),
    "seed": (int,),
    "figures": (dict,),
    "stop_reason": (str,),
    "thinking": (str,),
}


# -- Markdown ---------------------------------------------------------------------------------


def to_markdown(conversation: Conversation, include_thinking: bool = False) -> str:
    """The current branch for people: a header (title, model, date, system prompt, sampling),
    then each message under its role. Thinking is left out unless asked for."""
    branch = conversation.branch()
    lines = [f"# {conversation.display_title}", ""]
    models = list(dict.fromkeys(m.model_name for m in branch if m.role == "assistant" and m.model_name))
    if models:
        lines.append(f"- **Model:** {', '.join(models)}")
    lines.append(f"- **Date:** {time.strftime('%Y-%m-%d %H:%M', time.localtime(conversation.created_at))}")
    last_reply = next(
        (m for m in reversed(branch) if m.role == "assistant" and (m.sampling or m.seed is not None)), None
    )
    if last_reply is not None:
        lines.append(f"- **Sampling:** {_sampling_text(last_reply)}")
    if conversation.system_prompt:
        lines += ["- **System prompt:**", "", *_quoted(conversation.system_prompt, indent="  ")]
    for message in branch:
        heading = ROLE_NAMES[message.role]
        if message.role == "assistant" and message.model_name and len(models) > 1:
            heading += f" ({message.model_name})"
        lines += ["", f"## {heading}", ""]
        if include_thinking and message.thinking:
            lines += ["> **Thinking**", ">", *_quoted(message.thinking), ""]
        lines.append(message.text)
        if message.stop_reason not in (None, "end"):
            lines += ["", f"*(stopped: {message.stop_reason})*"]
    return "\n".join(lines).rstrip("\n") + "\n"


def _sampling_text(message: Message) -> str:
    sampling = message.sampling or {}
    parts = [f"{key} {value}" for key, value in sampling.items() if value is not None]
    if message.seed is not None and "seed" not in sampling:  # the seed is a sampling setting now
        parts.append(f"seed {message.seed}")
    return ", ".join(parts)


def _quoted(text: str, indent: str = "") -> list[str]:
    return [f"{indent}> {line}".rstrip() for line in text.splitlines()] or [f"{indent}>"]


# -- JSON -------------------------------------------------------------------------------------


def to_json(conversation: Conversation) -> dict[str, Any]:
    """The current branch as OpenAI-style messages, with llama-tui's details alongside."""
    messages: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    if conversation.system_prompt:
        messages.append({"role": "system", "content": conversation.system_prompt})
        details.append({"system_prompt": True})
    for message in conversation.branch():
        messages.append({"role": message.role, "content": message.text})
        details.append(_message_details(message))
    return {
        "messages": messages,
        "llama_tui": {
            "format": FORMAT,
            "title": conversation.title,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "system_prompt": conversation.system_prompt,
            "preset": conversation.preset,
            "messages": details,
        },
    }


def to_json_text(conversation: Conversation) -> str:
    return json.dumps(to_json(conversation), indent=2, ensure_ascii=False, default=str) + "\n"


def _message_details(message: Message) -> dict[str, Any]:
    # Empty values are left out: they are the defaults on import.
    values = {name: getattr(message, name) for name in _DETAILS}
    return {name: value for name, value in values.items() if value not in (None, "", {})}


# -- import -------------------------------------------------------------------------------------


def import_conversation(data: Any) -> Conversation:
    """A new conversation (new ids) from our JSON, an OpenAI list of messages, or
    {"messages": [...]}; as parsed JSON or as text. ValueError says what is wrong."""
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise ValueError(f"this is not JSON ({error})") from None
    extra: dict[str, Any] = {}
    if isinstance(data, dict):
        if "messages" not in data:
            raise ValueError('expected "messages": a list of {"role": ..., "content": ...}')
        extra = data.get("llama_tui", {})
        if not isinstance(extra, dict):
            raise ValueError('"llama_tui" must be an object')
        data = data["messages"]
    if not isinstance(data, list):
        raise ValueError('expected a list of messages, or an object with "messages"')
    marked = "messages" in extra
    details = extra["messages"] if marked else [{} for _ in data]
    if not isinstance(details, list) or len(details) != len(data):
        raise ValueError(f'"llama_tui.messages" must be a list with one entry per message ({len(data)})')

    conversation = Conversation(
        title=_typed(extra, "title", (str,), "llama_tui", ""), preset=_typed(extra, "preset", (str,), "llama_tui", "")
    )
    system_prompt = _typed(extra, "system_prompt", (str,), "llama_tui", None)
    for number, (entry, detail) in enumerate(zip(data, details, strict=True), start=1):
        role, text, thinking = _chat_message(entry, number)
        if not isinstance(detail, dict):
            raise ValueError(f'"llama_tui.messages" entry {number} must be an object')
        # With our details the system prompt is marked; in a plain list it is a first system message.
        is_prompt = detail.get("system_prompt") is True if marked else (number == 1 and role == "system")
        if is_prompt:
            system_prompt = text if system_prompt is None else system_prompt
            continue
        values = {name: _typed(detail, name, types, f"message {number}", None) for name, types in _DETAILS.items()}
        values = {name: value for name, value in values.items() if value is not None}
        if thinking and "thinking" not in values:
            values["thinking"] = thinking
        created = values.pop("created_at", None)
        updated = values.pop("updated_at", created)
        message = conversation.add(role, text, **values)
        if created is not None:
            message.created_at, message.updated_at = float(created), float(updated)
    conversation.system_prompt = system_prompt or ""
    times = [m.updated_at for m in conversation.messages.values()]
    conversation.created_at = float(
        _typed(extra, "created_at", (int, float), "llama_tui", min(times, default=time.time()))
    )
    conversation.updated_at = float(
        _typed(extra, "updated_at", (int, float), "llama_tui", max(times, default=time.time()))
    )
    return conversation


def _chat_message(entry: Any, number: int) -> tuple[Role, str, str]:
    """(role, text, thinking) of one OpenAI message; ValueError for one we cannot use."""
    if not isinstance(entry, dict):
        raise ValueError(f'message {number} must be an object with "role" and "content"')
    role = entry.get("role")
    role = "system" if role == "developer" else role  # OpenAI's newer name for it
    if role not in ROLES:
        raise ValueError(f"message {number}: role {role!r} cannot be imported (only system, user and assistant)")
    content = entry.get("content")
    if isinstance(content, list):  # content parts: only text can be kept
        kinds = {part.get("type") if isinstance(part, dict) else type(part).__name__ for part in content}
        if kinds - {"text"}:
            others = ", ".join(sorted(map(str, kinds - {"text"})))
            raise ValueError(f"message {number}: only text can be imported, not {others}")
        content = "".join(str(part.get("text", "")) for part in content)
    if content is None and role == "assistant":
        content = ""  # a tool call without text
    if not isinstance(content, str):
        raise ValueError(f'message {number}: "content" must be text')
    thinking = entry.get("reasoning_content")  # what some servers call the thinking
    return cast(Role, role), content, thinking if isinstance(thinking, str) else ""


def _typed(source: dict[str, Any], name: str, types: tuple[type, ...], where: str, default: Any) -> Any:
    """source[name] if it has one of `types` (a bool is no number), default if absent or null."""
    value = source.get(name)
    if value is None:
        return default
    if not isinstance(value, types) or isinstance(value, bool):
        raise ValueError(f'{where}: "{name}" must be {_kind(types)}, not {json.dumps(value, default=str)[:40]}')
    return value


def _kind(types: tuple[type, ...]) -> str:
    if float in types:
        return "a number"
    return {int: "a whole number", str: "text", dict: "an object"}[types[0]]
