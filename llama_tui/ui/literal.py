"""Showing text that comes from outside the app exactly as it is.

A file name, a path, a model's metadata, a server's reply or what the user typed can hold
Rich markup ("x[Q4].gguf", "[bold]") or escape sequences. Given to a widget as a plain string,
Textual would parse the markup (eating the brackets, or raising MarkupError). These wrap the
text so it is never parsed, with control and bidi characters neutralised (`text.py`).
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from llama_tui.text import neutralise_controls


def literal(text: str) -> Content:
    """For Static, Label and anything that takes Textual content."""
    return Content(neutralise_controls(text))


def literal_cell(text: str) -> Text:
    """For DataTable cells, which take Rich text (and size their columns from it)."""
    return Text(neutralise_controls(text))
