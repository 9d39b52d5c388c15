"""A reply's events with its thinking told apart (engine.thinking does the splitting).

LoadedModel's chat events pass through `split_events`, so everyone downstream (the chat pane,
the history store, the next prompt) gets ThinkingDelta and TextDelta apart, as a server that
sends reasoning_content gives them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    GenerationStats,
    TextDelta,
    ThinkingDelta,
    ThinkingFormat,
)
from llama_tui.engine.thinking import Piece, ThinkingSplitter


def split_events(events: Iterator[GenerationEvent]) -> Iterator[GenerationEvent]:
    """A reply's events with its thinking told apart: after a ThinkingFormat, the text deltas
    become ThinkingDelta and TextDelta pieces, and Finished carries the answer as `text` and
    the thinking as `thinking`. Without a ThinkingFormat, events pass through unchanged.
    Closing this closes `events` (so the model is freed at once)."""
    splitter: ThinkingSplitter | None = None
    thinking: list[str] = []
    answer: list[str] = []
    stats = None
    try:
        for event in events:
            if isinstance(event, ThinkingFormat):
                splitter = ThinkingSplitter(event.markers, opened_in_prompt=event.opened_in_prompt)
                continue
            if splitter is None:
                yield event
                continue
            if isinstance(event, TextDelta):
                stats = event.stats
                yield from _pieces(splitter.feed(event.text), stats, thinking, answer)
            elif isinstance(event, Finished):
                yield from _pieces(splitter.finish(), stats or event.stats, thinking, answer)
                yield replace(event, text="".join(answer), thinking="".join(thinking))
            else:
                yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _pieces(
    pieces: list[Piece], stats: GenerationStats, thinking: list[str], answer: list[str]
) -> Iterator[GenerationEvent]:
    for kind, text in pieces:
        if not text:
            continue
        if kind == "thinking":
            thinking.append(text)
            yield ThinkingDelta(text, stats)
        else:
            answer.append(text)
            yield TextDelta(text, stats)
