"""Prompt-lookup drafting: guess the next tokens from text the conversation already holds.

When a reply repeats text it was given (code to edit, a paragraph to fix, a log to quote),
the tokens after the reply's last few tokens are often the tokens that followed the same
few tokens earlier in the conversation. `PromptLookup` finds the latest earlier occurrence
of the reply's last n tokens (the longest n first, from `max_ngram` down to 1) and offers
the tokens that followed it as a draft, which the decode loop verifies in one batch.

`DraftPolicy` decides how long a draft may be and whether to draft at all: the length
grows while drafts are accepted whole and starts again small when one is not; in "auto"
mode drafting stops while too few drafted tokens are accepted (prose), since a rejected
draft costs compute, and starts again when the lookup's guesses keep coming true.

Pure Python with no llama.cpp: the decode loop (engine.decode_loop) drives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SpeculativeMode = Literal["off", "on", "auto"]
SPECULATIVE_MODES: tuple[SpeculativeMode, ...] = ("off", "on", "auto")


MAX_NGRAM = 6
"""Longest n-gram looked up. On code, 4 often matched the wrong line (indentation and
`self._` repeat): bench/speculative.py's editing task drafted 389 tokens to accept 326
with 4, and 360 to accept 329 with 6, 8 or 12."""


class PromptLookup:
    """An index of the conversation's n-grams (n = 1..max_ngram) to where each one last ended."""

    def __init__(self, tokens: Iterable[int] = (), *, max_ngram: int = MAX_NGRAM) -> None:
        if max_ngram < 1:
            raise ValueError("max_ngram must be at least 1")
        self.max_ngram = max_ngram
        self.tokens: list[int] = []
        # _follows[n - 1][ngram] = the index of the token that followed the latest
        # occurrence of that n-gram. An n-gram is entered only once a token follows it, so
        # the conversation's own last n tokens never match themselves.
        self._follows: list[dict[tuple[int, ...], int]] = [{} for _ in range(max_ngram)]
        self.extend(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        tokens = self.tokens
        end = len(tokens)
        for n, follows in enumerate(self._follows, start=1):
            if n > end:
                break
            follows[tuple(tokens[end - n : end])] = end
        tokens.append(token)

    def draft(self, limit: int, *, min_ngram: int = 1) -> tuple[list[int], int]:
        """Up to `limit` tokens that followed the longest earlier match of the last tokens,
        and the length of that match (0 and no tokens when nothing matches)."""
        tokens = self.tokens
        if limit < 1:
            return [], 0
        for n in range(min(self.max_ngram, len(tokens)), max(min_ngram, 1) - 1, -1):
            start = self._follows[n - 1].get(tuple(tokens[-n:]))
            if start is not None:
                draft = tokens[start : start + limit]
                # A match that runs into the end of the conversation means the text has
                # been repeating with period len - start: the draft repeats it too.
                while len(draft) < limit:
                    draft += draft[: limit - len(draft)]
                return draft, n
        return [], 0


@dataclass
class DraftPolicy:
    """Whether to draft now, and how many tokens, from how drafts have fared in this reply.

    "on" drafts whenever the lookup finds a match. "auto" starts by only watching: for each
    token decoded without a draft it checks whether the lookup had guessed it (which costs
    no compute), and starts drafting after `arm_after` right guesses in a row. It goes back
    to watching when the recent acceptance rate (each verified draft weighing `memory`
    times the one after it) falls below `min_acceptance`, and then waits for twice as many
    right guesses if that stretch of drafting did not pay (fewer than two drafts accepted
    whole), up to `max_arm_after`. So prose, where a run of right guesses rarely goes on,
    is decoded almost as without speculation, one failed draft in a long run of copied
    text does not stop drafting, and drafting resumes when the reply repeats text again.

    A rejected draft of 7 costs about 3.3 decodes of one token on the starter model, so
    drafting pays only where about 3 or more of 7 drafted tokens are accepted: after 8
    right guesses in a row that held for copied code and for Markdown, while after 3 it
    cost prose sampled at temperature 0.8 up to 12%. These values were chosen by replaying
    the starter's replies (22 sampled prose and Markdown replies, 5 code edits) against the
    measured cost of each batch size (bench/speculative.py).

    The draft length grows 7 -> 15 after a draft accepted whole, up to `max_draft`, and
    falls back to `start_draft` after one that is not (see `grown`).
    """

    mode: SpeculativeMode = "auto"
    max_draft: int = 15
    start_draft: int = 7
    arm_after: int = 8
    max_arm_after: int = 16
    min_acceptance: float = 0.5
    memory: float = 0.7

    def __post_init__(self) -> None:
        if self.mode not in SPECULATIVE_MODES:
            raise ValueError(f"speculative must be one of {', '.join(SPECULATIVE_MODES)}, not {self.mode!r}")
        if not 1 <= self.start_draft <= self.max_draft:
            raise ValueError("start_draft must be from 1 to max_draft")
        self.length = self.start_draft
        self.drafting = self.mode == "on"
        """False while "auto" only watches (and always for "off")."""
        self.needed = self.arm_after
        """Right guesses in a row that start drafting now."""
        self._streak = 0
        self._accepted = 0.0  # decayed sums since drafting (re)started
        self._drafted = 0.0
        self._whole = 0  # drafts accepted whole since drafting (re)started

    def limit(self) -> int:
        """The longest draft wanted now: 0 means decode one token without drafting."""
        return self.length if self.drafting else 0

    def watched(self, guessed: bool) -> None:
        """A token was decoded without a draft; `guessed`: the lookup had predicted it."""
        if self.mode != "auto" or self.drafting:
            return
        self._streak = self._streak + 1 if guessed else 0
        if self._streak >= self.needed:
            self.drafting = True
            self._streak = self._whole = 0
            # The right guesses count as accepted drafts, as much as one draft.
            self._accepted = self._drafted = float(self.start_draft)

    def record(self, drafted: int, accepted: int) -> None:
        """A draft of `drafted` tokens was verified and its first `accepted` kept."""
        if drafted <= 0:
            return
        whole = accepted >= drafted
        self.length = min(self.max_draft, grown(max(self.length, drafted))) if whole else self.start_draft
        if self.mode != "auto":
            return
        self._whole += whole
        self._accepted = self._accepted * self.memory + accepted
        self._drafted = self._drafted * self.memory + drafted
        if self._accepted < self.min_acceptance * self._drafted:
            self.drafting = False
            self.length = self.start_draft
            self.needed = self.arm_after if self._whole >= 2 else min(self.max_arm_after, self.needed * 2)


def grown(length: int) -> int:
    """The next draft length after `length` tokens were all accepted: 3 -> 7 -> 15, so a
    verify batch (the draft and the token before it) stays a multiple of 4 tokens."""
    return 2 * length + 1
