"""Textual's Footer, without the key widgets it leaks each time the key bindings change.

Footer rebuilds its keys (recompose) whenever the screen's active bindings change: each
reply that starts and ends (Esc to stop appears and goes), and each focus change. Every
FooterKey it makes is tied to the footer's `compact` reactive with `data_bind`, which
stores (key, setter) in the footer's own watcher list. Textual prunes that list only when
`compact` changes, which it never does here, so each rebuild kept the removed keys alive
with their styles, render caches and message queues: ~8 keys and ~200 KiB per chat turn,
about 40% of the app's memory growth per turn (bench/memory_per_turn.py; Textual 8.2.8,
upstream issue Textualize/textual#6666).
"""

from __future__ import annotations

from textual.dom import DOMNode
from textual.widgets import Footer


def forget_closed_watchers(node: DOMNode) -> None:
    """Drop the watchers on `node`'s reactives that belong to nodes already removed, as
    Textual itself does the next time such a reactive changes."""
    watchers: dict[str, list[tuple[DOMNode, object]]] = getattr(node, "__watchers", {})
    for entries in watchers.values():
        entries[:] = [(owner, callback) for owner, callback in entries if not owner._closing]


class AppFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()  # the old keys are removed (closed) once this returns
        forget_closed_watchers(self)
