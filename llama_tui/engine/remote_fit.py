"""Fitting a chat into a server's context, as LoadedModel does for a local one: when the
server says the prompt is longer than its context, the oldest exchanges are left out (never
the system prompt, never the last message) and the chat is sent again, with a TurnsDropped
event. The chat template is the server's, so the client cannot count the prompt itself; it
learns the excess from the server's answer (llama-server says n_prompt_tokens and n_ctx) and
leaves out about that share of the text, or one exchange at a time when the server says only
that it is too long.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from llama_tui.engine.conversation import ChatMessage

_TOO_LONG = re.compile(
    r"exceeds? (the )?(available )?context|maximum context length|context window|context_length_exceeded"
    r"|prompt is too long|too many tokens",
    re.IGNORECASE,
)


def context_exceeded(body: object, message: str) -> tuple[int, int] | bool:
    """Whether a rejection says the prompt is longer than the context: (prompt tokens,
    context size) when the server says them (llama-server's exceed_context_size_error),
    True when it only says so in words (vLLM, OpenAI), else False."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        n_prompt, n_ctx = error.get("n_prompt_tokens"), error.get("n_ctx")
        if error.get("type") == "exceed_context_size_error" and isinstance(n_prompt, int) and isinstance(n_ctx, int):
            return n_prompt, n_ctx
        if error.get("code") == "context_length_exceeded":
            return True
    return bool(_TOO_LONG.search(message))


def drop_more(turns: Sequence[ChatMessage], dropped: int, system_chars: int, excess: tuple[int, int] | bool,
              reply_room: int) -> int | None:
    """How many of `turns` (the chat less its system prompt) to leave out next time, given
    that leaving out `dropped` was still too long; None when only the last message is left.
    Exchanges go whole (a user message with its reply), as LoadedModel drops them."""
    left = list(turns[dropped:])
    if len(left) <= 1:
        return None
    target_chars = 1  # at least one exchange
    if isinstance(excess, tuple):
        n_prompt, n_ctx = excess
        room = max(1, min(reply_room, n_ctx // 2))
        share = (n_prompt + room - n_ctx) / max(1, n_prompt)
        target_chars = max(1, math.ceil(share * (system_chars + sum(len(m.content) for m in left))))
    cut = removed = 0
    while removed < target_chars and len(left) - cut > 1:
        step = 2 if len(left) - cut > 2 and left[cut + 1].role == "assistant" else 1
        removed += sum(len(m.content) for m in left[cut : cut + step])
        cut += step
    return dropped + cut
