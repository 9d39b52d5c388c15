"""A thinking budget: when a reasoning model has thought for that many tokens, the engine ends
its thinking by evaluating the model's own close marker (`ThinkingMarkers.budget_text`) as if
the model had written it, and the model goes on with its answer.

The decode loop feeds this the text of each token it emits; `due` says when to insert the
close. The inserted tokens are emitted like the model's own, so their text reaches this
counter and the reply's ThinkingSplitter downstream (split_events), which sees the close
marker and folds the thinking, exactly as when the model closes it itself.
"""

from __future__ import annotations

from llama_tui.engine.thinking import ThinkingMarkers, ThinkingSplitter


class ThinkingBudget:
    """Counts the tokens of a reply spent thinking, against `limit`."""

    def __init__(self, markers: ThinkingMarkers, limit: int, *, opened_in_prompt: bool = False) -> None:
        self.markers = markers
        self.limit = limit
        self.thinking_tokens = 0
        self.closed_by_budget = False
        """The budget ended the thinking (the close marker is inserted: its tokens follow)."""
        # A splitter of our own, only to know where the reply is: inside the thinking or not.
        self._where = ThinkingSplitter(markers, opened_in_prompt=opened_in_prompt)

    @property
    def thinking(self) -> bool:
        """The reply is inside its thinking block now."""
        return self._where.saw_thinking and not self._where.thinking_ended

    def count(self, text: str) -> None:
        """One token was emitted, with this text ("" while its bytes are held back)."""
        was_thinking = self.thinking
        self._where.feed(text)
        if (was_thinking or self.thinking) and not self.closed_by_budget:
            self.thinking_tokens += 1

    @property
    def due(self) -> bool:
        """The limit is reached while still thinking: insert `end_text` now."""
        return not self.closed_by_budget and self.thinking and self.thinking_tokens >= self.limit

    @property
    def end_text(self) -> str:
        return self.markers.budget_text

    def closed(self) -> None:
        """The tokens of `end_text` were put in the model's way: they come next (a close
        marker of several tokens ends the thinking only once all of them are counted)."""
        self.closed_by_budget = True
